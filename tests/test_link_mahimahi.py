"""The mahimahi link model: mm-link's semantics on small traces (an opportunity's bytes shared
by queued packets and lost when none waits, packets larger than one opportunity, the drop-tail
queue outside the packet in transit, looping), throughput of a saturating source equal to each
real trace's capacity, and a 3 kbit/s call meeting the EVDO trace's outages as late packets.

The real traces (../shared/traces, Mahimahi's cellular traces recorded with Saturator by
Winstein, Sivaraman and Balakrishnan, NSDI 2013) are beside the checkout, not in it: the tests
that need them skip without them."""
from pathlib import Path

import numpy as np
import pytest
import simpy

import simlab
from channels.uniform import Uniform
from simlab.errors import UserError
from simlab.packets import Packet
from simlab.sim.link import LinkParams
from simlab.sim.mahimahi import MahimahiLink, Opportunities, read_trace

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces"
needs_traces = pytest.mark.skipif(not TRACES.is_dir(), reason=f"{TRACES} is absent: the real cellular traces "
                                                               "(Mahimahi's, see its README) live beside the checkout")


def _link(times_ms, loop=True, start_s=0.0, delay_s=0.0, **kw):
    params = LinkParams(1e6, delay_s, Uniform(0.0, np.random.default_rng(0)))
    return MahimahiLink(simpy.Environment(), params, Opportunities(np.array(times_ms), loop, start_s), **kw)


def _pkt(size_bytes, seq=0):
    return Packet(0, seq, "media", size_bytes, 0, [])  # all header: size_bytes on the wire


def _send(link, t, size_bytes):
    p = _pkt(size_bytes)
    ok = link.transmit(p, t)
    return p.arrival_s if ok else ("dropped" if p.dropped else "lost")


def test_an_opportunity_serves_queued_packets_in_order_and_its_unused_bytes_are_lost():
    link = _link([1, 2, 3, 4, 5, 6, 7, 8])
    # Two 1000-byte packets at 0: the first leaves at 1 ms with 500 bytes to spare, which the
    # second (waiting) takes, finishing in the next opportunity.
    assert _send(link, 0.0, 1000) == pytest.approx(0.001)
    assert _send(link, 0.0, 1000) == pytest.approx(0.002)
    # Those 1000 bytes left of the 2 ms opportunity went unused: a packet arriving after it
    # waits for the next one (mm-link spends opportunities up to now before it enqueues).
    assert _send(link, 0.0025, 100) == pytest.approx(0.003)
    # A packet handed over exactly at an opportunity's time meets the next one.
    assert _send(link, 0.004, 100) == pytest.approx(0.005)
    # Larger than one opportunity: its bytes go 1500 at a time; it leaves with its last byte.
    assert _send(link, 0.005, 3000) == pytest.approx(0.007)
    assert _send(link, 0.007, 1501) == pytest.approx(0.009)  # 8 ms, then 9 = 1 ms of the second pass


def test_several_opportunities_in_one_millisecond_and_the_trace_repeats():
    link = _link([0, 5, 5, 5, 10])  # period 10 ms: 10, 15 x3, 20 (= 20, next pass's 0), ...
    got = [_send(link, 0.0, 1500) for _ in range(6)]
    assert got == pytest.approx([0.005, 0.005, 0.005, 0.010, 0.010, 0.015])
    opp = Opportunities(np.array([0, 5, 5, 5, 10]))
    assert opp.capacity_bps() == pytest.approx(5 * 1500 * 8 / 0.010)
    assert [opp.time_ms(k) for k in range(11)] == [0, 5, 5, 5, 10, 10, 15, 15, 15, 20, 20]


def test_the_drop_tail_queue_holds_the_packets_not_yet_started():
    link = _link([10, 20, 30, 40], queue_packets=2)
    fates = [_send(link, 0.0, 1500) for _ in range(4)]
    assert fates == [pytest.approx(0.010), pytest.approx(0.020), "dropped", "dropped"]
    # At 10 ms the first is in transit (out of the queue): room for one more.
    assert _send(link, 0.010, 1500) == pytest.approx(0.030)
    assert _send(link, 0.010, 1500) == "dropped"
    by_bytes = _link([10, 20, 30, 40], queue_bytes=2000)
    # 1000 bytes each: two fit 2000 bytes of queue (the second shares the first opportunity)
    assert [_send(by_bytes, 0.0, 1000) for _ in range(3)] == [pytest.approx(0.010), pytest.approx(0.020),
                                                              "dropped"]


def test_without_loop_the_trace_end_leaves_packets_in_the_queue_dropped():
    link = _link([1, 2], loop=False)
    assert _send(link, 0.0, 1500) == pytest.approx(0.001)
    assert _send(link, 0.0, 1500) == pytest.approx(0.002)
    assert _send(link, 0.0, 1500) == "dropped"


def test_start_s_replays_from_that_point_of_the_trace():
    link = _link([1, 5, 9, 10], start_s=0.005)  # after 5 ms: 9, 10, then 11, 15 of the next pass
    assert [_send(link, 0.0, 1500) for _ in range(4)] == pytest.approx([0.004, 0.005, 0.006, 0.010])


def test_propagation_delay_loss_and_overhead_apply():
    params = LinkParams(1e6, 0.02, Uniform(1.0, np.random.default_rng(0)))
    lossy = MahimahiLink(simpy.Environment(), params, Opportunities(np.array([1, 2, 3])))
    assert _send(lossy, 0.0, 1500) == "lost"  # erased after the link: it used opportunity 1
    assert lossy._k == 0
    params = LinkParams(1e6, 0.02, Uniform(0.0, np.random.default_rng(0)), overhead_bytes=38, mtu_bytes=1500)
    link = MahimahiLink(simpy.Environment(), params, Opportunities(np.array([1, 2, 3])))
    assert _send(link, 0.0, 1462) == pytest.approx(0.021)  # 1462 + 38 = one opportunity
    assert _send(link, 0.0, 1463) == pytest.approx(0.023)  # 1501 bytes: two more
    assert _send(link, 0.0, 1501) == "dropped"  # over the MTU


@pytest.mark.parametrize("text, message", [("5\n3\n", "line 2: 3 ms is before"), ("1\n\n2\n", "line 2: an empty line"),
                                           ("0\n0\n", "last opportunity is at 0 ms"), ("", "no opportunities"),
                                           ("1.5\n", "not a whole number")])
def test_malformed_traces_are_refused_as_mm_link_refuses_them(tmp_path, text, message):
    f = tmp_path / "t.up"
    f.write_text(text)
    with pytest.raises(ValueError, match=message):
        read_trace(f)


def test_a_scenario_names_the_link_key_for_a_missing_trace_or_a_queue_in_the_wrong_place(tmp_path):
    base = {"duration_s": 2, "network": {"forward": {"link": {"model": "mahimahi", "trace": "nope.up"}}}}
    with pytest.raises(UserError, match=r"network.forward.link: trace .*nope.up does not exist"):
        simlab.run(base)
    (tmp_path / "t.up").write_text("1\n2\n")
    bad = {"duration_s": 2, "network": {"forward": {"queue_packets": 5, "link": {
        "model": "mahimahi", "trace": str(tmp_path / "t.up")}}}}
    with pytest.raises(UserError, match="network.forward.link: mahimahi's queue is link.queue_packets"):
        simlab.run(bad)


@needs_traces
@pytest.mark.slow
@pytest.mark.parametrize("name", ["Verizon-LTE-short.up", "Verizon-LTE-short.down", "ATT-LTE-driving-2016.up",
                                  "TMobile-UMTS-driving.up", "Verizon-EVDO-driving.up"])
@pytest.mark.parametrize("size", [1500, 700])
def test_a_saturating_source_gets_the_trace_capacity(name, size):
    """A source at 1.5 times the trace's mean capacity into mm-link's default (unbounded) queue:
    over the trace's second pass, with a backlog built in the first, what leaves is the trace's
    capacity (every opportunity full, 700-byte packets straddling them), within 1 %."""
    times = read_trace(TRACES / name)
    opp = Opportunities(times)
    period_s = opp.period_ms / 1000
    capacity = opp.capacity_bps()
    link = _link(times)
    interval = size * 8 / (1.5 * capacity)
    delivered = 0
    for i in range(int(2 * period_s / interval)):
        p = _pkt(size, i)
        assert link.transmit(p, i * interval)
        if period_s < p.arrival_s <= 2 * period_s:
            delivered += size
    assert delivered * 8 / period_s == pytest.approx(capacity, rel=0.01)


@needs_traces
def test_bursts_beyond_a_short_queue_are_what_a_source_at_twice_the_mean_rate_misses():
    """The ATT LTE trace bursts to 25 Mbit/s over 100 ms: behind a 100-packet queue, a source at
    twice its 1.9 Mbit/s mean gets about a tenth less than the capacity (measured 0.89: the
    opportunities of the bursts that the queue cannot fill go empty)."""
    times = read_trace(TRACES / "ATT-LTE-driving-2016.up")
    opp = Opportunities(times)
    period_s, capacity = opp.period_ms / 1000, opp.capacity_bps()
    link = _link(times, queue_packets=100)
    interval = 1500 * 8 / (2 * capacity)
    delivered = sum(1500 for i in range(int(period_s / interval))
                    if link.transmit(p := _pkt(1500, i), i * interval) and p.arrival_s <= period_s)
    assert 0.85 < delivered * 8 / period_s / capacity < 0.95


@needs_traces
def test_through_simpy_events_every_packet_arrives_when_decided_and_is_reported_once():
    """The same link driven by events (put, out, recorder), with a 200-packet queue and a source at
    1.5 times the mean capacity: each delivery happens at its arrival_s, every packet's fate is
    reported once, and after the first 10 s (a backlog built) every opportunity is used."""
    times = read_trace(TRACES / "Verizon-LTE-short.up")
    capacity = Opportunities(times).capacity_bps()
    assert capacity == pytest.approx(5.95e6, rel=0.01)  # the README's figure
    env = simpy.Environment()
    params = LinkParams(1e6, 0.03, Uniform(0.0, np.random.default_rng(0)))
    link = MahimahiLink(env, params, Opportunities(times))
    arrived, fates = [], []

    class Sink:
        def put(self, pkt):
            assert env.now == pytest.approx(pkt.arrival_s, abs=1e-12)
            arrived.append(env.now)

    class Fates:
        def packet(self, pkt):
            fates.append(pkt.seq)

    link.out, link.recorder = Sink(), Fates()
    sent = []

    def source():
        while True:
            sent.append(len(sent))
            link.put(_pkt(1500, len(sent) - 1))
            yield env.timeout(1500 * 8 / (1.5 * capacity))

    env.process(source())
    env.run(until=30.03)
    assert len(fates) == len(set(fates)) == len(arrived)  # delivered ones reported at arrival, once
    arrived = np.array(arrived) - 0.03
    rate = ((arrived > 10) & (arrived <= 30)).sum() * 1500 * 8 / 20.0
    trace = ((times > 10000) & (times <= 30000)).sum() * 1500 * 8 / 20.0
    assert rate == pytest.approx(trace, rel=0.001)


@needs_traces
def test_a_3_kbit_call_over_the_evdo_uplink_meets_its_outages_as_late_packets():
    """From 130 s into Verizon-EVDO-driving.up the trace has a 4.1 s gap at 138.7 s: the call's
    packets wait for the next opportunity, so the ones sent in the gap arrive late (after their
    frames' playout deadline), none is lost, and which ones are late follows from the trace."""
    start_s, delay_s = 130.0, 0.02
    sc = {"seed": 1, "duration_s": 30, "system": {"kind": "synthetic"},
          "network": {"forward": {"delay_s": delay_s, "link": {
              "model": "mahimahi", "trace": str(TRACES / "Verizon-EVDO-driving.up"), "start_s": start_s}}}}
    res = simlab.run(sc)
    pk = res.packets[res.packets["kind"] != "feedback"]
    sent_bps = res.summary["total_bps"] - res.summary["ctrl_bps"]
    assert 2500 < sent_bps < 3500  # a 3 kbit/s call, headers included
    assert pk["lost"].astype(int).sum() == 0 and pk["dropped"].astype(int).sum() == 0
    late = pk["late"].astype(int).to_numpy() == 1
    assert late.sum() >= 20
    # The wait for the next opportunity, from the trace alone (mm-link: strictly after the send).
    times = read_trace(TRACES / "Verizon-EVDO-driving.up") - start_s * 1000
    send = pk["send_s"].astype(float).to_numpy()
    nxt = times[np.searchsorted(times, send * 1000, side="right")] / 1000
    wait = nxt - send + delay_s
    transit = pk["arrival_s"].astype(float).to_numpy() - send
    # Never before the next opportunity; at it whenever the queue was empty (all but the packets
    # queued behind the ones a gap held: an opportunity carries 1500 bytes, about 23 of them).
    assert (transit >= wait - 1e-9).all()
    assert np.isclose(transit, wait).mean() > 0.95
    # Frames are due 0.4 s after capture and a packet leaves 0.16 s after its first frame's
    # capture: one that takes more than 0.24 s is late, and every one the trace holds that long is.
    assert (late == (transit > 0.24 + 1e-9)).all()
    assert late[wait > 0.24 + 1e-9].all() and (wait > 0.24).sum() >= 20
    assert res.summary["latency_p95_s"] == pytest.approx(0.4)  # a fixed deadline: late is lost to playout
