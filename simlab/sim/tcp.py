"""TCP-like bulk flows across a bottleneck: a simplified but honest TCP at segment granularity.

Modelled: a sender with an unlimited backlog sending ``packet_bytes`` segments (sequence numbers
count segments); a receiver that acks every segment at once with a cumulative ack (the next
segment it expects), holding out-of-order segments; acks of ``ack_bytes`` back over a reverse
path of their own (a `simlab.sim.link.Link`: its bandwidth and delay, no loss), so the sender
is ack-clocked. Slow start and congestion avoidance (RFC 5681: +1 segment per ack in slow start,
+acked/cwnd in avoidance), fast retransmit on the third duplicate ack and fast recovery with
NewReno's partial acks (RFC 6582: one retransmission per partial ack, the timer restarted at the
first partial ack only, recovery ends when the ack covers everything sent before it began), retransmission timeout (RFC 6298: SRTT/RTTVAR, ``min_rto_s``,
doubling per timeout up to 60 s, then go-back-N from the first unacked segment). RTT samples come
from timestamps as RFC 7323 has them: an ack echoes the send time of the latest segment that
advanced the receiver's window, and each new ack gives a sample (a retransmission's too). The window's growth and its cut are the congestion control's: Reno (halve the
flight) or CUBIC (RFC 8312: W(t) = C (t - K)^3 + W_max, beta 0.7, fast convergence and the
TCP-friendly region, RTT = SRTT).

Not modelled: the handshake and teardown, SACK, delayed acks, receive windows (never the
limit), ECN, pacing, PRR, HyStart, an application that runs out of data, losses of
acks. Packets of a flow: kind ``tcp``; acks never cross the bottleneck.
"""
from __future__ import annotations

import math
from typing import Any

import simpy

from simlab.sim.clock import call_at
from simlab.sim.cross import CrossPacket

MAX_RTO_S = 60.0


class Reno:
    """Reno's window: +1 per ack in slow start, +1/cwnd per ack in avoidance, half the flight
    at a loss (at least 2)."""

    name = "reno"

    def __init__(self) -> None:
        pass

    def grow(self, tcp: "TcpSender", acked: int, now: float) -> None:
        if tcp.cwnd < tcp.ssthresh:
            tcp.cwnd += min(acked, 1)
        else:
            tcp.cwnd += acked / tcp.cwnd

    def cut(self, tcp: "TcpSender", now: float, timeout: bool) -> float:
        """The new ssthresh after a loss."""
        return max(tcp.flight() / 2.0, 2.0)


class Cubic(Reno):
    """CUBIC's window function (RFC 8312), in segments."""

    name = "cubic"
    C = 0.4
    BETA = 0.7

    def __init__(self, fast_convergence: bool = True) -> None:
        self.fast_convergence = fast_convergence
        self.w_max = 0.0
        self.epoch_start: float | None = None
        self.k = 0.0

    def grow(self, tcp: "TcpSender", acked: int, now: float) -> None:
        if tcp.cwnd < tcp.ssthresh:
            tcp.cwnd += min(acked, 1)
            return
        rtt = tcp.srtt if tcp.srtt is not None else tcp.rto
        if self.epoch_start is None:
            self.epoch_start = now
            if tcp.cwnd < self.w_max:
                self.k = ((self.w_max - tcp.cwnd) / self.C) ** (1.0 / 3.0)
            else:
                self.k, self.w_max = 0.0, tcp.cwnd
        t = now - self.epoch_start
        target = self.C * (t + rtt - self.k) ** 3 + self.w_max
        w_cubic = self.C * (t - self.k) ** 3 + self.w_max
        w_est = self.w_max * self.BETA + 3.0 * (1.0 - self.BETA) / (1.0 + self.BETA) * t / rtt
        if w_cubic < w_est:  # the TCP-friendly region
            tcp.cwnd = max(tcp.cwnd, w_est)
        elif target > tcp.cwnd:  # concave and convex regions
            tcp.cwnd += acked * (target - tcp.cwnd) / tcp.cwnd

    def cut(self, tcp: "TcpSender", now: float, timeout: bool) -> float:
        self.epoch_start = None
        w = tcp.cwnd
        if self.fast_convergence and w < self.w_max:
            self.w_max = w * (1.0 + self.BETA) / 2.0
        else:
            self.w_max = w
        return max(w * self.BETA, 2.0)


CONGESTION_CONTROLS = {"reno": Reno, "cubic": Cubic}


class _NoLoss:
    def lost_at(self, t: float) -> bool:
        return False


NO_LOSS = _NoLoss()


class TcpReceiver:
    """Acks every segment with the next one it expects; ``out`` is the reverse path."""

    def __init__(self, env: simpy.Environment, flow: int, ack_bytes: int = 40, packet_bytes: int = 1500,
                 stats: Any = None):
        self.env, self.flow, self.ack_bytes, self.packet_bytes, self.stats = env, flow, ack_bytes, packet_bytes, stats
        self.rcv_nxt = 0
        self._ooo: set[int] = set()
        self._ts_recent = math.nan  # the timestamp an ack echoes
        self.out: Any = None
        self.acks = 0

    def put(self, pkt) -> None:
        seq = pkt.seq
        if seq == self.rcv_nxt:
            self._ts_recent = pkt.ts
            self.rcv_nxt += 1
            while self.rcv_nxt in self._ooo:
                self._ooo.remove(self.rcv_nxt)
                self.rcv_nxt += 1
            if self.stats is not None:
                self.stats.goodput(self.flow, self.env.now, (self.rcv_nxt - seq) * self.packet_bytes)
        elif seq > self.rcv_nxt:
            self._ooo.add(seq)
        self.out.put(CrossPacket(self.flow, self.rcv_nxt, "ack", self.ack_bytes, self._ts_recent))
        self.acks += 1

    def packet(self, pkt) -> None:
        """A segment's fate at the bottleneck: a real receiver hears nothing of drops."""


class TcpSender:
    """Sends segments into ``out`` (the bottleneck) from ``start_s``; no new segment after
    ``stop_s`` (nor retransmission: the flow just ends). ``put(ack)`` takes the acks."""

    def __init__(self, env: simpy.Environment, flow: int, cc, packet_bytes: int = 1500, start_s: float = 0.0,
                 stop_s: float = math.inf, initial_cwnd: float = 10.0, min_rto_s: float = 0.2,
                 initial_rto_s: float = 1.0, stats: Any = None):
        self.env, self.flow, self.cc, self.packet_bytes = env, flow, cc, packet_bytes
        self.start_s, self.stop_s, self.min_rto = start_s, stop_s, min_rto_s
        self.stats = stats
        self.out: Any = None
        self.cwnd = float(initial_cwnd)
        self.ssthresh = math.inf
        self.snd_una = self.snd_nxt = self.snd_max = 0
        self.dupacks = 0
        self.in_recovery = False
        self._partial_seen = False
        self.recover = -1
        self.srtt: float | None = None
        self.rttvar = 0.0
        self.rto = initial_rto_s
        self._deadline: float | None = None  # the retransmission timer
        self._timer_at: float | None = None  # a timer event pending at this time
        self.segments_sent = self.retransmits = self.timeouts = self.fast_retransmits = 0

    def start(self) -> None:
        if self.start_s < self.stop_s:
            call_at(self.env, self.start_s, self._send_allowed)

    def active(self) -> bool:
        return self.env.now < self.stop_s

    def flight(self) -> int:
        return self.snd_max - self.snd_una

    # -- sending -------------------------------------------------------------------------------
    def _transmit(self, seq: int) -> None:
        if seq < self.snd_max:
            self.retransmits += 1
        else:
            self.snd_max = seq + 1
        self.segments_sent += 1
        if self._deadline is None:
            self._arm()
        self.out.put(CrossPacket(self.flow, seq, "tcp", self.packet_bytes, self.env.now))

    def _send_allowed(self) -> None:
        if not self.active():
            return
        while self.snd_nxt < self.snd_una + int(self.cwnd):
            seq = self.snd_nxt
            self.snd_nxt += 1
            self._transmit(seq)

    # -- acks ----------------------------------------------------------------------------------
    def put(self, ack) -> None:
        if not self.active():
            self._deadline = None
            return
        now = self.env.now
        a = ack.seq
        if a > self.snd_una:
            acked = a - self.snd_una
            if ack.ts == ack.ts:  # (NaN: an ack of nothing received in order yet)
                self._rtt_sample(now - ack.ts)
            self.snd_una = a
            self.dupacks = 0
            if self.snd_nxt < a:
                self.snd_nxt = a
            restart = True
            if self.in_recovery:
                if a >= self.recover:  # a full ack: recovery is over, without a burst (RFC 6582 3.2 3)
                    self.in_recovery = False
                    self.cwnd = min(self.ssthresh, max(self.flight(), 1) + 1.0)
                else:  # a partial ack: the next hole is lost too
                    self._transmit(a)
                    self.cwnd = max(self.cwnd - acked + 1, 1.0)
                    # the timer restarts at the first partial ack only (RFC 6582's "impatient"
                    # variant): a window with many holes ends in a timeout, not one hole per RTT
                    restart, self._partial_seen = not self._partial_seen, True
            else:
                self.cc.grow(self, acked, now)
            if restart:
                self._deadline = None
            if self.snd_una < self.snd_max:
                if self._deadline is None:
                    self._arm()
            else:
                self._deadline = None
        elif a == self.snd_una and self.snd_una < self.snd_max:
            self.dupacks += 1
            if self.in_recovery:
                self.cwnd += 1.0  # each dupack: a segment has left the network
            elif self.dupacks == 3 and a > self.recover:  # (not for a loss already repaired by a timeout)
                self.fast_retransmits += 1
                self.ssthresh = self.cc.cut(self, now, timeout=False)
                self.recover = self.snd_max
                self.in_recovery, self._partial_seen = True, False
                self._transmit(a)
                self.cwnd = self.ssthresh + 3.0
        if self.stats is not None:
            self.stats.cwnd(self.flow, now, self.cwnd)
        self._send_allowed()

    def _rtt_sample(self, r: float) -> None:
        if self.srtt is None:
            self.srtt, self.rttvar = r, r / 2.0
        else:
            self.rttvar = 0.75 * self.rttvar + 0.25 * abs(self.srtt - r)
            self.srtt = 0.875 * self.srtt + 0.125 * r
        self.rto = min(max(self.srtt + 4.0 * self.rttvar, self.min_rto), MAX_RTO_S)

    # -- the retransmission timer (one pending event at most; restarts only move the deadline) --
    def _arm(self) -> None:
        self._deadline = self.env.now + self.rto
        if self._timer_at is None:
            self._timer_at = self._deadline
            call_at(self.env, self._deadline, self._timer)

    def _timer(self) -> None:
        self._timer_at = None
        if self._deadline is None or not self.active():
            return
        if self.env.now < self._deadline - 1e-9:
            self._timer_at = self._deadline
            call_at(self.env, self._deadline, self._timer)
            return
        self._timeout()

    def _timeout(self) -> None:
        now = self.env.now
        self.timeouts += 1
        self.ssthresh = self.cc.cut(self, now, timeout=True)
        self.cwnd = 1.0
        self.in_recovery = False
        self.dupacks = 0
        self.recover = self.snd_max
        self.snd_nxt = self.snd_una
        self.rto = min(2.0 * self.rto, MAX_RTO_S)
        self._deadline = None
        if self.stats is not None:
            self.stats.cwnd(self.flow, now, self.cwnd)
        self._send_allowed()
        if self._deadline is None and self.snd_una < self.snd_max:
            self._arm()
