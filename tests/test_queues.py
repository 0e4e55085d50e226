"""Queue disciplines at a bottleneck (simlab.sim.queues, simlab.sim.fq_codel) and the link that
holds them (simlab.sim.qlink): drop-tail equals the closed-form FIFO link record for record; the
bytes limit; RED's drop probability and idle decay; CoDel's control law and its hold on the
standing delay; FQ-CoDel's isolation of a sparse flow."""
import math

import numpy as np
import pytest
import simpy

from simlab.packets import Packet
from simlab.sim.clock import call_at
from simlab.sim.cross import ConstantRate, CrossPacket, Poisson, Sink
from simlab.sim.fq_codel import FqCodel
from simlab.sim.link import Link, LinkParams, attach, share
from simlab.sim.qlink import QueuedLink
from simlab.sim.queues import Codel, CodelState, DropTail, Entry, Red
from simlab.sim.tcp import NO_LOSS


class Uniform:
    def __init__(self, p, rng):
        self.p, self.rng = p, rng

    def lost_at(self, t):
        return self.rng.random() < self.p


class Log:
    def __init__(self):
        self.delivered, self.fates = [], []

    def put(self, pkt):
        self.delivered.append(pkt)

    def packet(self, pkt):
        self.fates.append(pkt)


def _offer(link_factory, seed=3, n=3000, rate_pps=60.0, bw=20000):
    """Random arrivals of random sizes; every packet's record, in the order fates were known."""
    env = simpy.Environment()
    rng = np.random.default_rng(seed)
    link = link_factory(env, LinkParams(bw, 0.01, Uniform(0.1, np.random.default_rng(1)), jitter_s=0.004,
                                        rng=np.random.default_rng(2)))
    log = Log()
    link.out, link.recorder = log, log
    t = 0.0
    for i in range(n):
        t += rng.exponential(1 / rate_pps)
        pkt = Packet(0, i, "media", 40, int(rng.integers(8, 600)) * 8, [])
        call_at(env, t, link.put, pkt)
    env.run()
    return [(p.seq, p.send_s, repr(p.arrival_s), p.lost, p.dropped) for p in log.fates], link


@pytest.mark.parametrize("cap", [None, 1, 5])
def test_drop_tail_is_the_fifo_link_record_for_record(cap):
    ref, _ = _offer(lambda env, p: Link(env, LinkParams(p.bandwidth_bps, p.delay_s, p.loss, p.jitter_s, cap, p.rng)))
    got, link = _offer(lambda env, p: QueuedLink(env, p, DropTail(cap)))
    assert len(ref) == 3000
    assert got == ref  # the same fates, times and order
    assert (sum(r[4] for r in got) > 100) == (cap is not None)


def test_drop_tail_in_bytes_counts_the_waiting_bytes():
    q = DropTail(limit_bytes=3000)
    e = [Entry(None, 0.0, 1000, False, 0.0) for _ in range(4)]
    assert [q.enqueue(x, 0.0) for x in e[:3]] == [[], [], []]
    assert q.enqueue(e[3], 0.0) == [e[3]] and q.bytes == 3000
    q.dequeue(0.0, [])
    assert q.enqueue(e[3], 0.0) == [] and len(q) == 3


def test_red_drops_with_floyd_and_jacobsons_probability():
    # avg held between the thresholds: drops are spaced as p_a = p_b / (1 - count p_b) makes them
    # (count incremented before p_a, as the paper's Fig. 2 has it): P(no drop in k) telescopes to
    # (1 - (k+1) p_b) / (1 - p_b), a mean gap of sum_k of that, none longer than 1/p_b - 1
    rng = np.random.default_rng(0)
    red = Red(rng, 1e6, min_th=5, max_th=15, max_p=0.1, w_q=0.002, limit_packets=None)
    red.avg, red.q_time, red.busy_until = 10.0, None, math.inf  # busy: no idle decay
    drops, n, gaps, last = 0, 200000, [], 0
    for i in range(n):
        red.avg = 10.0
        red.q.items.clear()
        red.q.items.extend([None] * 10)  # the instantaneous queue the average follows
        if red.enqueue(Entry(None, 0.0, 100, False, 0.0), 0.0):
            drops += 1
            gaps.append(i - last)
            last = i
    p_b = 0.1 * (10 - 5) / (15 - 5)
    mean_gap = sum((1 - (k + 1) * p_b) / (1 - p_b) for k in range(round(1 / p_b)))
    assert drops / n == pytest.approx(1 / mean_gap, rel=0.02)
    assert max(gaps[1:]) <= round(1 / p_b) - 1


def test_red_average_decays_over_idle_time_and_gentle_ramps():
    red = Red(np.random.default_rng(0), 1e6, w_q=0.002, mean_packet_bytes=500)
    red.avg, red.q_time, red.busy_until = 8.0, 1.0, 1.0
    red._average(1.4)  # idle 0.4 s = 100 transmission times of 500 B at 1 Mbit/s
    assert red.avg == pytest.approx(8.0 * 0.998 ** 100)
    g = Red(np.random.default_rng(0), 1e6, min_th=5, max_th=15, max_p=0.1, gentle=True)
    g.avg = 22.5
    assert g._drop_probability() == pytest.approx(0.1 + 0.9 * 7.5 / 15)
    g.avg = 30.0
    assert g._drop_probability() == 1.0


def test_codel_follows_the_control_law():
    """A queue that stays above target: the first drop one interval after it went above, then
    drops interval / sqrt(count) apart (RFC 8289)."""
    st = CodelState(0.005, 0.1)
    q = type("Q", (), {})()
    from simlab.sim.queues import ByteFifo
    q = ByteFifo()
    drops_at = []
    t = 0.0
    for i in range(4000):  # a packet dequeued every 1 ms, each having waited 50 ms, 3 MTUs behind it
        t = i * 0.001
        while len(q) < 4:
            q.append(Entry(len(drops_at), t - 0.05, 1500, False, 0.0))
        drops: list = []
        st.dequeue(q, t, drops)
        drops_at += [t] * len(drops)
    assert drops_at[0] == pytest.approx(0.1, abs=0.0015)
    gaps = np.diff(drops_at[:12])
    expect = [0.1 / math.sqrt(k) for k in range(1, 12)]
    assert gaps == pytest.approx(expect, abs=0.0011)


def _overload(discipline, seconds=30.0, bw=1e6):
    """A 1 Mbit/s link offered 1.5 Mbit/s of Poisson traffic: the time packets wait."""
    env = simpy.Environment()
    link = share(QueuedLink(env, LinkParams(bw, 0.01, NO_LOSS), discipline))
    waits = []

    class Tap:
        def put(self, pkt):
            waits.append((pkt.send_s, pkt.arrival_s - 0.01 - pkt.size_bytes * 8 / bw - pkt.send_s))

        def packet(self, pkt):
            pass
    attach(link, 0, Tap(), Tap())
    src = Poisson(env, 0, 1.5e6, 1000, 0.0, seconds, np.random.default_rng(5))
    src.out = link
    src.start()
    env.run()
    return np.array([w for t, w in waits if t > 5.0])


def test_codel_bounds_the_delay_of_unresponsive_overload_where_drop_tail_fills_the_buffer():
    # Poisson traffic does not slow down for drops: CoDel's drop rate must grow (sqrt(count)) to
    # the excess, so the delay settles above target (tens of ms), far below the full buffer.
    dt = _overload(DropTail(limit_packets=500))
    cd = _overload(Codel(limit_packets=500))
    assert np.median(dt) > 0.95 * 500 * 8000 / 1e6  # the full buffer: 4 s
    assert np.median(cd) < 0.1 and np.percentile(cd, 90) < 0.2


def test_fq_codel_keeps_a_sparse_flow_out_of_a_bulk_flows_queue():
    env = simpy.Environment()
    link = share(QueuedLink(env, LinkParams(1e6, 0.01, NO_LOSS), FqCodel()))
    logs = {0: Log(), 1: Log()}
    for f in (0, 1):
        attach(link, f, logs[f], logs[f])
    bulk = ConstantRate(env, 0, 2e6, 1500, 0.0, 20.0)  # twice the link
    voice = ConstantRate(env, 1, 3200, 64, 0.0, 20.0)
    for s in (bulk, voice):
        s.out = link
        s.start()
    env.run()
    v = [p.arrival_s - p.send_s for p in logs[1].delivered]
    assert len(v) == voice.sent and max(v) < 0.01 + 3 * 1500 * 8 / 1e6  # behind one bulk packet at most (+ DRR slack)
    b = [p for p in logs[0].fates if p.dropped]
    assert len(b) > 0.4 * bulk.sent


def test_red_needs_thresholds_in_order_and_codel_drops_are_recorded_once():
    dt, cd = DropTail(1), Codel()
    assert dt.final_at_enqueue and not cd.final_at_enqueue
    env = simpy.Environment()
    link = share(QueuedLink(env, LinkParams(1e6, 0.01, NO_LOSS), Codel(limit_packets=50)))
    log = Log()
    attach(link, 0, log, log)
    src = ConstantRate(env, 0, 3e6, 1500, 0.0, 10.0)
    src.out = link
    src.start()
    env.run()
    seqs = [p.seq for p in log.fates]
    assert len(seqs) == len(set(seqs)) == src.sent  # one fate per packet
    assert {p.seq for p in log.delivered} == {p.seq for p in log.fates if not p.dropped}
    with pytest.raises(TypeError, match="decides fates as packets leave the queue"):
        link.transmit(CrossPacket(0, 0, "cbr", 100), 0.0)
    with pytest.raises(ValueError):
        QueuedLink(env, LinkParams(1e6, 0.01, NO_LOSS, queue_packets=3), DropTail(3))
    assert Sink  # (imported for the other tests' wiring)


def test_the_queued_link_pays_the_link_overhead_and_refuses_packets_over_the_mtu():
    def offered(**kw):
        env = simpy.Environment()
        link = share(QueuedLink(env, LinkParams(1e6, 0.0, NO_LOSS, **kw), DropTail()))
        log = Log()
        attach(link, 0, log, log)
        for i, size in enumerate((1000, 1600, 1000)):
            call_at(env, 0.0, link.put, CrossPacket(0, i, "cbr", size))
        env.run()
        return {p.seq: (p.dropped, p.arrival_s) for p in log.fates}
    plain, framed = offered(), offered(overhead_bytes=38, mtu_bytes=1500)
    assert plain == {0: (False, 0.008), 1: (False, 0.008 + 0.0128), 2: (False, 0.008 + 0.0128 + 0.008)}
    assert framed[1][0] and framed[2] == (False, pytest.approx(2 * 1038 * 8 / 1e6))
