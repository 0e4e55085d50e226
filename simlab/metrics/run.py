"""Scoring a finished run: the scenario's quality metrics over the whole clip (summary.csv
columns) and the sliding-window traces of windows.csv (the paper's fig. 9).

`simlab.simulation.run_scenario` calls `score_run` on the run's folder when the scenario lists
``metrics:``; it can also be called on any finished run folder.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from simlab.errors import UserError
from simlab.metrics.base import METRIC_RATE, MetricInput
from simlab.metrics.compute import compute_metrics, window_metrics
from simlab.metrics.net_windows import network_windows, read_csv, window_grid
from simlab.metrics.registry import check_names, specs, run_metric
from simlab.metrics.tokens import COLUMNS as TOKEN_COLUMNS
from simlab.metrics.transcript import resolve_transcript
from simlab.table_file import read_parquet, table_columns, table_file

WINDOWS_FILE = "windows.csv"


def _read_audio(folder: Path, sc=None) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(reference, received, sample_rate) from the run folder, or None when it has no audio.

    A system that codes below the metrics' 16 kHz (G.711, AMR, Codec2 at 8 kHz) writes a
    reference.wav at its own rate, which has already lost the band the codec cannot carry: scored
    against it, a narrowband codec would look as good as a wideband one. Its reference is then the
    scenario's source file at 16 kHz (looped to the call's length, as the sender looped it)."""
    import soundfile as sf

    ref_p, rec_p = folder / "reference.wav", folder / "received.wav"
    if not (ref_p.is_file() and rec_p.is_file()):
        return None
    ref, sr = sf.read(str(ref_p), dtype="float32")
    rec, sr_rx = sf.read(str(rec_p), dtype="float32")
    if sr != sr_rx:
        raise UserError(f"{folder}: reference.wav is {sr} Hz but received.wav is {sr_rx} Hz")
    source = sc.audio_path() if sc is not None and sr < METRIC_RATE else None
    if source is not None:
        from simlab.audio import read_audio, resample

        src = read_audio(source, METRIC_RATE)
        n = int(round(len(ref) * METRIC_RATE / sr))
        ref = np.tile(src, -(-n // len(src)))[:n]
        return ref, resample(rec, int(sr), METRIC_RATE).astype(np.float32), METRIC_RATE
    return ref, rec, int(sr)


def _token_frames(folder: Path) -> pd.DataFrame | None:
    """frames.csv's concealment masks (as strings) for token_accuracy, or None if absent."""
    path = table_file(folder / "frames.csv")
    if any(c not in table_columns(path) for c in TOKEN_COLUMNS):
        return None
    if path.suffix == ".parquet":
        return read_parquet(path, {c: str for c in TOKEN_COLUMNS}, list(TOKEN_COLUMNS))
    return pd.read_csv(path, usecols=list(TOKEN_COLUMNS), dtype=str, keep_default_na=False)


def _declined(name: str, why: str) -> dict[str, float | str]:
    """A metric that could not be scored: NaN columns and a status that says why."""
    return {**{c: math.nan for c in specs()[name].columns}, f"{name}_status": f"skipped: {why}"}


def _frames_duration(folder: Path, sc) -> float:
    """Length of the call from frames.csv (frames of flow 0 × frame length)."""
    fr = read_csv(folder / "frames.csv", {"flow": "int32", "frame": "int64", "capture_s": "float64"},
                  "frames table")
    fr = fr[fr["flow"] == 0]
    last = int(fr["frame"].max()) if len(fr) else 0
    if last > 0:
        frame_s = float(fr.loc[fr["frame"] == last, "capture_s"].iloc[0]) / last
        return (last + 1) * frame_s
    if sc.duration_s is not None:
        return float(sc.duration_s)
    raise UserError(f"{folder}: frames.csv holds one frame or none; cannot tell the call's length")


def score_run(sc, folder: str | Path) -> dict[str, float | str]:
    """Score the run in ``folder`` with the scenario ``sc``'s metrics; write windows.csv.

    Returns the whole-clip columns for summary.csv (`compute_metrics`' columns, or NaN with a
    ``<metric>_status`` where a metric cannot run: no audio, no concealment masks).
    windows.csv has one row per window (``sc.windows.window_s`` every ``hop_s``):
    ``t_start_s, t_end_s``, each windowed metric, then the network columns of
    `simlab.metrics.net_windows.network_windows`. Without audio only the latter.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: run folder not found")
    names = check_names(list(sc.metrics))
    tabled = [n for n in names if specs()[n].scores_tables]  # scored from packets/frames.csv, audio or not
    names = [n for n in names if n not in tabled]
    audio = _read_audio(folder, sc)
    frames = _token_frames(folder) if "token_accuracy" in names else None
    out: dict[str, float | str] = {}
    scored = []
    for n in names:
        if n == "token_accuracy" and frames is None:
            out.update(_declined(n, f"frames.csv has no {' / '.join(TOKEN_COLUMNS)} (no token concealment)"))
        elif audio is None and n != "token_accuracy":
            why = (f"{sc.flows} flows: audio is written for single-call runs only" if sc.flows > 1
                   else "the run has no reference.wav/received.wav")
            out.update(_declined(n, why))
        else:
            scored.append(n)
    if audio is None:
        if "token_accuracy" in scored:  # needs frames.csv only
            out.update(run_metric("token_accuracy", MetricInput(np.zeros(0), np.zeros(0), frames=frames)))
        starts, ends = window_grid(_frames_duration(folder, sc), sc.windows.window_s, sc.windows.hop_s)
        win = pd.DataFrame({"t_start_s": starts, "t_end_s": ends})
    else:
        ref, rec, sr = audio
        if scored:
            text = resolve_transcript(sc, sc.audio_path()) if "wer" in scored else None
            out.update(compute_metrics(scored, ref, rec, sr, transcript=text, seed=sc.seed,
                                       recognizer=sc.recognizer, frames=frames))
        # Windowed metrics cost several times the whole-file ones: a batch can turn them off.
        windowed = [n for n in scored if specs()[n].windowed] if sc.windows.metrics else []
        if windowed:
            win = window_metrics(windowed, ref, rec, sr, window_s=sc.windows.window_s, hop_s=sc.windows.hop_s,
                                 seed=sc.seed)
        else:
            starts, ends = window_grid(len(ref) / sr, sc.windows.window_s, sc.windows.hop_s)
            win = pd.DataFrame({"t_start_s": starts, "t_end_s": ends})
    net = network_windows(folder, win["t_start_s"].to_numpy(), win["t_end_s"].to_numpy())
    table = pd.concat([win, net.drop(columns=["t_start_s", "t_end_s"])], axis=1)
    if tabled:
        whole, per_window = _table_metrics(sc, folder, tabled, win["t_start_s"].to_numpy(), win["t_end_s"].to_numpy())
        out.update(whole)
        table = pd.concat([table, per_window], axis=1)
    table.to_csv(folder / WINDOWS_FILE, index=False)
    return out


def _table_metrics(sc, folder: Path, names: list[str], starts: np.ndarray,
                   ends: np.ndarray) -> tuple[dict[str, float | str], pd.DataFrame]:
    """Metrics that score the run's tables (``scores_tables``): their summary columns, and their
    columns per window (when they are ``windowed`` and ``windows.metrics`` is on)."""
    from simlab.metrics.run_tables import RunTables

    tables = RunTables.read(folder, sc.system)
    out: dict[str, float | str] = {}
    rows: list[dict] = [{} for _ in starts]
    for n in names:
        out.update(run_metric(n, MetricInput(np.zeros(0), np.zeros(0), run=tables)))
        if specs()[n].windowed and sc.windows.metrics:
            for row, s, e in zip(rows, starts, ends):
                row.update(run_metric(n, MetricInput(np.zeros(0), np.zeros(0), run=tables.window(s, e))))
    return out, pd.DataFrame(rows, index=range(len(starts)))
