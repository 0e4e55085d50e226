"""PLCMOS v2 (Microsoft, PyPI ``speechmos``): a non-intrusive MOS for packet-loss concealment.

PLCMOS averages its network's output over 15 random "rater" embeddings drawn from numpy's
global state. To make scores repeat, the global state is seeded around the call and the
caller's state restored afterwards; a lock keeps threads from interleaving there.
Scale 1-5. It barely sees bandwidth: show ViSQOL beside it when codecs differ in bandwidth.
"""
from __future__ import annotations

import threading

import numpy as np

from simlab.metrics.base import METRIC_RATE, MetricInput, need

_GLOBAL_RANDOM = threading.Lock()


def plcmos(inp: MetricInput) -> dict[str, float]:
    """``plcmos`` of the received signal (the reference is not used)."""
    need("onnxruntime", "onnxruntime")
    run = need("speechmos.plcmos", "speechmos").run
    with _GLOBAL_RANDOM:
        saved = np.random.get_state()
        np.random.seed(inp.seed % 2**32)
        try:
            score = run(inp.received.astype(np.float32), METRIC_RATE)["plcmos"]
        finally:
            np.random.set_state(saved)
    return {"plcmos": float(score)}
