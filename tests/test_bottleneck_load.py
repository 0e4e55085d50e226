"""A real bottleneck in scenarios (network.bottleneck as a mapping, network.start_offsets,
network.send_jitter_s): calls at start offsets share a bottleneck without loss, Reno flows share
it fairly, a call's queueing delay rises with their load, CoDel holds the standing delay where
drop-tail fills the buffer, and runs repeat byte for byte."""
import filecmp

import numpy as np
import pandas as pd
import pytest

from helpers import run, scenario, tables
from simlab.batch.expand import run_key
from simlab.errors import UserError

# eq24's calls: 64 B packets (24 B payload + 40 B headers) every 160 ms, 3.2 kbit/s each
TWENTY = ["flows=20", "duration_s=60", "network.forward.loss.p=0", "network.forward.bandwidth_bps=100000",
          "network.forward.queue_packets=5", "network.bottleneck=shared"]


def test_twenty_calls_at_64_percent_lose_nothing_once_they_start_apart(tmp_path):
    _, lockstep = run(tmp_path, overrides=TWENTY, name="lockstep")
    assert lockstep["packets_dropped"] / lockstep["packets_sent"] == pytest.approx(0.7)
    for model in ("even", "uniform"):
        out, s = run(tmp_path, overrides=TWENTY + [f"network.start_offsets={{model: {model}, max_s: 0.16}}"],
                     name=model)
        assert s["packets_sent"] == 20 * 375 and s["packets_dropped"] == 0 and s["packets_lost"] == 0
        assert s["late_rate"] == 0
    # with offsets each call is the same call shifted: its frames captured from its offset on
    _, frames, _ = tables(out)
    first = frames[frames.frame == 0].set_index("flow").capture_s
    assert first.nunique() == 20 and first.min() >= 0 and first.max() < 0.16
    assert frames.latency_s.to_numpy() == pytest.approx(0.4)  # a fixed deadline, shifted with the call


def test_offsets_one_per_flow_and_send_jitter(tmp_path):
    offs = [0.0, 0.05, 0.11]
    out, s = run(tmp_path, overrides=["flows=3", "duration_s=10", f"network.start_offsets={offs}",
                                      "network.send_jitter_s=0.01"])
    packets, frames, _ = tables(out)
    media = packets[packets.kind == "media"]
    captured = np.minimum(media.first_frame + 2, 125) * 0.08  # the packet's last frame captured (125 in 10 s)
    lead = media.send_s - captured - media.flow.map(dict(enumerate(offs)))
    assert lead.min() >= 0 and lead.max() <= 0.01 and lead.std() > 0.002  # up to 10 ms late, uniform
    assert (media.groupby("flow").send_s.diff().dropna() > 0).all()  # in order
    with pytest.raises(UserError, match="2 offsets for 3 flows"):
        scenario(overrides=["flows=3", "network.start_offsets=[0, 1]"])


def _load(tmp_path, name, queue, tcp, bw=2_000_000, record=1.0, extra=()):
    bn = f"{{queue: {queue}, cross_traffic: [{tcp}], record_s: {record}}}" if tcp else f"{{queue: {queue}}}"
    out, s = run(tmp_path, overrides=["duration_s=60", "network.forward.loss.p=0", f"network.forward.bandwidth_bps={bw}",
                                      "network.forward.delay_s=0.02", f"network.bottleneck={bn}", *extra], name=name)
    packets, _, _ = tables(out)
    return s, pd.read_csv(out / "bottleneck.csv"), packets


def test_two_reno_flows_share_the_bottleneck_within_10_percent(tmp_path):
    for queue in ("{discipline: droptail, limit_packets: 20}", "{discipline: codel}"):
        _, b, _ = _load(tmp_path, queue[13:18], queue, "{kind: tcp, cc: reno, count: 2, stagger_s: 0.5}")
        tcp = b[b.kind == "tcp_reno"].groupby("flow").goodput_bytes.sum()
        assert len(tcp) == 2
        assert tcp.min() / tcp.mean() > 0.9, queue  # each within 10 % of an even share
        assert tcp.sum() * 8 / 60 > 0.9 * 2e6  # and together they fill the link


def test_a_calls_queueing_delay_rises_with_tcp_load(tmp_path):
    delays = []
    for n in (0, 1, 2, 4):
        tcp = f"{{kind: tcp, cc: reno, count: {n}}}" if n else ""
        _, b, packets = _load(tmp_path, f"n{n}", "{discipline: droptail, limit_packets: 50}", tcp)
        call = b[b.kind == "call"]
        delays.append((call.queue_delay_mean_s * call.delivered_packets).sum() / call.delivered_packets.sum())
        media = packets[(packets.kind == "media") & (packets.dropped == 0)]
        transit = (media.arrival_s - media.send_s - 0.02 - 64 * 8 / 2e6).mean()
        assert transit == pytest.approx(delays[-1], abs=1e-3)  # what bottleneck.csv says the call met
    assert delays[0] < 1e-3
    assert all(b > a + 0.005 for a, b in zip(delays, delays[1:])), delays


def test_codel_holds_the_standing_delay_near_target_where_drop_tail_fills_the_buffer(tmp_path):
    """10 Mbit/s, 40 ms RTT, four Reno flows and a call; 100 ms rows of bottleneck.csv: the
    standing queue of an interval is the least any packet waited in it (CoDel's own measure)."""
    standing = {}
    for name, queue in (("droptail", "{discipline: droptail, limit_packets: 500}"), ("codel", "{discipline: codel}")):
        _, b, _ = _load(tmp_path, name, queue, "{kind: tcp, cc: reno, count: 4, stagger_s: 0.5}", bw=10_000_000,
                        record=0.1)
        late = b[b.t_s >= 10]
        standing[name] = late.groupby("t_s").queue_delay_min_s.min()
    buffer_s = 500 * 1500 * 8 / 10e6  # 0.6 s
    assert standing["codel"].median() < 0.01  # near its 5 ms target
    assert standing["droptail"].quantile(0.9) > 0.8 * buffer_s  # grown to the buffer
    assert standing["droptail"].median() > 20 * standing["codel"].median()


CONGESTED = ["flows=3", "duration_s=20", "network.forward.loss={model: uniform, p: 0.01}",
             "network.forward.bandwidth_bps=1000000", "network.start_offsets={model: uniform, max_s: 0.16}",
             "network.send_jitter_s=0.002",
             "network.bottleneck={queue: {discipline: red, limit_packets: 100}, cross_traffic: [{kind: tcp, cc: cubic}, "
             "{kind: poisson, rate_bps: 200000}, {kind: onoff, rate_bps: 300000, distribution: pareto}], record_s: 0.5}"]


def test_same_seed_same_bytes_with_every_new_model(tmp_path):
    a, _ = run(tmp_path, overrides=CONGESTED, name="a")
    b, _ = run(tmp_path, overrides=CONGESTED, name="b")
    c, _ = run(tmp_path, overrides=CONGESTED + ["seed=7"], name="c")
    for f in ("packets.csv", "frames.csv", "summary.csv", "bottleneck.csv"):
        assert filecmp.cmp(a / f, b / f, shallow=False), f
    assert not filecmp.cmp(a / "bottleneck.csv", c / "bottleneck.csv", shallow=False)
    bn = pd.read_csv(a / "bottleneck.csv")
    assert set(bn.kind) == {"call", "tcp_cubic", "poisson", "onoff"}
    assert set(bn.flow) == {0, 1, 2, 3, 4, 5}
    packets = pd.read_csv(a / "packets.csv")
    assert set(packets.flow) == {0, 1, 2}  # cross traffic stays out of packets.csv
    calls = bn[bn.kind == "call"]
    media = packets[packets.kind != "feedback"]
    assert calls.sent_packets.sum() == len(media)
    assert calls.dropped_packets.sum() == media.dropped.sum() and calls.lost_packets.sum() == media.lost.sum()


def test_a_mapping_with_the_mode_alone_is_the_plain_mode(tmp_path):
    plain = scenario(overrides=["flows=2", "network.bottleneck=shared"])
    mapping = scenario(overrides=["flows=2", "network.bottleneck={mode: shared}"])
    assert plain.resolved() == mapping.resolved()
    assert mapping.resolved()["network"]["bottleneck"] == "shared"
    old = scenario().resolved()
    for key in ("start_offsets", "send_jitter_s"):
        assert key in old["network"]
    trimmed = {**old, "network": {k: v for k, v in old["network"].items() if k not in ("start_offsets", "send_jitter_s")}}
    assert run_key(old) == run_key(trimmed)  # keys added at their neutral value leave run keys as they were


@pytest.mark.parametrize("override,message", [
    ("network.bottleneck={queue: {discipline: codel}}", "network.forward.queue_packets: the bottleneck's queue"),
    ("network.bottleneck={mode: per_flow, cross_traffic: [{kind: tcp}]}", "cross_traffic needs mode: shared"),
    ("network.bottleneck={queue: {discipline: codel, target: 0.01}}", "queue.target: unknown key; did you mean 'target_s'"),
    ("network.bottleneck={queue: {discipline: red, min_th: 20}}", "min_th (20.0) must be below max_th"),
    ("network.bottleneck=sharde", "network.bottleneck.mode: 'sharde' is not one of"),
])
def test_malformed_bottlenecks_are_refused_in_one_line(override, message):
    with pytest.raises(UserError) as err:
        scenario(overrides=["network.forward.queue_packets=5", override])
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_queued_drop_tail_bottleneck_gives_the_plain_shared_links_records(tmp_path):
    base = ["flows=20", "duration_s=30", "network.forward.loss={model: gilbert_elliott, loss: 0.1, burst: 3}",
            "network.forward.bandwidth_bps=100000", "network.forward.jitter_s=0.01",
            "network.start_offsets={model: uniform, max_s: 0.05}", "network.send_jitter_s=0.003"]
    a, sa = run(tmp_path, overrides=base + ["network.forward.queue_packets=5", "network.bottleneck=shared"], name="a")
    b, _ = run(tmp_path, overrides=base + ["network.forward.queue_packets=5",
                                           "network.bottleneck={mode: shared, record_s: 0.5}"], name="b")
    c, _ = run(tmp_path, overrides=base + ["network.bottleneck={queue: {discipline: droptail, limit_packets: 5}}"],
               name="c")
    assert sa["packets_dropped"] > 500 and sa["packets_lost"] > 100
    for f in ("packets.csv", "frames.csv", "summary.csv"):
        assert filecmp.cmp(a / f, b / f, shallow=False) and filecmp.cmp(a / f, c / f, shallow=False), f
    assert not (a / "bottleneck.csv").exists() and (b / "bottleneck.csv").exists()


def test_per_flow_queues_and_cross_traffic_that_stops(tmp_path):
    out, s = run(tmp_path, overrides=["flows=2", "duration_s=20", "network.forward.loss.p=0",
                                      "network.forward.bandwidth_bps=5000",
                                      "network.bottleneck={mode: per_flow, queue: {discipline: codel}}"], name="own")
    b = pd.read_csv(out / "bottleneck.csv")
    assert set(b.kind) == {"call"} and s["packets_dropped"] == 0  # each call alone fits its own link
    out, _ = run(tmp_path, overrides=["duration_s=20", "network.forward.loss.p=0",
                                      "network.bottleneck={cross_traffic: [{kind: cbr, rate_bps: 120000, start_s: 5, "
                                      "stop_s: 10}]}"], name="cbr")
    b = pd.read_csv(out / "bottleneck.csv")
    cbr = b[b.kind == "cbr"].set_index("t_s").sent_packets
    assert cbr.loc[5:9].tolist() == [10] * 5 and cbr.drop(index=range(5, 10)).sum() == 0
