"""Batch tables (runs.csv: one row per run) -> quality curves like the paper's figs. 4-8:
one line per system, the mean over repeats with a 95 % confidence band (mean ± t·sem).

Columns whose names are dotted scenario key paths (``network.forward.loss.p``) are the
coordinates the batch set, and so is the system column (``label``, else ``system``); the rest
are measurements (summary.csv columns). A point of a curve is one combination of coordinates;
its repeats are the rows that differ only in repeat columns (seed, audio, ...), so rows of two
systems are never averaged together, whatever ``by`` is. When x is a coordinate (loss rate: figs. 5-8),
every other varying coordinate splits the lines; when x is a measurement (bitrate: fig. 4),
the varying coordinates (say ``system.bitrate_bps``) make the points, at their mean x.

A band is drawn only where a point has `MIN_BAND_N` values or more, and clipped to the metric's
scale (its registry entry's ``scale``: MOS 1-5, WER 0-inf); a point with fewer has its n written
beside it, and the legend gives each line's n. With ``wer_edits`` and ``wer_ref_words`` in the
table, a WER panel also shows each point's corpus WER (its runs' edits / their reference words).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from simlab.errors import UserError

#: Columns that only repeat a measurement (averaged over, never a curve's coordinate).
REPEAT_COLUMNS = ("seed", "audio", "transcript", "repeat", "utterance", "run", "run_id", "name", "out", "folder")
#: Default y columns, in the order panels appear, when present with values.
QUALITY_COLUMNS = ("visqol", "plcmos", "dnsmos_ovrl", "wer", "logf0_rmse_cents", "token_accuracy")
X_PREFERENCE = ("loss",)
#: Fewer values than this at a point: no band (a t interval of 2-4 values spans most of a scale).
MIN_BAND_N = 5
#: The counts behind a corpus WER (summary.csv of a run scored with wer).
CORPUS_COUNTS = {"wer": ("wer_edits", "wer_ref_words")}  # default x: the first varying coordinate whose name says loss
#: Columns that name a row's system, in order of preference (batch tables have both).
SYSTEM_COLUMNS = ("label", "system")
LABELS = {"visqol": "ViSQOL (MOS-LQO)", "plcmos": "PLCMOS", "dnsmos_ovrl": "DNSMOS overall", "wer": "WER",
          "logf0_rmse_cents": "log-F0 RMSE (cents)", "token_accuracy": "token accuracy",
          "payload_bps": "payload bitrate (bit/s)", "total_bps": "total bitrate incl. headers, feedback (bit/s)",
          "loss_rate": "measured forward loss rate", "network.forward.loss.p": "forward loss probability",
          "network.forward.loss.loss": "forward average loss (Gilbert-Elliott)",
          "network.forward.loss.rate": "forward loss rate (nominal)"}


def _is_repeat(col: str) -> bool:
    return col in REPEAT_COLUMNS or col.rsplit(".", 1)[-1] in REPEAT_COLUMNS


def system_column(df: pd.DataFrame) -> str | None:
    """The column naming each row's system: a batch table's ``label`` coordinate, else a summary
    table's ``system``."""
    return next((c for c in SYSTEM_COLUMNS if c in df), None)


def varying_coordinates(df: pd.DataFrame) -> list[str]:
    """Dotted (scenario key path) columns that take more than one value, repeats excluded (a loss
    mapping expanded into ``.model`` and ``.rate`` counts through those), and the system column
    when it varies: rows of different systems are never repeats of one another."""
    system = system_column(df)
    return [c for c in df.columns if ("." in c or c == system) and not _is_repeat(c)
            and f"{c}.rate" not in df.columns and df[c].nunique(dropna=False) > 1]


def _numeric_coordinates(df: pd.DataFrame, varying: bool) -> list[str]:
    cols = varying_coordinates(df) if varying else [c for c in df.columns if "." in c]
    return [c for c in cols if pd.api.types.is_numeric_dtype(df[c])]


def default_x(df: pd.DataFrame) -> str:
    """The swept loss (the first varying numeric coordinate whose name says loss), else the payload
    bitrate (fig. 4: a lossless sweep of bitrate settings), else the first varying numeric
    coordinate, else a constant loss coordinate."""
    loss = [c for c in _numeric_coordinates(df, varying=True) if any(k in c for k in X_PREFERENCE)]
    if loss:
        return loss[0]
    if "payload_bps" in df:
        return "payload_bps"
    coords = _numeric_coordinates(df, varying=True)
    fixed = [c for c in _numeric_coordinates(df, varying=False) if any(k in c for k in X_PREFERENCE)]
    if coords or fixed:
        return (coords or fixed)[0]
    raise UserError("no x column: the table has no varying numeric coordinate and no payload_bps; pass --x")


def default_ys(df: pd.DataFrame) -> list[str]:
    """The quality columns that hold at least one number."""
    ys = [c for c in QUALITY_COLUMNS if c in df and pd.to_numeric(df[c], errors="coerce").notna().any()]
    if not ys:
        raise UserError(f"no quality column with values (looked for {', '.join(QUALITY_COLUMNS)}); pass --y")
    return ys


def default_by(df: pd.DataFrame) -> list[str]:
    """The system column (`system_column`), and the loss model when it varies (uniform and
    Gilbert-Elliott points are separate lines)."""
    system = system_column(df)
    return ([system] if system else []) + [c for c in df.columns if c.endswith(".model") and df[c].nunique() > 1]


def nominal_loss(spec: dict) -> float:
    """The average loss a loss-model mapping asks for: its registry entry's ``nominal_loss``
    (NaN for a model that has none, such as a trace, or a mapping that is not a valid spec)."""
    from simlab import registry

    try:
        entry = registry.get("channels", spec.get("model"))
        return float(entry.nominal_loss(entry.spec.model_validate(spec)))
    except (KeyError, ValueError):
        return float("nan")


def expand_loss_columns(df: pd.DataFrame) -> pd.DataFrame:
    """A coordinate whose values are loss-model mappings (JSON in runs.csv) gains ``<col>.model``
    and ``<col>.rate`` (the nominal average loss), so it can be an x axis and a grouping."""
    import json

    for col in [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]:
        vals = df[col].dropna()
        if vals.empty or not vals.astype(str).str.startswith("{").all():
            continue
        try:
            specs = [json.loads(v) if isinstance(v, str) else None for v in df[col]]
        except ValueError:
            continue
        if not all(isinstance(d, dict) and "model" in d for d in specs if d is not None):
            continue
        df[f"{col}.model"] = [d["model"] if d else None for d in specs]
        df[f"{col}.rate"] = [nominal_loss(d) if d else float("nan") for d in specs]
    return df


def scale_of(column: str) -> tuple[float, float]:
    """The range a metric column's values lie in (its registry entry's ``scale``), else unbounded."""
    from simlab import registry

    for entry in registry.entries("metrics").values():
        if column in entry.columns and entry.scale is not None:
            return float(entry.scale[0]), float(entry.scale[1])
    return -np.inf, np.inf


def _ci(values: np.ndarray) -> tuple[float, float, int]:
    """(mean, half-width of the 95 % t interval, n); half-width NaN for a single value."""
    n = len(values)
    mean = float(np.mean(values))
    if n < 2:
        return mean, float("nan"), n
    half = float(stats.t.ppf(0.975, n - 1) * np.std(values, ddof=1) / np.sqrt(n))
    return mean, half, n


def _short(col: str) -> str:
    return ".".join(col.split(".")[-2:])


def _note_dropped(dropped: pd.DataFrame, x: str, y: str, by: list[str]) -> None:
    """Say on stderr which rows a panel leaves out for want of a number (a metric a system does
    not produce, a failed run, an x only some systems have), so that no line vanishes unseen."""
    if dropped.empty:
        return
    names = [c for c in by if c in dropped] or [c for c in [system_column(dropped)] if c]
    whose = ""
    if names:
        groups = dropped[names].astype(str).agg(", ".join, axis=1)
        whose = f" ({', '.join(dict.fromkeys(groups))})"
    print(f"simlab plot: note: {y} vs {x}: left out {len(dropped)} rows without a number in both{whose}",
          file=sys.stderr)


def grouped_means(df: pd.DataFrame, x: str, y: str, by: list[str]) -> pd.DataFrame:
    """One row per (line, point): ``line`` label, ``x``, ``mean``, ``lo``, ``hi``, ``n``
    (the band is mean ± t(0.975, n-1)·sd/√n, clipped to y's `scale_of`), lines in first-seen order,
    points by x; for wer with the counts in the table also ``corpus``, the point's total edits over
    its total reference words."""
    missing = [c for c in [x, y, *by] if c not in df]
    if missing:
        raise UserError(f"table lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, df.columns))})")
    d = df.copy()
    for c in (x, y):
        d[c] = pd.to_numeric(d[c], errors="coerce")
    numeric = d[y].notna() & d[x].notna()
    _note_dropped(d[~numeric], x, y, by)
    d = d[numeric]
    if d.empty:
        raise UserError(f"no rows with numeric {x} and {y}")
    others = [c for c in varying_coordinates(d) if c not in by and c != x]
    if by:  # a coordinate that is constant within each line (system.bitrate_bps per system) says nothing new
        others = [c for c in others if (d.groupby(by, dropna=False)[c].nunique(dropna=False) > 1).any()]
    if "." in x:  # x is a coordinate: other coordinates split the lines
        line_cols, point_cols = by + others, [x]
    else:  # x is measured: coordinates make the points, at the mean x
        line_cols, point_cols = by, others
    rows = []
    low, high = scale_of(y)
    counts = CORPUS_COUNTS.get(y)
    if counts is not None and not all(c in d for c in counts):
        counts = None
    line_groups = d.groupby(line_cols, sort=False, dropna=False) if line_cols else [((), d)]
    for key, part in line_groups:
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join([str(v) for c, v in zip(line_cols, key) if c in by]
                          + [f"{_short(c)}={v}" for c, v in zip(line_cols, key) if c not in by]) or y
        points = part.groupby(point_cols, sort=False, dropna=False) if point_cols else [((), part)]
        for _, pts in points:
            mean, half, n = _ci(pts[y].to_numpy(dtype=float))
            row = {"line": label, "x": float(pts[x].mean()), "mean": mean, "lo": float(np.clip(mean - half, low, high)),
                   "hi": float(np.clip(mean + half, low, high)), "n": n}
            if counts is not None:
                edits, words = (pd.to_numeric(pts[c], errors="coerce").sum(min_count=1) for c in counts)
                row["corpus"] = float(edits / words) if words > 0 else np.nan
            rows.append(row)
    out = pd.DataFrame(rows)
    out["_order"] = out["line"].map({k: i for i, k in enumerate(dict.fromkeys(out["line"]))})
    return out.sort_values(["_order", "x"], kind="stable").drop(columns="_order").reset_index(drop=True)


def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: table not found")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not a readable CSV table ({type(exc).__name__})") from None
    if df.empty:
        raise UserError(f"{path}: the table has no rows")
    return expand_loss_columns(df)


def _n_text(n: np.ndarray) -> str:
    """A line's sample sizes for its legend entry: ``n=5`` or ``n=2-6``."""
    lo, hi = int(n.min()), int(n.max())
    return f"n={lo}" if lo == hi else f"n={lo}-{hi}"


def curves_figure(df: pd.DataFrame, x: str | None = None, ys: list[str] | None = None,
                  by: list[str] | None = None, title: str = ""):
    """One panel per y column, one line per group with its 95 % band (where n ≥ `MIN_BAND_N`; fewer:
    the n beside the point), the legend saying each line's n; a matplotlib Figure."""
    from matplotlib.figure import Figure

    x = x or default_x(df)
    ys = ys or default_ys(df)
    by = default_by(df) if by is None else by
    n = len(ys)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, y in zip(axes, ys):
        g = grouped_means(df, x, y, by)
        for label, line in g.groupby("line", sort=False):
            xs, ns = line["x"].to_numpy(), line["n"].to_numpy()
            (ln,) = ax.plot(xs, line["mean"].to_numpy(), marker="o", ms=4, label=f"{label} ({_n_text(ns)})")
            banded = ns >= MIN_BAND_N
            if banded.any():
                ax.fill_between(xs, line["lo"].to_numpy(), line["hi"].to_numpy(), where=banded,
                                color=ln.get_color(), alpha=0.2, lw=0)
            for xi, yi, ni in zip(xs[~banded], line["mean"].to_numpy()[~banded], ns[~banded]):
                ax.annotate(f"n={ni}", (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=7,
                            color=ln.get_color())
            if "corpus" in line and line["corpus"].notna().any():
                ax.plot(xs, line["corpus"].to_numpy(), marker="x", ms=5, ls="--", lw=1, color=ln.get_color(),
                        label=f"{label}, corpus WER")
        ax.set_xlabel(LABELS.get(x, x))
        ax.set_ylabel(LABELS.get(y, y))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in axes[n:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
