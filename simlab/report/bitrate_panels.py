"""Quality against bitrate, several x columns side by side (``--x total_bps,payload_bps``): a row of
panels per quality metric, a column per x, one line per system label and loss condition.

A bitrate ladder (``experiments/bitrate_ladder.yaml``) sweeps each system's settings (Codec2's modes,
Opus's bitrates, LargeSC's quantizers) under a few loss conditions. Against a measured bitrate the
settings make a line's points (each at its mean x, as `simlab.report.curves.grouped_means` does) and
the loss conditions split the lines: a colour per line of the lossless table (the system label), a
line style per condition, the same colour for a label in every panel. A bitrate x spanning more than a
decade gets a log scale. `ladder_defaults` recognises such a table, so ``simlab plot runs.csv`` draws
this figure for it with no options.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from simlab.report.curves import (LABELS, MIN_BAND_N, X_PREFERENCE, _n_text, _short, grouped_means, system_column,
                                  varying_coordinates)

#: The x columns of a ladder table, in panel order (those present).
BITRATE_XS = ("total_bps", "payload_bps")
#: Line styles of the loss conditions, in order of first appearance (sorted by value).
STYLES = ("-", "--", ":", "-.")
#: Colours after matplotlib's ten (Dark2 and black: none repeats C0-C9).
EXTRA_COLOURS = ("#000000", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")
#: An x column this many times wider than its smallest value is drawn on a log scale.
LOG_DECADES = 10.0


def loss_coordinates(df: pd.DataFrame) -> list[str]:
    """The varying coordinates whose name says loss (``network.forward.loss.rate``, ``.model``)."""
    return [c for c in varying_coordinates(df) if any(k in c for k in X_PREFERENCE)]


def _swept_within_label(df: pd.DataFrame, system: str | None) -> bool:
    """Some ``system.*`` coordinate takes more than one value within one label (a system's ladder)."""
    cols = [c for c in varying_coordinates(df) if c.startswith("system.")]
    if not cols:
        return False
    if system is None:
        return True
    return any((df.groupby(system, dropna=False)[c].nunique() > 1).any() for c in cols)


def ladder_defaults(df: pd.DataFrame) -> tuple[list[str], list[str]] | None:
    """``(xs, by)`` for a ladder table: a system setting swept within a label and a loss condition
    varying, with the bitrate columns present: x the bitrates (`BITRATE_XS`), lines by the system
    label and the loss coordinates. None for any other table (its defaults are `curves`')."""
    xs = [c for c in BITRATE_XS if c in df]
    loss = loss_coordinates(df)
    system = system_column(df)
    if not xs or not loss or not _swept_within_label(df, system):
        return None
    return xs, ([system] if system else []) + loss


def measured_by(df: pd.DataFrame) -> list[str]:
    """Default lines against a measured x: the system label and the varying loss coordinates (a loss
    rate must split lines, not become points of one)."""
    system = system_column(df)
    return ([system] if system else []) + loss_coordinates(df)


def _condition_text(col: str, value) -> str:
    if col.endswith(".rate") and isinstance(value, (int, float, np.number)) and np.isfinite(value):
        return f"{100 * float(value):g} % loss"
    return f"{_short(col)}={value}"


def panel_data(df: pd.DataFrame, x: str, y: str, by: list[str]) -> pd.DataFrame:
    """One panel's points: `grouped_means` per loss condition, lines by the rest of ``by``: columns
    ``series`` (the line within its condition: the system label), ``condition`` (text; '' without
    one), ``x``, ``mean``, ``lo``, ``hi``, ``n``, in the order lines appear, points by x."""
    system = system_column(df)
    cond_cols = [c for c in by if c != system]
    line_by = [c for c in by if c == system]
    parts = []
    groups = df.groupby(cond_cols, sort=True, dropna=False) if cond_cols else [((), df)]
    for key, sub in groups:
        key = key if isinstance(key, tuple) else (key,)
        g = grouped_means(sub, x, y, line_by)
        g.insert(0, "condition", ", ".join(_condition_text(c, v) for c, v in zip(cond_cols, key)))
        parts.append(g.rename(columns={"line": "series"}))
    return pd.concat(parts, ignore_index=True)[["series", "condition", "x", "mean", "lo", "hi", "n"]]


def log_x(values: pd.Series | np.ndarray) -> bool:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    return len(v) > 1 and v.max() / v.min() > LOG_DECADES


def _note_off_scale(d: pd.DataFrame, x: str, y: str) -> None:
    """Say on stderr which points a log x axis cannot show (a setting that sends nothing: 0 bit/s)."""
    off = d[~(d["x"] > 0)]
    if len(off):
        print(f"simlab plot: note: {y} vs {x}: {len(off)} points at x <= 0 are off the log scale "
              f"({', '.join(dict.fromkeys(off['series'].astype(str)))})", file=sys.stderr)


def bitrate_figure(df: pd.DataFrame, xs: list[str], ys: list[str], by: list[str] | None = None, title: str = ""):
    """Rows of panels (one per y) by columns (one per x), sharing y along a row; a colour per series
    (the system label), a line style per loss condition; 95 % bands where a point has `MIN_BAND_N`
    values; the legend (beside the panels) names the series from the lowest bitrate up, with their n,
    and each style's condition."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    by = measured_by(df) if by is None else by
    data = {(y, x): panel_data(df, x, y, by) for y in ys for x in xs}
    everything = pd.concat(data.values(), ignore_index=True)
    series = list(everything.groupby("series", sort=False)["x"].min().sort_values(kind="stable").index)  # up the ladder
    conditions = list(dict.fromkeys(sorted({c for d in data.values() for c in d["condition"]},
                                           key=lambda c: (len(c), c))))
    palette = [f"C{i}" for i in range(10)] + list(EXTRA_COLOURS)
    colour = {s: palette[i % len(palette)] for i, s in enumerate(series)}
    marker = {s: "osD^v<>ph*X"[i % 11] for i, s in enumerate(series)}
    style = {c: STYLES[i % len(STYLES)] for i, c in enumerate(conditions)}
    fig = Figure(figsize=(4.6 * len(xs) + 2.6, 3.3 * len(ys)), layout="constrained")
    axes = fig.subplots(len(ys), len(xs), squeeze=False, sharey="row")
    for (i, y), (j, x) in ((a, b) for a in enumerate(ys) for b in enumerate(xs)):
        ax, d = axes[i][j], data[(y, x)]
        for (s, c), line in d.groupby(["series", "condition"], sort=False):
            xv, ns = line["x"].to_numpy(), line["n"].to_numpy()
            ax.plot(xv, line["mean"].to_numpy(), color=colour[s], ls=style[c], marker=marker[s], ms=3, lw=1.2,
                    label=f"{s}, {c}" if c else s)
            banded = ns >= MIN_BAND_N
            if banded.any():
                ax.fill_between(xv, line["lo"].to_numpy(), line["hi"].to_numpy(), where=banded, color=colour[s],
                                alpha=0.15, lw=0)
        if log_x(d["x"]):
            ax.set_xscale("log")
            _note_off_scale(d, x, y)
        ax.set_xlabel(LABELS.get(x, x))
        ax.set_ylabel(LABELS.get(y, y) if j == 0 else "")
        ax.grid(alpha=0.3, which="both")
    n_of = {s: _n_text(np.concatenate([d.loc[d["series"] == s, "n"].to_numpy() for d in data.values()]))
            for s in series}
    handles = [Line2D([], [], color=colour[s], marker=marker[s], ms=4, label=f"{s} ({n_of[s]})") for s in series]
    handles += [Line2D([], [], color="k", ls=style[c], label=c) for c in conditions if c]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
