"""The entry points: metrics of a whole clip, and of sliding windows over it.

Both resample to 16 kHz, remove the received signal's lag (`align`), then run each
(metric, window) job, in a pool of spawned processes when more than one core is free and
there is enough audio to pay for starting them.
Every job is independent and seeded, and results are put back in request order, so the
numbers do not depend on the number of workers. Nothing is cached between calls except
loaded models inside a worker.
"""
from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import numpy as np
import pandas as pd

from simlab.audio import resample
from simlab.errors import UserError
from simlab.metrics.align import align
from simlab.metrics.asr import get_recognizer
from simlab.metrics.base import METRIC_RATE, MetricInput
from simlab.metrics.registry import Value, specs, check_names, run_metric

log = logging.getLogger(__name__)


def free_cores() -> int:
    """Cores this process may use minus the 1-minute load average, at least 1."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, int(n - os.getloadavg()[0] + 0.5))


def _to_16k(x: Any, what: str, sample_rate: int) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 1:
        raise UserError(f"{what} must be 1-D mono audio, got shape {x.shape}")
    if x.size == 0:
        raise UserError(f"{what} is empty")
    if not np.all(np.isfinite(x)):
        raise UserError(f"{what} contains NaN or infinite samples")
    # The MOS models reject samples outside [-1, 1]; a wav file would have clipped them too.
    return np.clip(resample(x.astype(np.float32), sample_rate, METRIC_RATE), -1.0, 1.0)


def prepare(reference: Any, received: Any, sample_rate: int,
            max_lag_s: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Validated, 16 kHz, aligned (reference, received) and the removed lag in seconds."""
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise UserError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    ref = _to_16k(reference, "reference", int(sample_rate))
    rec = _to_16k(received, "received", int(sample_rate))
    ref, rec, lag = align(ref, rec, METRIC_RATE, max_lag_s)
    return ref, rec, lag / METRIC_RATE


def _job(args: tuple[str, MetricInput]) -> dict[str, Value]:
    return run_metric(*args)


#: Seconds of audio each worker of a pool must get for ``workers=None`` to start one. A spawned
#: worker costs ~1.7 s of CPU before its first job (imports, ViSQOL's and PLCMOS's models), what
#: scoring ~28 s of audio (ViSQOL + PLCMOS) costs; with 60 s each, 2 workers save at least a
#: quarter of the wall time. Below that (the default scenario's 10 s clip: 21 s of audio whole,
#: 80 s in windows) this process scores faster alone, and spends half the CPU.
POOL_MIN_AUDIO_S = 60.0


def pool_size(jobs: list[tuple[str, MetricInput]], workers: int | None) -> int:
    """Processes for ``jobs``: ``workers`` (at most one per job), or for None the free cores,
    as many as get `POOL_MIN_AUDIO_S` of audio each; 1 means this process."""
    if workers is not None and workers < 1:
        raise UserError(f"workers must be >= 1, got {workers}")
    if workers is None:
        audio_s = sum(len(inp.received) for _, inp in jobs) / METRIC_RATE
        workers = min(free_cores(), int(audio_s // POOL_MIN_AUDIO_S))
    return max(1, min(len(jobs), workers))


def run_jobs(jobs: list[tuple[str, MetricInput]], workers: int | None) -> list[dict[str, Value]]:
    """``run_metric`` over ``jobs``, in order; a spawned process pool when `pool_size` > 1."""
    n = pool_size(jobs, workers)
    if n <= 1:
        return [_job(j) for j in jobs]
    # spawn, not fork: the parent may hold ONNX/TFLite/torch thread pools that fork breaks.
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        return list(pool.map(_job, jobs))


def compute_metrics(names: list[str], reference: np.ndarray, received: np.ndarray, sample_rate: int,
                    transcript: str | None = None, seed: int = 0, recognizer: str = "faster-whisper",
                    workers: int | None = None, frames: pd.DataFrame | None = None,
                    max_lag_s: float = 1.0) -> dict[str, float | str]:
    """One column per value of each named metric (see `metric_names`), plus ``align_lag_s``.

    ``reference`` and ``received`` are mono float at ``sample_rate``; the received signal
    may lag by up to ``max_lag_s``. ``transcript`` feeds ``wer`` (through the named
    ``recognizer``), ``frames`` (frames.csv) feeds ``token_accuracy``. ``seed`` fixes the
    metrics that draw random numbers. A metric that cannot run gives NaN and a
    ``<metric>_status`` column, never a made-up value.
    """
    names = check_names(names)
    if "wer" in names:
        get_recognizer(recognizer)  # an unknown name is a user error, not a status cell
    ref, rec, lag_s = prepare(reference, received, sample_rate, max_lag_s)
    inp = MetricInput(ref, rec, transcript=transcript, seed=int(seed), recognizer=recognizer, frames=frames)
    out: dict[str, float | str] = {"align_lag_s": lag_s}
    for cols in run_jobs([(n, inp) for n in names], workers):
        out.update(cols)
    return out


def window_metrics(names: list[str], reference: np.ndarray, received: np.ndarray, sample_rate: int,
                   window_s: float = 2.5, hop_s: float = 0.5, seed: int = 0, workers: int | None = None,
                   max_lag_s: float = 1.0) -> pd.DataFrame:
    """The named metrics over sliding windows (the paper's fig. 9 traces).

    One row per window: ``t_start_s, t_end_s`` (reference time) then the metric columns.
    Metrics that need a whole utterance (wer, token_accuracy) are left out. The lag is
    removed once, over the whole clip, before cutting windows.
    """
    if not window_s > 0 or not hop_s > 0:
        raise UserError(f"window_s and hop_s must be > 0, got {window_s} and {hop_s}")
    names = [n for n in check_names(names) if specs()[n].windowed]
    ref, rec, lag_s = prepare(reference, received, sample_rate, max_lag_s)
    t0 = max(0.0, -lag_s)  # a leading received signal cuts the reference's start
    win, hop = int(round(window_s * METRIC_RATE)), int(round(hop_s * METRIC_RATE))
    starts = list(range(0, max(1, len(ref) - win + 1), hop))
    jobs, rows = [], []
    for s in starts:
        e = min(s + win, len(ref))
        rows.append({"t_start_s": t0 + s / METRIC_RATE, "t_end_s": t0 + e / METRIC_RATE})
        jobs += [(n, MetricInput(ref[s:e], rec[s:e], seed=int(seed))) for n in names]
    results = run_jobs(jobs, workers)
    for i, row in enumerate(rows):
        for cols in results[i * len(names):(i + 1) * len(names)]:
            row.update(cols)
    return pd.DataFrame(rows)
