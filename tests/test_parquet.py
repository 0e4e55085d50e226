"""outputs.format: parquet writes packets and frames as Parquet; every reader (the API, the
metrics' network windows, the plots' run loader) gets from it exactly what it gets from CSV."""
from __future__ import annotations

import pandas as pd
import pytest

import simlab
from helpers import small_call
from simlab.report.run_data import load_run
from simlab.table_file import table_file

pytest.importorskip("pyarrow")

SCENARIO = small_call(name="pq", seed=5, duration_s=12, jitter_s=0.03)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("pq")
    out = {}
    for fmt in ("csv", "parquet"):
        sc = simlab.load_scenario({**SCENARIO, "outputs": {"format": fmt}})
        out[fmt] = simlab.run(sc, out=base / fmt)
    return out


def test_parquet_run_writes_parquet_tables_and_the_same_summary(runs):
    folder = runs["parquet"].out
    names = sorted(p.name for p in folder.iterdir())
    assert "packets.parquet" in names and "frames.parquet" in names
    assert "packets.csv" not in names and "frames.csv" not in names
    assert table_file(folder / "packets.csv") == folder / "packets.parquet"
    a, b = runs["csv"].summary, runs["parquet"].summary
    assert {k: v for k, v in a.items() if k != "wall_s"} == {k: v for k, v in b.items() if k != "wall_s"}


def test_tables_read_back_identical_to_csv(runs):
    for table in ("packets", "frames"):
        a, b = getattr(runs["csv"], table), getattr(runs["parquet"], table)
        assert len(a) > 100
        pd.testing.assert_frame_equal(a, b)
    assert runs["parquet"].frames["t_transmit_s"].isna().any()  # NaN survives as NaN
    assert (runs["parquet"].frames["mask"] == "22111100").all()  # a system's own column stays text


def test_run_loader_and_network_windows_read_parquet(runs):
    a, b = load_run(runs["csv"].out), load_run(runs["parquet"].out)
    pd.testing.assert_frame_equal(a.windows, b.windows)
    assert (a.mask == b.mask).all() and (a.mask_t == b.mask_t).all() and len(a.mask) > 100



def test_parquet_without_pyarrow_is_one_line_before_the_run(monkeypatch):
    import importlib.util

    from simlab.errors import UserError
    from simlab.scenario_inputs import check_inputs

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a))
    sc = simlab.load_scenario({**SCENARIO, "outputs": {"format": "parquet"}})
    with pytest.raises(UserError, match=r"^outputs.format: parquet needs pyarrow"):
        check_inputs(sc)
    with pytest.raises(UserError, match="outputs.format"):
        simlab.load_scenario({**SCENARIO, "outputs": {"format": "xlsx"}})
