"""The block engine writes what the event engine writes, byte for byte: packets and frames tables
(CSV and Parquet), the summary, and rows kept in memory, across the settings it takes (flows,
losses and schedules, redundancy, headers, report formats, estimators, stage costs that queue,
slow links, late packets, long delays); and scenarios it cannot take run on the event engine."""
import copy
import hashlib

import pytest

from simlab.bench.network import SCENARIO
from simlab.errors import UserError
from simlab.scenario import parse_scenario
from simlab.simulation import simulate

# the network bench's call (synthetic tokens, 2 frames a packet, 10 % loss, a report every 100 ms), 20 s
BASE = {**copy.deepcopy(SCENARIO), "name": "block", "seed": 3, "duration_s": 20.0}


def profile(encoder, controller, concealer=0.003, decoder=0.002) -> str:
    stages = dict(encoder=encoder, controller=controller, concealer=concealer, decoder=decoder)
    return "systems:\n  synthetic:\n" + "".join(f"    {k}: {{median_s: {v}}}\n" for k, v in stages.items())


def variant(**changes) -> dict:
    """BASE with ``changes`` (dotted key paths) applied."""
    sc = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = sc
        *parents, leaf = path.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return sc


CASES = {
    "plain": variant(),
    "three_flows": variant(flows=3),
    "flows_bursty": variant(flows=4, network__forward__loss={"model": "gilbert_elliott", "loss": 0.2, "burst": 4}),
    "phases": variant(network__forward__schedule=[{"until_s": 5, "loss": {"model": "uniform", "p": 0.0}},
                                                  {"until_s": 12, "loss": {"model": "uniform", "p": 0.5}}]),
    "redundant_same": variant(system={"kind": "synthetic", "quantizers": 6, "redundant": 3}),
    "rohc_3_per_packet": variant(network__headers="rohc", packetization__frames_per_packet=3, duration_s=19.9),
    "one_per_packet": variant(packetization__frames_per_packet=1, flows=2),
    "rtcp_window": variant(feedback={"interval_s": 0.25, "report_bytes": 2, "accounting": "rtcp",
                                     "estimator": {"kind": "window", "window_s": 1.0}, "initial_p": 0.05}),
    "reverse_lossy": variant(network__reverse={"delay_s": 0.05, "bandwidth_bps": 2000,
                                               "loss": {"model": "uniform", "p": 0.3}}, flows=2),
    "slow_link_queues": variant(network__forward__bandwidth_bps=3000, network__forward__link_overhead_bytes=38),
    "late_packets": variant(receiver={"playout_delay_s": 0.03}, network__forward__delay_s=0.05, flows=2),
    # 1024 reports in 20 s: the sender's list of reports is trimmed between a frame's capture and its wake
    "reports_trimmed": variant(duration_s=30.0, packetization__frames_per_packet=3, feedback={"interval_s": 0.02},
                               network__forward={"bandwidth_bps": 2000, "delay_s": 0.0, "link_overhead_bytes": 38,
                                                 "loss": {"model": "gilbert_elliott", "loss": 0.3, "burst": 5}},
                               network__reverse={"delay_s": 0.3, "bandwidth_bps": 1000}),
    # 30 min: blocks of 16k packets written behind, frames tables formatted in halves at once
    "half_hour": variant(duration_s=1800.0),
    "long_delay": variant(network__forward__delay_s=1.3, network__reverse__delay_s=0.9,
                          receiver={"playout_delay_s": 1.5}, flows=2),
}


def _run(sc_dict, engine, tmp_path, fmt="csv", costs=None):
    sc_dict = copy.deepcopy(sc_dict)
    if fmt != "csv":
        sc_dict["outputs"] = {"format": fmt}
    if costs:
        (tmp_path / "p.yaml").write_text(profile(*costs))
        sc_dict["compute"] = {"timing": "profile", "profile": str(tmp_path / "p.yaml")}
    sc = parse_scenario(sc_dict, tmp_path)
    out = tmp_path / f"{engine}-{fmt}"
    out.mkdir()
    r = simulate(sc, out, engine=engine)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    return files, r


def _same(sc_dict, tmp_path, fmt="csv", costs=None):
    ev, r_ev = _run(sc_dict, "event", tmp_path, fmt, costs)
    bl, r_bl = _run(sc_dict, "block", tmp_path, fmt, costs)
    assert r_ev["facts"]["engine"] == "event" and r_bl["facts"]["engine"] == "block"
    assert set(ev) == {f"packets.{fmt}", f"frames.{fmt}"}
    assert bl == ev
    # the same floats, NaN where NaN (repr tells 0.1 from 0.1000000001 and nan from nan)
    assert {k: repr(v) for k, v in r_bl["summary"].items()} == {k: repr(v) for k, v in r_ev["summary"].items()}
    return r_bl


@pytest.mark.parametrize("case", sorted(CASES))
def test_block_engine_writes_the_event_engines_bytes(case, tmp_path):
    r = _same(CASES[case], tmp_path)
    assert r["summary"]["packets_sent"] > 0


@pytest.mark.parametrize("flows, costs", [(1, (0.05, 0.04)), (2, (0.013, 0.004, 0.03, 0.06))])
def test_stage_costs(flows, costs, tmp_path):
    # one flow: 90 ms of TX work per 80 ms frame, the TX device queues; two: 17 ms, sends are
    # events of their own; 90 ms of RX work per frame queues the RX device
    r = _same(variant(flows=flows), tmp_path, costs=costs)
    assert r["summary"]["t_coder_mean_s"] == pytest.approx(costs[0] + (costs[3] if len(costs) > 3 else 0.002))


@pytest.mark.parametrize("case", ["plain", "three_flows"])
def test_parquet_tables_are_the_same_files(case, tmp_path):
    pytest.importorskip("pyarrow")
    _same(CASES[case], tmp_path, fmt="parquet")


def test_rows_kept_in_memory_are_the_same(tmp_path):
    sc = parse_scenario(variant(flows=2), tmp_path)
    a = simulate(sc, None, keep=True, engine="event")["tables"]
    b = simulate(sc, None, keep=True, engine="block")["tables"]
    for x, y in zip(a, b):
        assert x.equals(y)
        assert list(x.dtypes) == list(y.dtypes)


def test_many_blocks_keep_the_order(tmp_path, monkeypatch):
    # blocks of 16 packets per flow: rows wait across block edges and still come out in order
    import simlab.sim.block_engine as be

    monkeypatch.setattr(be, "block_groups", lambda flows: 16)
    _same(variant(flows=3, network__forward__loss={"model": "gilbert_elliott", "loss": 0.4, "burst": 6},
                  receiver={"playout_delay_s": 0.05}), tmp_path)


@pytest.mark.parametrize("changes, why", [
    ({"packetization": {"frames_per_packet": 2, "interleave": True, "redundancy": "same"}}, "interleave"),
    ({"network": {"forward": {"delay_s": 0.02, "jitter_s": 0.004}, "reverse": {"delay_s": 0.02}}}, "jitter_s"),
    ({"receiver": {"jitter_buffer": {"kind": "adaptive"}}}, "adaptive"),
    ({"system": {"kind": "synthetic", "quantizers": 8, "redundant": 2},
      "packetization": {"frames_per_packet": 2, "interleave": False, "redundancy": "next"}}, "redundancy"),
])
def test_what_the_block_engine_cannot_take_runs_on_events(changes, why, tmp_path):
    sc = parse_scenario({**copy.deepcopy(BASE), **changes}, tmp_path)
    assert simulate(sc, None)["facts"]["engine"] == "event"
    with pytest.raises(UserError, match=f"engine: block cannot run this scenario: .*{why}"):
        simulate(sc, None, engine="block")


def test_ewma_update_many_is_update_report_by_report():
    import numpy as np

    from simlab.sim.estimators import Ewma

    rng = np.random.default_rng(5)
    expected = rng.integers(0, 4, 5000)
    received = np.minimum(expected, rng.integers(0, 4, 5000))
    one, many = Ewma(0.1, 0.05), Ewma(0.1, 0.05)
    values = [one.update(float(t), int(e), int(r)) for t, e, r in zip(np.arange(5000.0), expected, received)]
    block = np.concatenate([many.update_many(np.arange(a, b, dtype=float), expected[a:b], received[a:b])
                            for a, b in ((0, 0), (0, 1), (1, 1777), (1777, 5000))])
    assert block.tolist() == values and many.value == one.value


def test_a_write_that_fails_in_a_writer_thread_fails_the_run_cleanly(tmp_path, monkeypatch):
    # a full disk while a block is written behind: one line, exit status of a user error, no folder
    import errno

    from simlab.report.csvstream import CsvStream
    from simlab.simulation import run_scenario

    def full(self, columns):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(CsvStream, "add_block", full)
    sc = parse_scenario(variant(duration_s=5.0), tmp_path)
    with pytest.raises(UserError, match="cannot write the output .*No space left on device"):
        run_scenario(sc, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def random_scenario(seed: int, tmp_path) -> dict:
    """A random scenario the block engine may take: flows, durations, packets, links, reports,
    playout and stage costs drawn from the seed."""
    import random

    r = random.Random(seed)
    sc = variant(
        flows=r.choice([1, 1, 2, 3, 5]), duration_s=r.choice([3.0, 7.3, 15.0, 30.0]), seed=r.randrange(1000),
        packetization={"frames_per_packet": r.choice([1, 2, 3, 4]), "interleave": False,
                       "redundancy": r.choice(["same", "next", "own"])},
        system={"kind": "synthetic", "quantizers": r.choice([1, 4, 8]), "redundant": r.choice([0, 0, 2])},
        network={"headers": r.choice(["ipv4", "ipv6", "rohc"]),
                 "forward": {"bandwidth_bps": r.choice([2000, 8000, 64000, 1e6]),
                             "delay_s": r.choice([0.0, 0.01, 0.02, 0.08, 0.16, 0.5, 1.7]),
                             "link_overhead_bytes": r.choice([0, 38]),
                             "loss": r.choice([{"model": "uniform", "p": r.choice([0.0, 0.1, 0.5, 0.95])},
                                               {"model": "gilbert_elliott", "loss": 0.3, "burst": 5}])},
                 "reverse": {"delay_s": r.choice([0.0, 0.02, 0.3]), "bandwidth_bps": r.choice([1000, 1e6]),
                             "loss": {"model": "uniform", "p": r.choice([0.0, 0.2])}}},
        feedback={"interval_s": r.choice([0.02, 0.08, 0.1, 0.5]), "report_bytes": r.choice([1, 2]),
                  "accounting": r.choice(["payload", "rtcp"]), "initial_p": r.choice([0.0, 0.3]),
                  "estimator": r.choice([{"kind": "ewma", "alpha": 0.2}, {"kind": "window", "window_s": 1.0}])},
        receiver={"playout_delay_s": r.choice([0.0, 0.03, 0.1, 0.4, 2.0])})
    if r.random() < 0.5:
        costs = [r.choice([0.0, 0.001, 0.013, 0.05]) for _ in range(4)]
        (tmp_path / "p.yaml").write_text(profile(*costs))
        sc["compute"] = {"timing": "profile", "profile": str(tmp_path / "p.yaml")}
    return sc


@pytest.mark.parametrize("seed", range(60))
def test_random_scenarios_give_the_same_bytes(seed, tmp_path, monkeypatch):
    import random

    import simlab.sim.block_engine as be

    size = random.Random(-seed).choice([16, 100, 0])
    if size:
        monkeypatch.setattr(be, "block_groups", lambda flows: size)
    sc = random_scenario(seed, tmp_path)
    try:
        parse_scenario(sc, tmp_path)
        simulate(parse_scenario(sc, tmp_path), None, engine="block")
    except UserError:
        pytest.skip("a scenario the block engine does not take (or an invalid draw)")
    _same(sc, tmp_path)
