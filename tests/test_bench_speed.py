"""The speed benchmarks of issue 17 (items 3-5) and the scoring pool's size rule."""
from __future__ import annotations

import numpy as np
import pytest

from simlab.metrics import compute
from simlab.metrics.base import METRIC_RATE, MetricInput


def _jobs(n: int, seconds: float) -> list:
    x = np.zeros(int(seconds * METRIC_RATE), np.float32)
    return [("plcmos", MetricInput(x, x))] * n


def test_pool_only_for_enough_audio(monkeypatch):
    monkeypatch.setattr(compute, "free_cores", lambda: 2)
    assert compute.pool_size(_jobs(2, 10.4), None) == 1  # the default scenario's clip, whole
    assert compute.pool_size(_jobs(32, 2.5), None) == 1  # ... and in windows: 80 s
    assert compute.pool_size(_jobs(2, 60.0), None) == 2  # a minute each: a pool pays
    assert compute.pool_size(_jobs(40, 2.5), None) == 1
    assert compute.pool_size(_jobs(60, 2.5), None) == 2
    monkeypatch.setattr(compute, "free_cores", lambda: 1)
    assert compute.pool_size(_jobs(2, 600.0), None) == 1  # no free core: never
    assert compute.pool_size(_jobs(3, 1.0), 2) == 2  # asked for: as asked
    assert compute.pool_size(_jobs(1, 1.0), 4) == 1  # at most one per job
    assert compute.pool_size([], None) == 1
    with pytest.raises(Exception, match="workers must be >= 1"):
        compute.pool_size(_jobs(1, 1.0), 0)


def test_ceiling_row():
    from simlab.batch.bench import ceiling

    row = ceiling(2, n=200_000)
    assert row["workers"] == 2 and row["one_s"] > 0 and row["side_by_side_s"] > 0
    assert 0 < row["speedup"] <= 2.5


@pytest.mark.slow
def test_largesc_call_row():
    from simlab.bench.largesc_run import STAGES, largesc_call

    row = largesc_call(2.0)
    assert row["speech_s"] == pytest.approx(2.0, abs=0.2)
    assert row["torch_threads"] == 1
    assert row["rtf_wall"] == pytest.approx(row["wall_s"] / row["speech_s"], rel=0.01)
    assert row["call_s"] < row["wall_s"] and row["imports_s"] > 0 and row["load_s"] > 0
    assert all(row[f"{s}_ms"] > 0 for s in STAGES)
