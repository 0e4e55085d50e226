"""`simlab plot`: run folders -> the fig. 9 run figure, batch tables -> quality curves.

Every figure is written as PNG (for a quick look) and PDF (for a paper), with matplotlib's
object-oriented API only: no pyplot state, no display needed.
"""
from __future__ import annotations

import re
from pathlib import Path

from simlab.errors import UserError
from simlab.out_path import check_out_dir
from simlab.report.bitrate_panels import bitrate_figure, ladder_defaults, measured_by
from simlab.report.curves import curves_figure, default_by, default_x, default_ys, read_table
from simlab.report.fig9 import fig9_figure
from simlab.report.run_data import load_runs

FORMATS = ("png", "pdf")


def save_figure(fig, out_dir: Path, stem: str) -> list[Path]:
    """``out_dir/stem.png`` and ``.pdf``; returns the paths written. An OS refusal (permissions, a
    full disk) is one line."""
    paths = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for fmt in FORMATS:
            p = out_dir / f"{stem}.{fmt}"
            fig.savefig(p, dpi=150 if fmt == "png" else None)
            paths.append(p)
    except OSError as exc:
        raise UserError(f"{out_dir}: cannot write the figure ({exc.strerror or exc})") from None
    return paths


def _names(value: str | list[str] | None, what: str) -> list[str] | None:
    """A comma-separated option (``--y visqol,plcmos``) as a list; None when not given."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [v.strip() for v in items if v.strip()]
    if what in ("--x", "--y") and not items:
        raise UserError(f"{what}: give at least one column name")
    return items


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _split(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    folders, tables = [], []
    for p in paths:
        if p.is_dir():
            folders.append(p)
        elif not p.exists():
            raise UserError(f"{p}: not found (expected a run folder or a .csv table)")
        elif p.suffix.lower() == ".csv":
            tables.append(p)
        else:
            raise UserError(f"{p}: not a run folder or a .csv table")
    return folders, tables


def plot_path(paths: list[Path], out_dir: Path | None = None, x: str | list[str] | None = None,
              y: str | list[str] | None = None, by: str | list[str] | None = None) -> list[Path]:
    """Plot each input and return the files written.

    Run folders (all of them together) make one fig. 9 figure, their traces overlaid
    (``fig9.png``/``.pdf``, ``fig9_overlay.*`` for several, in ``out_dir``, default the first
    folder's ``plots/``). Each ``.csv`` table makes one curves figure
    (``<table>_<ys>_vs_<x>.png``/``.pdf``, default beside the table): ``x``, ``y`` and ``by``
    column names (lists or comma-separated); left out, they are detected from the columns
    (`simlab.report.curves`). Several x columns (``total_bps,payload_bps``), or a bitrate-ladder
    table left to its defaults, make panels side by side (`simlab.report.bitrate_panels`).
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("plot: give at least one run folder or .csv table")
    folders, tables = _split(paths)
    if not tables and (x or y or by):
        raise UserError("--x, --y and --by apply to .csv tables; run folders have a fixed layout")
    out = check_out_dir(out_dir) if out_dir is not None else None
    if out is None and folders:
        check_out_dir(folders[0] / "plots")  # before any figure is drawn or written
    written: list[Path] = []
    if folders:
        fig = fig9_figure(load_runs(folders))
        written += save_figure(fig, out or folders[0] / "plots", "fig9" if len(folders) == 1 else "fig9_overlay")
    for t in tables:
        df = read_table(t)
        xs, bys = _names(x, "--x"), _names(by, "--by")
        ladder = ladder_defaults(df) if xs is None else None
        xs = xs or (ladder[0] if ladder else [default_x(df)])
        ys = _names(y, "--y") or default_ys(df)
        panels = len(xs) > 1 or ladder is not None
        if bys is None:
            bys = ladder[1] if ladder else measured_by(df) if panels and "." not in xs[0] else default_by(df)
        missing = [c for c in [*xs, *ys, *bys] if c not in df]
        if missing:
            raise UserError(f"{t}: lacks column(s) {', '.join(missing)}")
        if panels:
            fig = bitrate_figure(df, xs, ys, bys, title=t.name)
        else:
            fig = curves_figure(df, xs[0], ys, bys, title=t.name)
        written += save_figure(fig, out or t.parent, _slug(f"{t.stem}_{'_'.join(ys)}_vs_{'_'.join(xs)}"))
    return written
