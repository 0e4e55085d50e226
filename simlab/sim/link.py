"""A link: FIFO queue (optionally capped), serialization at its bandwidth, propagation delay,
jitter, and erasures by a loss model (a `channels` model or schedule)."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np
import simpy

from simlab.packets import Packet
from simlab.records import NullRecorder
from simlab.sim.clock import Fifo, call_at


@dataclass(frozen=True)
class LinkParams:
    """What a link is: ``loss`` has ``lost_at(t)`` (a `channels.LossModel` or `Schedule`);
    ``rng`` draws the jitter (needed when ``jitter_s`` > 0); ``queue_packets`` caps the FIFO
    (packets waiting besides the one in service; None: unbounded); ``overhead_bytes``, the
    link layer's bytes per packet on the wire (Ethernet 38: preamble, MAC header, FCS, gap),
    counted in serialization; a packet over ``mtu_bytes`` (IP bytes) is refused: dropped;
    ``resolve(path)`` turns a file name as the scenario wrote it into a path (for link models
    that read a trace)."""

    bandwidth_bps: float
    delay_s: float
    loss: Any
    jitter_s: float = 0.0
    queue_packets: Optional[int] = None
    rng: Optional[np.random.Generator] = None
    overhead_bytes: int = 0
    mtu_bytes: Optional[int] = None
    resolve: Optional[Callable[[str], Any]] = None


class Link:
    """``put(packet)`` at the time the packet is handed over; ``out.put(packet)`` at its
    arrival. A packet the channel erases or the full queue drops never reaches ``out``; every
    packet, delivered or not, goes to ``recorder.packet`` once its fate is known.

    ``transmit(packet, t)`` decides a packet's fate without an event (for callers that model
    their own timing lazily, like the feedback path): the same queue, bandwidth, loss and delay.
    """

    def __init__(self, env: simpy.Environment, params: LinkParams | None = None, **kwargs):
        p = params if params is not None else LinkParams(**kwargs)
        if p.jitter_s and p.rng is None:
            raise ValueError("a link with jitter needs rng (a numpy Generator)")
        self.env = env
        self.params = p
        self.bandwidth_bps = float(p.bandwidth_bps)
        self.delay_s = float(p.delay_s)
        self.jitter_s = float(p.jitter_s)
        self.loss = p.loss
        self.rng = p.rng
        self.queue_packets = p.queue_packets
        self.overhead_bytes = int(p.overhead_bytes)
        self.mtu_bytes = p.mtu_bytes
        self.tx = Fifo()
        self._departures: deque[float] = deque()  # departure times of packets queued or in service
        self.out: Any = None
        self.recorder: Any = NullRecorder()
        self.carried_bytes = 0  # bytes put on the wire (erased ones too: they used the link)

    def transmit(self, pkt: Packet, t: float) -> bool:
        """Send ``pkt`` at ``t``: True with ``pkt.arrival_s`` set when it will arrive, False with
        ``pkt.dropped`` or ``pkt.lost`` set when it will not."""
        pkt.send_s = t
        if self.refuses(pkt):
            pkt.dropped = True
            return False
        if self.queue_packets is not None:
            q = self._departures
            while q and q[0] <= t:
                q.popleft()
            # One packet in service plus queue_packets waiting.
            if len(q) > self.queue_packets:
                pkt.dropped = True
                return False
        start, end = self.tx.serve(t, self.wire_bytes(pkt) * 8.0 / self.bandwidth_bps)
        if self.queue_packets is not None:
            self._departures.append(end)
        self.carried_bytes += pkt.size_bytes
        return self.erase_or_delay(pkt, t, end)

    def erase_or_delay(self, pkt: Packet, t: float, departure_s: float) -> bool:
        """The channel's part of a fate, once the packet has left the queue at ``departure_s``:
        erased by the loss model (decided at its send time ``t``), or delivered after the
        propagation delay and jitter."""
        if self.loss.lost_at(t):
            pkt.lost = True
            return False
        delay = self.delay_s
        if self.jitter_s:
            delay = max(0.0, delay + self.jitter_s * (2.0 * self.rng.random() - 1.0))
        pkt.arrival_s = departure_s + delay
        return True

    def wire_bytes(self, pkt: Packet) -> int:
        """The bytes ``pkt`` takes on the wire: its IP packet and the link layer's overhead."""
        return pkt.size_bytes + self.overhead_bytes

    def refuses(self, pkt: Packet) -> bool:
        """Whether ``pkt`` is over the link's MTU (then dropped, never fragmented)."""
        return self.mtu_bytes is not None and pkt.size_bytes > self.mtu_bytes

    def put(self, pkt: Packet) -> None:
        if self.transmit(pkt, self.env.now):
            call_at(self.env, pkt.arrival_s, self._arrive, pkt)
        else:
            self.recorder.packet(pkt)

    def _arrive(self, pkt: Packet) -> None:
        self.out.put(pkt)
        self.recorder.packet(pkt)


class FlowDemux:
    """Hands a packet to the element of its flow (``put``) or its flow's recorder (``packet``):
    what a link that several flows cross forwards to (see `share`)."""

    def __init__(self) -> None:
        self.targets: dict[int, Any] = {}

    def put(self, pkt: Packet) -> None:
        self.targets[pkt.flow].put(pkt)

    def packet(self, pkt: Packet) -> None:
        self.targets[pkt.flow].packet(pkt)


def share(link):
    """Make ``link`` (any link model) a bottleneck several flows cross: their packets share its
    queue, bandwidth and loss process, and each goes on to its own flow (`attach`)."""
    link.out, link.recorder = FlowDemux(), FlowDemux()
    return link


def attach(link, flow: int, out: Any, recorder: Any) -> None:
    """Wire ``link`` to a flow's receiver and recorder: by assignment, or as one of the flows of
    a shared link."""
    if isinstance(link.out, FlowDemux):
        link.out.targets[flow], link.recorder.targets[flow] = out, recorder
    else:
        link.out, link.recorder = out, recorder
