"""The Dask executor (a real LocalCluster on loopback, 2 worker processes) gives the same table as
the local process pool."""
from __future__ import annotations

import pandas as pd
import pytest

from simlab.batch import parse_experiment, run_batch
from tests.helpers import ROOT

pytest.importorskip("distributed")


@pytest.mark.slow
def test_dask_local_cluster_matches_local_pool(tmp_path):
    exp = parse_experiment({
        "name": "dask", "seed": 11, "repeats": 2,
        "base": {"duration_s": 10, "system": {"kind": "synthetic"}},
        "grid": {"network.forward.loss": [{"model": "uniform", "p": 0.1},
                                          {"model": "gilbert_elliott", "loss": 0.1, "burst": 3}]},
        "systems": [{"label": "q8", "spec": {"kind": "synthetic"}},
                    {"label": "q4r2", "spec": {"kind": "synthetic", "quantizers": 4, "redundant": 2}}],
        "same_seed_across": ["label"],
    }, ROOT, "dask")
    local = run_batch(exp, tmp_path / "local", jobs=1, progress=False)
    dask = run_batch(exp, tmp_path / "dask", jobs=2, dask="local", progress=False)
    assert (local.ran, local.failed, dask.ran, dask.failed) == (8, 0, 8, 0)
    a = pd.read_csv(tmp_path / "local" / "runs.csv").sort_values("key").reset_index(drop=True)
    b = pd.read_csv(tmp_path / "dask" / "runs.csv").sort_values("key").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    summary = list(a.columns[a.columns.get_loc("error") + 1:])
    assert {"packets_lost", "total_bps", "tokens_lost", "latency_p95_s"} <= set(summary)
    pd.testing.assert_frame_equal(a, b)  # coordinates, keys, seeds and every summary column
    # same_seed_across: [label]: both systems run on one seed per grid point (common random numbers)
    for _, grp in a.groupby(["network.forward.loss", "repeat"]):
        assert len(grp) == 2 and grp["seed"].nunique() == 1
    assert a["seed"].nunique() == 4
    assert a["packets_lost"].gt(0).all()
