"""ViSQOL v3 in speech mode (PyPI ``visqol-python``) with its deep-lattice MOS mapper.

Without the lattice mapper (``ai-edge-litert``) ViSQOL falls back to a polynomial that
over-predicts by 1-2 MOS points, so this metric refuses to run without it. Scale 1-5
(MOS-LQO; clean speech scores about 4.5).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from simlab.metrics.base import METRIC_RATE, MetricInput, need


@lru_cache(maxsize=1)
def _api() -> Any:
    """One ViSQOL instance per process (loading it is slow; it holds no per-signal state)."""
    visqol = need("visqol", "visqol-python")
    need("ai_edge_litert.interpreter", "ai-edge-litert")
    api = visqol.VisqolApi()
    api.create(mode="speech", use_lattice_model=True)
    return api


def visqol(inp: MetricInput) -> dict[str, float]:
    """``visqol``: MOS-LQO of the received signal against the reference."""
    result = _api().measure_from_arrays(inp.reference.astype(np.float64),
                                        inp.received.astype(np.float64), METRIC_RATE)
    return {"visqol": float(result.moslqo)}
