"""A link with a real queue: packets wait in a queue discipline (`simlab.sim.queues`: drop-tail,
RED, CoDel, FQ-CoDel) and leave it one at a time at the link's bandwidth, each when the one
before has been sent, so a discipline that drops at dequeue (CoDel) decides then, as a router
does. Then propagation delay, jitter and erasures as `simlab.sim.link.Link` has them (with its
link-layer overhead on the wire and its MTU; queue limits count IP bytes)."""
from __future__ import annotations

from typing import Any

import simpy

from simlab.sim.clock import call_at
from simlab.sim.link import Link, LinkParams
from simlab.sim.queues import Entry


class QueuedLink(Link):
    """``put(packet)`` at its hand-over, ``out.put(packet)`` at its arrival, ``recorder.packet``
    once per packet, as `Link` (whose parameters it takes; the queue's limit is the
    discipline's, so ``params.queue_packets`` must be None). ``stats`` (optional) hears of every
    packet sent, dropped, served and delivered (`simlab.sim.bottleneck_stats`).

    Events only where needed: a packet that finds the link idle and the queue empty starts at
    once; the link wakes at a departure only when packets wait behind it. The channel's erasure
    and the jitter are drawn at the hand-over (in `Link`'s order: a drop-tail `QueuedLink` gives
    `Link`'s records exactly); a packet the discipline drops later is recorded as dropped.
    ``transmit`` (a fate without an event) is not available: a managed queue decides at dequeue.
    """

    def __init__(self, env: simpy.Environment, params: LinkParams, discipline, stats: Any = None):
        if params.queue_packets is not None:
            raise ValueError("a queued link's limit is its discipline's: queue_packets must be None")
        super().__init__(env, params)
        self.discipline = discipline
        self.stats = stats
        self._busy_until = 0.0
        self._busy = False
        self._wake = False  # a wake-up is scheduled (at _wake_at)
        self._wake_at = 0.0

    def transmit(self, pkt, t: float) -> bool:
        # By design, not a gap: a discipline such as CoDel decides a packet's fate when it leaves
        # the queue, after later arrivals, so no fate exists at hand-over (reverse paths use Link).
        raise TypeError("a link with a queue discipline decides fates as packets leave the queue: "
                                  "hand packets over with put()")

    def put(self, pkt) -> None:
        t = self.env.now
        self._advance(t)
        pkt.send_s = t
        if self.stats is not None:
            self.stats.sent(pkt, t)
        if self.refuses(pkt):  # over the MTU: dropped, never queued
            self._drop(Entry(pkt, t, pkt.size_bytes, False, self.delay_s), t)
            return
        entry = Entry(pkt, t, pkt.size_bytes, False, self.delay_s)
        dropped = self.discipline.enqueue(entry, t)
        for e in dropped:
            self._drop(e, t)
        if entry not in dropped:  # the channel after the queue, drawn as `Link` draws it
            entry.lost = bool(self.loss.lost_at(t))
            if entry.lost and self.discipline.final_at_enqueue:  # its fate is sealed: reported now, as `Link` does
                self._lose(pkt, t)
            elif self.jitter_s:
                entry.delay = max(0.0, self.delay_s + self.jitter_s * (2.0 * self.rng.random() - 1.0))
        if not self._busy:
            self._start(t)
        elif not self._wake:
            self._schedule_wake()

    def _drop(self, e: Entry, t: float) -> None:
        e.pkt.dropped = True
        if self.stats is not None:
            self.stats.dropped(e.pkt, t)
        self.recorder.packet(e.pkt)

    def _lose(self, pkt, t: float) -> None:
        pkt.lost = True
        if self.stats is not None:
            self.stats.lost(pkt, t)
        self.recorder.packet(pkt)

    def _advance(self, t: float) -> None:
        """Send every packet whose turn came by ``t``."""
        while self._busy and self._busy_until <= t:
            self._busy = False
            self._start(self._busy_until)

    def _start(self, t: float) -> None:
        """The link is free at ``t``: the discipline hands over the next packet, if any."""
        drops: list = []
        e = self.discipline.dequeue(t, drops)
        for d in drops:
            self._drop(d, t)
        if e is None:
            return
        pkt = e.pkt
        end = t + self.wire_bytes(pkt) * 8.0 / self.bandwidth_bps  # with the link layer's overhead
        self.discipline.serving(t, end)
        self._busy, self._busy_until = True, end
        self.carried_bytes += e.size
        if self.stats is not None:
            self.stats.served(pkt, t, t - e.t_enq)
        if e.lost:
            if not self.discipline.final_at_enqueue:
                self._lose(pkt, t)
        else:
            pkt.arrival_s = end + e.delay
            call_at(self.env, pkt.arrival_s, self._arrive, pkt)
        if len(self.discipline) and not self._wake:
            self._schedule_wake()

    def _schedule_wake(self) -> None:
        self._wake, self._wake_at = True, self._busy_until
        call_at(self.env, self._wake_at, self._woken)

    def _woken(self) -> None:
        self._wake = False
        # at the time it was set for (the clock may be an ulp short of it: now + (t - now) != t)
        self._advance(max(self.env.now, self._wake_at))
        if self._busy and len(self.discipline) and not self._wake:
            self._schedule_wake()

    def _arrive(self, pkt) -> None:
        if self.stats is not None:
            self.stats.delivered(pkt, self.env.now)
        self.out.put(pkt)
        self.recorder.packet(pkt)
