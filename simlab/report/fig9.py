"""The run figure, laid out like the paper's fig. 9: (a) ViSQOL and (b) PLCMOS over a
sliding window with the controller's decisions behind them, (c) the reference spectrogram,
(d) the bitrate over time with the forward loss rate.

Traces are drawn at window centres. Decisions are frames.csv's mask as an image of token
depth (rows, depth 0 at the bottom) by frame (columns): grey not sent, yellow sent once
(important), red sent twice (redundant). With several runs, every run's traces share the
panels, its loss and p̂ included (runs of other systems meet other channels: other packet rates,
other draws); decisions and spectrogram are the first run's, and the panel titles say whose.
The spectrogram shows the source's band (up to the Nyquist frequency of the audio file the run
sent, from manifest.json) and the time axis the whole call.
"""
from __future__ import annotations

import numpy as np

from simlab.report.run_data import RunData

DECISION_COLORS = ("#b0b0b0", "#f2c12e", "#d62728")  # mask 0, 1, 2
DECISION_NAMES = ("not sent", "sent once (important)", "sent twice (redundant)")
QUALITY_PANELS = (("visqol", "ViSQOL (MOS-LQO)"), ("plcmos", "PLCMOS"))
MOS_RANGE = (1.0, 5.0)


def window_centres(windows) -> np.ndarray:
    """x of a window trace: the middle of each [t_start_s, t_end_s)."""
    return ((windows["t_start_s"] + windows["t_end_s"]) / 2).to_numpy()


def _decisions(ax, run: RunData, ylim: tuple[float, float]) -> None:
    """The mask image behind a panel's curves, spanning its whole height."""
    from matplotlib.colors import ListedColormap

    if run.mask is None or run.mask.size == 0:
        return
    t0 = float(run.mask_t[0])
    t1 = float(run.mask_t[-1]) + run.frame_s
    ax.imshow(run.mask.T, extent=(t0, t1, ylim[0], ylim[1]), origin="lower", aspect="auto",
              interpolation="nearest", cmap=ListedColormap(DECISION_COLORS), vmin=0, vmax=2, alpha=0.35,
              zorder=0)
    ax.set_ylim(*ylim)


def missing_trace_reason(run: RunData, column: str) -> str:
    """Why a run has no window trace of the metric ``column``, in the words of the fix."""
    metrics = run.scenario.get("metrics")
    windows = run.scenario.get("windows") or {}
    if isinstance(metrics, list) and column not in metrics:
        return "add it to the scenario's metrics"
    if windows.get("metrics") is False:
        return "the scenario has windows: {metrics: false} (whole-file scores only); set it to true"
    if not (run.folder / "windows.csv").is_file():
        return "the run has no windows.csv (it was not scored)"
    status = f"{column}_status"
    if status in run.windows and run.windows[status].notna().any():
        return str(run.windows[status].dropna().iloc[0])
    return f"windows.csv has no {column} values"


def _quality_panel(ax, runs: list[RunData], column: str, title: str, tag: str) -> None:
    ax.set_ylim(*MOS_RANGE)
    drawn = 0
    for r in runs:
        if column in r.windows and r.windows[column].notna().any():
            ax.plot(window_centres(r.windows), r.windows[column].to_numpy(), marker=".", lw=1.2, label=r.label,
                    zorder=2)
            drawn += 1
    first = next((r for r in runs if r.mask is not None), None)
    if first is not None:
        _decisions(ax, first, MOS_RANGE)
    if not drawn:
        ax.text(0.5, 0.5, f"no {column} trace: {missing_trace_reason(runs[0], column)}",
                transform=ax.transAxes, ha="center", va="center", fontsize=9, wrap=True)
    ax.set_ylabel(title)
    whose = f"; decisions: {first.label}" if first is not None and len(runs) > 1 else ""
    ax.set_title(f"({tag}) {title}, {_window_text(runs[0])}{whose}", fontsize=9, loc="left")
    if drawn > 1:
        ax.legend(fontsize=8, loc="lower left")


def _window_text(run: RunData) -> str:
    w = run.windows
    if len(w) == 0:
        return "no windows"
    length = float(w["t_end_s"].iloc[0] - w["t_start_s"].iloc[0])
    return f"{length:g} s window"


def _spectrogram(ax, run: RunData) -> None:
    import soundfile as sf
    from scipy.signal import spectrogram

    if run.reference is None:
        ax.text(0.5, 0.5, "no reference.wav (the system makes no audio)", transform=ax.transAxes,
                ha="center", va="center", fontsize=9)
        ax.set_ylabel("frequency (kHz)")
        ax.set_title(f"(c) spectrogram of the reference ({run.label})", fontsize=9, loc="left")
        return
    x, sr = sf.read(str(run.reference), dtype="float32")
    nper = int(0.032 * sr)  # 32 ms frames, 8 ms hop: the usual speech spectrogram
    f, t, s = spectrogram(x, fs=sr, nperseg=nper, noverlap=nper - nper // 4, mode="magnitude")
    # A source at a lower rate than the reference's holds nothing above its own Nyquist frequency but
    # the resampler's leakage: show its band only (and scale the colours to what is in it).
    top = min(sr, run.source_rate or sr) / 2
    band = f <= top
    f, s = f[band], s[band]
    db = 20 * np.log10(s + 1e-6)
    # cell edges, so that the image covers the whole clip (frame centres stop half a frame short of its ends)
    edges = np.concatenate([[0.0], (t[:-1] + t[1:]) / 2, [len(x) / sr]])
    f_edges = np.concatenate([[0.0], (f[:-1] + f[1:]) / 2, [top]])
    ax.pcolormesh(edges, f_edges / 1000, db, shading="flat", cmap="magma", vmin=db.max() - 80, vmax=db.max(),
                  rasterized=True)
    ax.set_ylim(0, top / 1000)
    ax.set_ylabel("frequency (kHz)")
    band_text = f", source {run.source_rate / 1000:g} kHz" if run.source_rate and run.source_rate < sr else ""
    ax.set_title(f"(c) spectrogram of the reference ({run.label}{band_text})", fontsize=9, loc="left")


def _bitrate(ax, runs: list[RunData]) -> None:
    top = 0.0
    for i, r in enumerate(runs):
        if "payload_bps" in r.windows:
            kbps = r.windows["payload_bps"].to_numpy() / 1000
            ax.plot(window_centres(r.windows), kbps, lw=1.5, color=f"C{i}", label=f"{r.label} payload")
            top = max(top, float(np.nanmax(kbps)) if len(kbps) else 0.0)
    ax.set_ylabel("payload (kbit/s)")
    ax.set_ylim(0, top * 1.6 if top > 0 else 1.0)  # head room for the legend
    loss_ax = ax.twinx()
    loss_top = 0.0
    for i, r in enumerate(runs):  # each run met its own channel: its own loss and p-hat
        w = r.windows
        color = "0.3" if len(runs) == 1 else f"C{i}"
        who = "" if len(runs) == 1 else f"{r.label} "
        if "loss_rate" in w:
            loss_ax.plot(window_centres(w), w["loss_rate"].to_numpy(), color=color, lw=1, drawstyle="steps-mid",
                         label=f"{who}forward loss")
            if len(w) and np.isfinite(w["loss_rate"].to_numpy(dtype=float)).any():
                loss_top = max(loss_top, float(np.nanmax(w["loss_rate"].to_numpy(dtype=float))))
        if "p_hat_mean" in w:
            loss_ax.plot(window_centres(w), w["p_hat_mean"].to_numpy(), color=color, lw=1, ls="--",
                         label=f"{who}p̂")
    loss_ax.set_ylabel("loss rate")
    loss_ax.set_ylim(0, max(0.05, loss_top * 1.2))
    lines = ax.get_lines() + loss_ax.get_lines()
    ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="upper left", ncol=1 if len(runs) == 1 else 2)
    whose = f"loss: {runs[0].label}" if len(runs) == 1 else "each run's own loss and p̂"
    ax.set_title(f"(d) bitrate and loss ({whose})", fontsize=9, loc="left")
    ax.set_xlabel("time (s)")
    ax.loss_axis = loss_ax  # for callers (and tests) that read the loss traces back


def fig9_figure(runs: list[RunData]):
    """The four-panel run figure (a matplotlib Figure) for one run or several overlaid."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    # A bare Figure (no pyplot): no global figure registry, no GUI backend; saving uses Agg.
    fig = Figure(figsize=(9, 10), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[1, 1, 1.1, 1])
    for ax, (col, title), tag in zip(axes[:2], QUALITY_PANELS, "ab"):
        _quality_panel(ax, runs, col, title, tag)
    _spectrogram(axes[2], runs[0])
    _bitrate(axes[3], runs)
    if any(r.mask is not None for r in runs):
        handles = [Patch(color=c, alpha=0.5, label=n) for c, n in zip(DECISION_COLORS, DECISION_NAMES)]
        fig.legend(handles=handles, loc="outside upper center", ncol=3, fontsize=8, title="controller decisions",
                   title_fontsize=8)
    # the whole call: windows end up to a window before it (only full windows are scored)
    ends = [float(r.windows["t_end_s"].max()) for r in runs if len(r.windows)]
    ends += [r.duration_s for r in runs if np.isfinite(r.duration_s)]
    axes[-1].set_xlim(0, max(ends) if ends else 1.0)
    return fig
