"""TCP-like flows (simlab.sim.tcp) against their definitions: Reno fills a link whose buffer is a
bandwidth-delay product and halves at each loss; CUBIC's window follows RFC 8312's W(t); the
retransmission timer backs off by doubling; the RTT estimate is the path's."""
import math

import numpy as np
import pytest
import simpy

from simlab.sim.bottleneck_stats import COLUMNS, BottleneckStats
from simlab.sim.link import Link, LinkParams, attach, share
from simlab.sim.qlink import QueuedLink
from simlab.sim.queues import DropTail
from simlab.sim.tcp import NO_LOSS, Cubic, Reno, TcpReceiver, TcpSender


class Rows:
    def __init__(self):
        self.rows = []

    def add(self, row):
        self.rows.append(dict(zip(COLUMNS, row)))

    def close(self):
        pass


class DownAfter:
    """A channel that erases everything sent from ``t`` on."""

    def __init__(self, t):
        self.t = t

    def lost_at(self, t):
        return t >= self.t


def path(ccs, bw=2e6, delay=0.02, buffer=7, seconds=60.0, loss=NO_LOSS, starts=None):
    env = simpy.Environment()
    rows = Rows()
    stats = BottleneckStats(1.0, rows)
    link = share(QueuedLink(env, LinkParams(bw, delay, loss), DropTail(buffer), stats))
    senders = []
    for i, cc in enumerate(ccs):
        stats.register(i, cc.name, reports_goodput=True)
        s = TcpSender(env, i, cc, start_s=starts[i] if starts else 0.0, stop_s=seconds, stats=stats)
        r = TcpReceiver(env, i, stats=stats)
        acks = Link(env, LinkParams(bw, delay, NO_LOSS))
        r.out, acks.out, s.out = acks, s, link
        attach(link, i, r, r)
        s.start()
        senders.append(s)
    env.run()
    stats.close(env.now)
    return senders, rows.rows


def goodput_bps(rows, flow, seconds=60.0):
    return sum(r["goodput_bytes"] for r in rows if r["flow"] == flow) * 8 / seconds


def test_reno_fills_a_link_whose_buffer_is_one_bdp():
    # 2 Mbit/s, 40 ms RTT: a BDP of 6.7 packets of 1500 B; a buffer of 7 keeps the link busy
    # through Reno's halvings
    (s,), rows = path([Reno()])
    assert goodput_bps(rows, 0) / 2e6 > 0.96
    assert s.timeouts == 0 and s.fast_retransmits > 50
    assert s.srtt == pytest.approx(0.04 + 2 * 1500 * 8 / 2e6, abs=0.045)  # base RTT plus at most the buffer


def test_reno_halves_its_flight_at_a_loss():
    seen = []
    orig = Reno.cut

    class Spy(Reno):
        def cut(self, tcp, now, timeout):
            ss = orig(self, tcp, now, timeout)
            seen.append((tcp.flight(), ss))
            return ss
    path([Spy()], seconds=20)
    assert len(seen) > 10
    assert all(ss == max(flight / 2, 2) for flight, ss in seen)


class FakeTcp:
    def __init__(self, cwnd, srtt):
        self.cwnd, self.ssthresh, self.srtt, self.rto = cwnd, 0.0, srtt, 1.0


def test_cubic_window_follows_rfc_8312():
    """After a loss at W_max = 100 the window restarts at beta W_max and grows as
    W(t) = C (t - K)^3 + W_max, K = cbrt(W_max (1 - beta) / C): per ack toward W(t + RTT)."""
    cc = Cubic()
    tcp = FakeTcp(100.0, 0.1)
    tcp.ssthresh = cc.cut(tcp, 0.0, timeout=False)
    tcp.cwnd = tcp.ssthresh
    assert tcp.ssthresh == pytest.approx(70.0)
    K = (100 * 0.3 / 0.4) ** (1 / 3)
    t = 0.0
    errs = []
    while t < 8.0:
        n = int(tcp.cwnd)  # a window of acks per RTT, spread over it
        for i in range(n):
            cc.grow(tcp, 1, t + i * tcp.srtt / n)
        t += tcp.srtt
        w = 0.4 * (t - K) ** 3 + 100
        w_est = 70 + 3 * 0.3 / 1.7 * t / 0.1
        errs.append(tcp.cwnd - max(w, w_est))
    assert cc.k == pytest.approx(K)
    assert np.max(np.abs(errs)) < 2.0  # within two segments of the window function, all along
    # fast convergence: a loss below the last W_max remembers less
    tcp.cwnd = 80.0
    cc.w_max = 100.0
    cc.cut(tcp, 9.0, timeout=False)
    assert cc.w_max == pytest.approx(80 * 1.7 / 2)


def test_timeouts_are_spaced_by_a_doubling_rto(monkeypatch):
    # the link goes down at 5 s: each timeout waits twice as long as the one before
    times = []
    orig = TcpSender._timeout

    def spy(self):
        times.append(self.env.now)
        orig(self)
    monkeypatch.setattr(TcpSender, "_timeout", spy)
    (s,), _ = path([Reno()], loss=DownAfter(5.0), seconds=100.0)
    gaps = np.diff(times)
    assert len(gaps) >= 4 and s.snd_una < s.snd_max
    assert gaps[1:] == pytest.approx(2 * gaps[:-1], rel=1e-6)


def test_two_reno_flows_share_and_runs_repeat():
    a, rows_a = path([Reno(), Reno()], buffer=20, starts=[0.0, 0.5])
    b, rows_b = path([Reno(), Reno()], buffer=20, starts=[0.0, 0.5])
    g = [goodput_bps(rows_a, f) for f in (0, 1)]
    assert min(g) / (sum(g) / 2) > 0.9
    assert rows_a == rows_b
    assert math.isfinite(rows_a[-1]["cwnd_packets"])
