"""A link: FIFO queue (optionally capped), serialization at its bandwidth, propagation delay,
jitter, and erasures by a `channels` schedule."""
from __future__ import annotations

from collections import deque
from typing import Callable

import numpy as np
import simpy

from channels import Schedule
from simlab.packets import Packet
from simlab.sim.clock import Fifo, call_at


class Link:
    """``put(packet)`` at the time the packet is handed over; ``out(packet)`` is called at its
    arrival. A packet the channel erases or the full queue drops never reaches ``out``; every
    packet, delivered or not, goes to ``record`` once its fate is known."""

    def __init__(self, env: simpy.Environment, bandwidth_bps: float, delay_s: float, loss: Schedule,
                 rng: np.random.Generator, jitter_s: float = 0.0, queue_packets: int | None = None):
        self.env = env
        self.bandwidth_bps = float(bandwidth_bps)
        self.delay_s = float(delay_s)
        self.jitter_s = float(jitter_s)
        self.loss = loss
        self.rng = rng
        self.queue_packets = queue_packets
        self.tx = Fifo()
        self._departures: deque[float] = deque()  # departure times of packets queued or in service
        self.out: Callable[[Packet], None] | None = None
        self.record: Callable[[Packet], None] | None = None
        self.carried_bytes = 0  # bytes put on the wire (erased ones too: they used the link)

    def put(self, pkt: Packet) -> None:
        now = self.env.now
        pkt.send_s = now
        if self.queue_packets is not None:
            q = self._departures
            while q and q[0] <= now:
                q.popleft()
            # One packet in service plus queue_packets waiting.
            if len(q) > self.queue_packets:
                pkt.dropped = True
                self.record(pkt)
                return
        start, end = self.tx.serve(now, pkt.size_bytes * 8.0 / self.bandwidth_bps)
        if self.queue_packets is not None:
            self._departures.append(end)
        self.carried_bytes += pkt.size_bytes
        if self.loss.lost(now):
            pkt.lost = True
            self.record(pkt)
            return
        delay = self.delay_s
        if self.jitter_s:
            delay = max(0.0, delay + self.jitter_s * (2.0 * self.rng.random() - 1.0))
        pkt.arrival_s = end + delay
        call_at(self.env, pkt.arrival_s, self._arrive, pkt)

    def _arrive(self, pkt: Packet) -> None:
        self.out(pkt)
        self.record(pkt)


class SharedLink(Link):
    """One link that several flows cross (a bottleneck): their packets share its FIFO, bandwidth
    and loss process, and each goes on to its own flow's receiver and record."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._outs: dict[int, Callable[[Packet], None]] = {}
        self._records: dict[int, Callable[[Packet], None]] = {}
        self.out = lambda pkt: self._outs[pkt.flow](pkt)
        self.record = lambda pkt: self._records[pkt.flow](pkt)

    def attach(self, flow: int, out: Callable[[Packet], None], record: Callable[[Packet], None]) -> None:
        self._outs[flow], self._records[flow] = out, record
