"""How long each metric takes per minute of audio (for ``simlab bench``).

Each metric first runs once on 3 s (model loading and JIT compilation are one-off costs,
reported apart as ``warmup_s``), then is timed on the shipped 19 s clip against a copy
with every fifth 80 ms frame zeroed. WER is timed once per recogniser; its value against
the placeholder transcript means nothing and is not reported.
"""
from __future__ import annotations

import time

import numpy as np

from simlab.audio import SHIPPED_CLIP, read_audio
from simlab.metrics.base import METRIC_RATE, MetricInput
from simlab import registry
from simlab.metrics.registry import metric_names, run_metric

_PLACEHOLDER = "placeholder transcript for timing only"


def _zero_frames(x: np.ndarray, every: int = 5, frame_s: float = 0.08) -> np.ndarray:
    y = x.copy()
    n = int(frame_s * METRIC_RATE)
    for start in range(0, len(y), every * n):
        y[start:start + n] = 0.0
    return y


def bench_metrics(names: tuple[str, ...] | None = None,
                  recognizers: tuple[str, ...] | None = None) -> list[dict]:
    """One row per metric (per recogniser for wer): ``metric, recognizer, audio_s,
    warmup_s, wall_s, s_per_audio_min, status`` (``ok`` or the metric's status)."""
    ref = read_audio(SHIPPED_CLIP, METRIC_RATE)
    rec = _zero_frames(ref)
    short = slice(0, 3 * METRIC_RATE)
    rows = []
    for name in names if names is not None else metric_names():
        if name == "token_accuracy" or registry.get("metrics", name).scores_tables:
            continue  # counts over a table: nothing to time per minute of audio
        for recog in (recognizers or tuple(registry.entries("recognizers"))) if name == "wer" else ("",):
            kw = {"transcript": _PLACEHOLDER, "recognizer": recog} if name == "wer" else {}
            t = time.perf_counter()
            run_metric(name, MetricInput(ref[short], rec[short], **kw))
            warm = time.perf_counter() - t
            t = time.perf_counter()
            out = run_metric(name, MetricInput(ref, rec, **kw))
            wall = time.perf_counter() - t
            audio_s = len(ref) / METRIC_RATE
            rows.append({"metric": name, "recognizer": recog, "audio_s": round(audio_s, 2),
                         "warmup_s": round(warm, 3), "wall_s": round(wall, 3),
                         "s_per_audio_min": round(wall * 60.0 / audio_s, 3),
                         "status": str(out.get(f"{name}_status", "ok"))})
    return rows
