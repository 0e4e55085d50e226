"""What a run figure needs from one finished run folder: its label, its window traces, the
controller's per-frame decisions and the reference audio.

windows.csv is written by `simlab.metrics.run.score_run` when the scenario lists metrics;
a run without it still gets its network traces, computed here from packets.csv and
frames.csv with the scenario's window settings (from manifest.json).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from simlab.errors import UserError
from simlab.metrics.net_windows import network_windows, read_masks, window_grid
from simlab.table_file import table_file

RUN_FILES = ("summary.csv", "packets.csv", "frames.csv")


@dataclass
class RunData:
    """One run, ready to plot. ``mask`` is [frames, depths] in {0, 1, 2} for flow 0 (None when
    the system has no token mask); ``mask_t`` the frames' capture times; ``duration_s`` the call's
    length (summary.csv); ``source_rate`` the sample rate of the audio file the run sent (manifest.json;
    None when unknown): the reference holds nothing above its Nyquist frequency but resampling
    leakage."""

    folder: Path
    label: str
    windows: pd.DataFrame
    frame_s: float
    mask_t: np.ndarray | None = None
    mask: np.ndarray | None = None
    reference: Path | None = None
    scenario: dict = field(default_factory=dict)  # resolved, from manifest.json ({} if unreadable)
    duration_s: float = float("nan")
    source_rate: int | None = None


def _manifest(folder: Path) -> dict:
    """manifest.json; empty when unreadable."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, TypeError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _scenario(manifest: dict) -> dict:
    """The resolved scenario the run was made with; empty when unknown."""
    scenario = manifest.get("scenario")
    return scenario if isinstance(scenario, dict) else {}


def _source_rate(manifest: dict) -> int | None:
    """The sample rate of the run's audio file as it was (before resampling to the system's)."""
    rate = manifest.get("audio_sample_rate")
    return int(rate) if isinstance(rate, (int, float)) and rate > 0 else None


def _window_settings(scenario: dict) -> tuple[float, float]:
    """(window_s, hop_s) of the run's scenario (defaults 2.5 s, 0.5 s)."""
    try:
        w = scenario["windows"]
        return float(w["window_s"]), float(w["hop_s"])
    except (KeyError, TypeError, ValueError):
        return 2.5, 0.5


def load_run(folder: str | Path) -> RunData:
    """Read a run folder; `UserError` when it is not one (missing folder or table)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: run folder not found")
    missing = [f for f in RUN_FILES if not table_file(folder / f).is_file()]
    if missing:
        raise UserError(f"{folder}: not a finished run (no {', '.join(missing)})")
    summary = pd.read_csv(folder / "summary.csv")
    if len(summary) == 0 or "duration_s" not in summary or "frames" not in summary:
        raise UserError(f"{folder}/summary.csv: lacks duration_s or frames")
    row = summary.iloc[0]
    manifest = _manifest(folder)
    scenario = _scenario(manifest)
    label = str(row["system"]) if "system" in summary else folder.name
    duration = float(row["duration_s"])
    frame_s = duration / max(1, int(row["frames"]) // max(1, int(row.get("flows", 1))))
    if (folder / "windows.csv").is_file():
        windows = pd.read_csv(folder / "windows.csv")
        if not {"t_start_s", "t_end_s"} <= set(windows.columns):
            raise UserError(f"{folder}/windows.csv: lacks t_start_s / t_end_s")
    else:
        starts, ends = window_grid(duration, *_window_settings(scenario))
        windows = network_windows(folder, starts, ends)
    masks = read_masks(folder / "frames.csv", flow=0)
    ref = folder / "reference.wav"
    return RunData(folder, label, windows, frame_s, *(masks if masks is not None else (None, None)),
                   reference=ref if ref.is_file() else None, scenario=scenario, duration_s=duration,
                   source_rate=_source_rate(manifest))


def load_runs(folders: list[Path]) -> list[RunData]:
    """Several runs; labels that repeat get the folder name added, so legends tell them apart."""
    runs = [load_run(f) for f in folders]
    labels = [r.label for r in runs]
    for r in runs:
        if labels.count(r.label) > 1:
            r.label = f"{r.label} ({r.folder.name})"
    return runs
