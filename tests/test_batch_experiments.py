"""The shipped experiments expand into valid runs, and the cheap one gives eq. (24)'s numbers."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simlab.batch import expand, load_experiment, run_batch
from simlab.batch.audio_set import AudioMissing
from simlab.batch.runner import select
from simlab.errors import UserError
from tests.helpers import ROOT

EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))
COUNTS = {"eq24_overhead": 18, "fig4_bitrate": (8 + 5 + 5) * 8, "fig5_loss": 13 * 4 * 8,
          "fig6_wer_f0": 4 * 3 * 24, "fig7_ablation": 7 * 3 * 8, "table2_latency": (2 + 1 + 2) * 2,  # AAC: cpu only
          "bitrate_ladder": (2 * 16 + 5 + 2 + 8 + 1 + 3 + 5 + 3 + 4 + 1 + 1) * 3 * 2}


def test_every_experiment_is_listed_in_the_readme():
    readme = (ROOT / "experiments" / "README.md").read_text()
    assert {p.stem for p in EXPERIMENTS} == set(COUNTS)
    assert all(f"`{p.name}`" in readme for p in EXPERIMENTS)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_shipped_experiment_expands(path: Path):
    try:
        runs = expand(load_experiment(path))
    except AudioMissing as exc:
        pytest.skip(f"shared speech absent: {exc}")
    assert len(runs) == COUNTS[path.stem]
    assert len({r.key for r in runs}) == len(runs)
    for r in runs:
        sc = r.parse()
        if sc.audio is not None:
            assert sc.audio_path().is_file()
        if "wer" in sc.metrics:
            assert sc.transcript, f"{r.coords['audio']}: no transcript found"


def test_set_and_only(tmp_path):
    path = ROOT / "experiments" / "eq24_overhead.yaml"
    exp = load_experiment(path, ["seed=3"])
    assert exp.seed == 3 and exp.name == "eq24_overhead"
    assert len(select(expand(exp), {"system.quantizers": 8, "network.headers": "ipv6"})) == 2
    with pytest.raises(UserError, match="--only quantizers: not a coordinate"):
        select(expand(exp), {"quantizers": 8})
    with pytest.raises(UserError, match="only top-level experiment keys"):
        load_experiment(path, ["grid.network.headers=[ipv4]"])


def test_eq24_overhead_numbers(tmp_path):
    res = run_batch(ROOT / "experiments" / "eq24_overhead.yaml", tmp_path / "out", jobs=2, progress=False,
                    only={"system.quantizers": 8})
    assert (res.total, res.failed) == (6, 0)
    t = pd.read_csv(tmp_path / "out" / "runs.csv").set_index(["network.headers", "feedback.accounting"])
    # 6.25 packets/s of 40 B (IPv4) or 60 B (IPv6) RTP/UDP/IP headers; 1 B every 100 ms
    assert t.loc[("ipv4", "payload"), "header_bps"] == pytest.approx(6.25 * 40 * 8)
    assert t.loc[("ipv6", "payload"), "header_bps"] == pytest.approx(6.25 * 60 * 8)
    assert t.loc[("ipv4", "payload"), "ctrl_bps"] == pytest.approx(80)
    assert (t.loc[(slice(None), "rtcp"), "ctrl_bps"] > 80).all()
    assert t.loc[("rohc", "payload"), "header_bps"] < 6.25 * 44 * 8
    for idx in [("ipv4", "payload"), ("ipv6", "payload"), ("ipv4", "rtcp")]:
        row = t.loc[idx]
        assert row["total_bps"] == pytest.approx(row["payload_bps"] + row["header_bps"] + row["ctrl_bps"])
        assert row["total_bps"] == pytest.approx(row["eq24_total_bps"])
