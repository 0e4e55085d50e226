"""The ``simlab plot`` subcommand: registered by `simlab.cli` through `add_parser`."""
from __future__ import annotations

import argparse
from pathlib import Path


def _plot(args: argparse.Namespace) -> int:
    from simlab.report.plots import plot_path

    written = plot_path([Path(p) for p in args.paths], Path(args.out) if args.out else None,
                        x=args.x, y=args.y, by=args.by)
    for p in written:
        print(p)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``plot PATH... [--out DIR] [--x COL] [--y COLS] [--by COLS]`` to ``subparsers``."""
    p = subparsers.add_parser(
        "plot", help="figures: run folders (fig. 9 traces, overlaid) or batch tables (quality curves)",
        description="Run folders: ViSQOL and PLCMOS over time with the controller's decisions, the "
                    "reference spectrogram, bitrate and loss (several folders overlay their traces). "
                    ".csv tables (runs.csv): one line per system with 95% confidence bands (from 5 "
                    "values per point, clipped to the metric's scale; fewer: the n at the point).")
    p.add_argument("paths", nargs="+", metavar="PATH", help="run folder(s) and/or .csv table(s)")
    p.add_argument("--out", help="folder for the figures (default: the first run folder's plots/, "
                                 "or beside the table)")
    p.add_argument("--x", help="table column on the x axis (default: the loss coordinate, else payload_bps); "
                               "comma-separated columns (total_bps,payload_bps) make panels side by side, "
                               "one line per system and loss condition, log x over a decade; the default "
                               "for a bitrate ladder (system settings swept under a few loss conditions)")
    p.add_argument("--y", help="comma-separated table columns, one panel each (default: the quality "
                               "columns present: visqol, plcmos, wer, ...)")
    p.add_argument("--by", help="comma-separated table columns, one line per value (default: the system "
                                "label, and the loss model when it varies; '' for none). Rows of different "
                                "systems are never averaged together")
    p.set_defaults(fn=_plot)
    return p
