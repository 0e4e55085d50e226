"""Open-loop cross traffic for a bottleneck: constant rate, Poisson and on-off sources, each
putting packets of ``packet_bytes`` into ``out`` (the bottleneck link) between ``start_s`` and
``stop_s``; one event per packet. TCP-like flows are in `simlab.sim.tcp`."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import simpy

from simlab.sim.clock import call_at


class CrossPacket:
    """A packet of cross traffic: what a link reads (``size_bytes``, ``flow``) and writes
    (``send_s``, ``arrival_s``, ``lost``, ``dropped``). ``seq``: its number in its flow (a TCP
    segment's sequence number, counted in segments; an ack's: the next segment expected);
    ``ts``: a TCP timestamp (the sender's clock on a segment, the echoed one on an ack)."""

    __slots__ = ("flow", "seq", "kind", "size_bytes", "send_s", "arrival_s", "lost", "dropped", "late",
                 "header_bytes", "payload_bits", "first_frame", "contents", "ts")

    def __init__(self, flow: int, seq: int, kind: str, size_bytes: int, ts: float = math.nan):
        self.flow, self.seq, self.kind, self.size_bytes, self.ts = flow, seq, kind, size_bytes, ts
        self.send_s = self.arrival_s = math.nan
        self.lost = self.dropped = self.late = False
        self.header_bytes, self.payload_bits, self.first_frame, self.contents = size_bytes, 0, -1, ()


class Sink:
    """Where a cross flow's packets end up: counts them (``put``: delivered, ``packet``: every
    fate, as a flow's recorder hears it)."""

    def __init__(self) -> None:
        self.delivered = 0
        self.fates = 0

    def put(self, pkt) -> None:
        self.delivered += 1

    def packet(self, pkt) -> None:
        self.fates += 1


class Delay:
    """A constant delay before ``out`` (an access link ahead of the bottleneck: a longer RTT)."""

    def __init__(self, env: simpy.Environment, delay_s: float):
        self.env, self.delay_s = env, delay_s
        self.out: Any = None

    def put(self, pkt) -> None:
        call_at(self.env, self.env.now + self.delay_s, self.out.put, pkt)


class Source(ABC):
    """Sends a packet, then the next at ``next_s(now)`` (a subclass's), until ``stop_s``."""

    kind = "source"

    def __init__(self, env: simpy.Environment, flow: int, rate_bps: float, packet_bytes: int, start_s: float,
                 stop_s: float, rng: np.random.Generator | None = None):
        self.env, self.flow, self.rate_bps, self.packet_bytes = env, flow, rate_bps, packet_bytes
        self.start_s, self.stop_s, self.rng = start_s, stop_s, rng
        self.mean_gap_s = packet_bytes * 8.0 / rate_bps
        self.out: Any = None
        self.sent = 0

    def start(self) -> None:
        first = self.first_s()
        if first < self.stop_s:
            call_at(self.env, first, self._send)

    def first_s(self) -> float:
        return self.start_s

    def _send(self) -> None:
        self.out.put(CrossPacket(self.flow, self.sent, self.kind, self.packet_bytes))
        self.sent += 1
        t = self.next_s(self.env.now)
        if t < self.stop_s:
            call_at(self.env, t, self._send)

    @abstractmethod
    def next_s(self, now: float) -> float:
        """When the next packet leaves, given the one sent at ``now``."""


class ConstantRate(Source):
    """A packet every packet_bytes * 8 / rate_bps seconds."""

    kind = "cbr"

    def next_s(self, now: float) -> float:
        return self.start_s + self.sent * self.mean_gap_s  # (not a sum of gaps: no drift)


class Poisson(Source):
    """Packets at exponential intervals of mean packet_bytes * 8 / rate_bps (a Poisson process
    of rate_bps on average)."""

    kind = "poisson"

    def first_s(self) -> float:
        return self.start_s + self.rng.exponential(self.mean_gap_s)

    def next_s(self, now: float) -> float:
        return now + self.rng.exponential(self.mean_gap_s)


class OnOff(Source):
    """At ``rate_bps`` (the peak) during on periods, silent during off periods; period lengths
    exponential with means ``on_s`` and ``off_s``, or Pareto with shape ``shape`` (> 1) and
    those means (heavy-tailed: self-similar traffic when many are added up). It starts in an
    off period; an on period of length L sends ceil(L / gap) packets, the first at its start."""

    kind = "onoff"

    def __init__(self, env, flow, rate_bps, packet_bytes, start_s, stop_s, rng, on_s: float, off_s: float,
                 distribution: str = "exponential", shape: float = 1.5):
        super().__init__(env, flow, rate_bps, packet_bytes, start_s, stop_s, rng)
        self.on_s, self.off_s, self.distribution, self.shape = on_s, off_s, distribution, shape
        self._on_until = -math.inf

    def _period(self, mean_s: float) -> float:
        if self.distribution == "pareto":  # classic Pareto with minimum mean (shape - 1) / shape
            return mean_s * (self.shape - 1.0) / self.shape * (1.0 + self.rng.pareto(self.shape))
        return self.rng.exponential(mean_s)

    def _next_burst(self, t: float) -> float:
        """The start of the next on period after an off period beginning at ``t``."""
        start = t + self._period(self.off_s)
        self._on_until = start + self._period(self.on_s)
        return start

    def first_s(self) -> float:
        return self._next_burst(self.start_s)

    def _send(self) -> None:
        now = self.env.now
        if now >= self._on_until:  # the on period ended before this packet's turn
            t = self._next_burst(self._on_until)
            if t < self.stop_s:
                call_at(self.env, t, self._send)
            return
        super()._send()

    def next_s(self, now: float) -> float:
        return now + self.mean_gap_s
