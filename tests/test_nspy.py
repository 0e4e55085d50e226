"""simlab calls through ns.py topologies (simlab.sim.nspy, examples/nspy_bottleneck.py): every packet
gets one fate, delays and rates obey the bottleneck, runs repeat, and an ns.py port and wire behave
as simlab's own link."""
import importlib.util
import math

import numpy as np
import pandas as pd
import pytest
import simpy

pytest.importorskip("ns", reason="ns.py is not installed (pip install 'ns.py>=0.4', or simlab's 'nspy' "
                                  "extra): the ns.py composition tests are skipped")

from ns.port.port import Port  # noqa: E402
from ns.port.wire import Wire  # noqa: E402

import simlab  # noqa: E402
from helpers import ROOT  # noqa: E402
from simlab.packets import Packet  # noqa: E402
from simlab.report.recorder import RunRecorder  # noqa: E402
from simlab.sim.nspy import FromNsPy, NsPyPath, ToNsPy  # noqa: E402


def _example():
    spec = importlib.util.spec_from_file_location("nspy_bottleneck", ROOT / "examples" / "nspy_bottleneck.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


nb = _example()
DURATION_S = 8.0
_RUNS: dict = {}


def bottleneck(scheduler, **kw):
    key = (scheduler, repr(sorted(kw.items())))
    if key not in _RUNS:
        _RUNS[key] = nb.run(scheduler, DURATION_S, **kw)
    return _RUNS[key]


def check_fates(res, calls=2):
    """Every frame of every call has its row, its tokens add up, and every packet a call sent
    has exactly one fate."""
    pk, fr = res["packets"], res["frames"]
    n_frames = int(math.floor(DURATION_S / 0.08 + 1e-9))
    assert sorted(set(fr.flow)) == list(range(calls))
    for f in range(calls):
        assert list(fr[fr.flow == f].frame) == list(range(n_frames))
    assert (fr.tokens_sent == fr.tokens_received + fr.tokens_lost + fr.tokens_late).all()
    media = pk[pk.kind != "feedback"]
    for f, path in enumerate(res["paths"]):
        mine = media[media.flow == f]
        assert len(mine) == path.entry.sent  # one record per packet that went into ns.py
        assert sorted(mine.seq) == list(range(path.entry.sent))  # no packet twice, none missing
        assert path.entry.in_flight() == 0
    delivered = media.arrival_s.notna()
    assert (delivered ^ (media.dropped == 1)).all()  # arrived, or dropped: exactly one
    assert (media.lost == 0).all()  # ns.py's elements here erase nothing
    assert (media[media.late == 1].arrival_s.notna()).all()


@pytest.mark.parametrize("scheduler", nb.SCHEDULERS)
def test_every_packet_gets_one_fate_and_the_bottleneck_is_obeyed(scheduler):
    res = bottleneck(scheduler)
    check_fates(res)
    link, media = res["link"], res["packets"]
    rate, delay = link["rate_bps"], link["delay_s"]
    media = media[(media.kind != "feedback") & media.arrival_s.notna()]
    assert len(media) > 0
    # no packet crosses faster than propagation + its own serialization
    floor = delay + (media.header_bytes + media.payload_bytes) * 8 / rate
    assert ((media.arrival_s - media.send_s) >= floor - 1e-9).all()
    # TCP gets through, and the link carries no more than its rate: what left the bottleneck, and
    # what reached the receivers (sent at least `delay` before the end)
    assert (res["tcp"].throughput_bps > 0).all() and (res["tcp"].goodput_bps > 0).all()
    assert 8 * link["bytes"] <= rate * link["end_s"] * (1 + 1e-12)
    received = sum(s.bytes_received[f] for f, s in res["sinks"].items()) + (
        media.header_bytes + media.payload_bytes).sum()
    assert 8 * received <= rate * (link["end_s"] - delay) * (1 + 1e-12)
    assert link["utilization"] > 0.9  # TCP fills the rest


def test_a_scheduler_protects_the_calls_and_a_fifo_does_not():
    sp, drr, fifo = bottleneck("sp"), bottleneck("drr"), bottleneck("fifo")
    rate, delay = sp["link"]["rate_bps"], sp["link"]["delay_s"]
    for res in (sp, drr):
        media = res["packets"][res["packets"].kind != "feedback"]
        assert media.dropped.sum() == 0 and media.late.sum() == 0
        assert (res["frames"].tokens_lost + res["frames"].tokens_late == 0).all()
    # strict priority: a call packet waits for at most the TCP segment in service and the other
    # call's packet sent at the same instant (64-byte packets)
    bound = delay + (512 + 2 * 64) * 8 / rate
    assert sp["frames"].t_transmit_s.max() <= bound + 1e-9
    # DRR with one 1500-byte quantum per TCP flow a round: at most one quantum per TCP flow more
    assert drr["frames"].t_transmit_s.max() <= bound + 2 * 1500 * 8 / rate + 1e-9
    # one FIFO shared with TCP: its queue delays the calls past their playout deadline, and drops
    fm = fifo["packets"][fifo["packets"].kind != "feedback"]
    assert fm.dropped.sum() > 0 and fm.late.sum() > 0
    assert fifo["calls"].token_loss.min() > 0.5


def test_drops_in_ns_py_are_the_drops_simlab_records():
    # two packets leave at once (a media packet and its own redundant packet) into a call buffer of
    # qlimit 2 (ns.py counts the packet in service): the second of each pair is dropped by ns.py
    res = bottleneck("drr", call_buffer=2, overrides={"packetization.redundancy": "own", "system.redundant": 3})
    check_fates(res)
    pk, fr = res["packets"], res["frames"]
    for f in range(2):
        mine = pk[(pk.flow == f) & (pk.kind != "feedback")]
        assert mine.dropped.sum() == res["ports"][f].packets_dropped > 0
        assert res["paths"][f].entry.dropped == res["ports"][f].packets_dropped
    # the redundant copies were dropped: tokens still arrive (the media packets), none is counted twice
    assert (fr.tokens_received == fr.tokens_sent).all()


def test_runs_repeat_exactly():
    a = nb.run("drr", 4.0)
    b = nb.run("drr", 4.0)
    pd.testing.assert_frame_equal(a["packets"], b["packets"], check_exact=True)
    pd.testing.assert_frame_equal(a["frames"], b["frames"], check_exact=True)
    pd.testing.assert_frame_equal(a["tcp"], b["tcp"], check_exact=True)
    assert a["link"] == b["link"]


def _one_call_over_ns_py(sc, qlimit=None):
    """One call through an ns.py Port (the link's rate) and Wire (its delay), no cross traffic."""
    env = simpy.Environment()
    path = NsPyPath(env, 0)
    port = Port(env, sc.network.forward.bandwidth_bps, qlimit=qlimit)
    wire = Wire(env, lambda: sc.network.forward.delay_s)
    path.entry.out, port.out, wire.out = port, wire, path.exit
    recorder = RunRecorder(None, keep=True)
    flows = nb.build_calls(env, sc, [path], recorder)
    for f in flows:
        f.start()
    env.run()
    path.flush()
    for f in flows:
        f.finish()
    recorder.close()
    return recorder.tables()


@pytest.mark.parametrize("bandwidth", [64000, 8000])
def test_a_port_and_a_wire_are_simlabs_link(bandwidth):
    # no loss, no queue cap: serialization (FIFO) at the rate, then the delay. At 8 kbit/s a
    # packet and its own redundant packet queue behind each other: the queueing is the same too.
    sc = simlab.load_scenario(nb.SCENARIO, {"duration_s": 10, "network.forward.bandwidth_bps": bandwidth,
                                            "packetization.redundancy": "own", "system.redundant": 3})
    ref = simlab.run(sc)
    packets, frames = _one_call_over_ns_py(sc)
    pd.testing.assert_frame_equal(packets, ref.packets, check_exact=True)
    pd.testing.assert_frame_equal(frames, ref.frames, check_exact=True)
    if bandwidth == 8000:
        assert (frames.t_transmit_s > sc.network.forward.delay_s + 64 * 8 / bandwidth + 1e-6).any()


def test_a_capped_port_is_not_a_capped_link_but_fates_still_add_up():
    """Not the same element with a queue cap: simlab's link counts a packet as in service from the
    instant it arrives at an idle link, while ns.py's Port (a SimPy Store and a process) takes it
    into service one event later; two packets handed over at the same instant both count as
    waiting, so qlimit = queue_packets + 1 drops the second where the link keeps it. Both give
    every packet one fate."""
    over = {"duration_s": 10, "network.forward.bandwidth_bps": 3000, "network.forward.queue_packets": 1,
            "packetization.redundancy": "own", "system.redundant": 3}
    sc = simlab.load_scenario(nb.SCENARIO, over)
    ref = simlab.run(sc)
    packets, frames = _one_call_over_ns_py(sc, qlimit=2)
    assert len(packets) == len(ref.packets) and len(frames) == len(ref.frames)
    assert (frames.tokens_sent == frames.tokens_received + frames.tokens_lost + frames.tokens_late).all()
    assert packets.dropped.sum() > ref.packets.dropped.sum() > 0


class _Hold:
    """An ns.py-like element that keeps what it gets (a queue that never serves)."""

    def __init__(self):
        self.held = []

    def put(self, packet):
        self.held.append(packet)


class _Log:
    def __init__(self):
        self.packets = []

    def put(self, pkt):
        self.packets.append(("in", pkt.seq))

    def packet(self, pkt):
        self.packets.append(("fate", pkt.seq, bool(pkt.dropped), pkt.arrival_s))


def _pkt(seq):
    return Packet(0, seq, "media", 40, 24 * 8, [(seq, 1, 1, 24 * 8)], seq)


def test_the_adapters_wrap_unwrap_and_declare_drops_when_they_say():
    env = simpy.Environment()
    entry = ToNsPy(env, flow_id=7, horizon_s=1.0)
    exit_ = FromNsPy(env, entry)
    hold, log = _Hold(), _Log()
    entry.out, exit_.out, exit_.recorder, entry.recorder = hold, log, log, log

    def at(t, fn, *args):
        env.timeout(t).callbacks.append(lambda _e: fn(*args))

    pkts = [_pkt(i) for i in range(4)]
    at(0.0, entry.put, pkts[0])
    at(0.5, entry.put, pkts[1])
    at(0.7, lambda: exit_.put(hold.held[1]))  # packet 1 comes out after 0.2 s
    at(1.2, entry.put, pkts[2])  # packet 0 has been in flight 1.2 s >= horizon: declared dropped now
    at(1.3, lambda: exit_.put(hold.held[0]))  # ... so when it comes out later it goes nowhere
    env.run()
    ns0 = hold.held[0]
    assert (ns0.size, ns0.flow_id, ns0.packet_id, ns0.payload) == (64, 7, 0, pkts[0])
    assert pkts[0].send_s == 0.0 and pkts[1].arrival_s == 0.7
    assert log.packets == [("in", 1), ("fate", 1, False, 0.7), ("fate", 0, True, pytest.approx(np.nan, nan_ok=True))]
    assert entry.exits_after_drop == 1 and entry.in_flight() == 1
    assert entry.flush() == 1 and pkts[2].dropped and log.packets[-1][:3] == ("fate", 2, True)
    assert entry.in_flight() == 0 and entry.dropped == 2
    exit_.put(object())  # not a wrapped simlab packet
    assert exit_.strays == 1
