"""Adapters between simlab and ns.py (PyPI ``ns.py``, import name ``ns``): a simlab call crosses an
ns.py topology (its ports, schedulers, shapers, demuxes, TCP flows) in the same SimPy environment.

    path = NsPyPath(env, flow_id=0)            # what a `Flow` takes as its forward link
    path.entry.out = scheduler                 # simlab packets go in here, wrapped ...
    demux.outs[0] = path.exit                  # ... and come out here, unwrapped
    flow = Flow(env, 0, system, params, path, reverse, estimator, recorder)
    env.run(until=end)
    path.flush()                               # before flow.finish(): packets ns.py dropped
    flow.finish()

ns.py drops packets silently (a full buffer in a port or scheduler keeps no record of what it
dropped), while simlab's monitor writes a frame's row only once every copy of its units has a fate.
So the entry keeps the packets that went in and have not come out, and declares them dropped:
see `ToNsPy`. Every simlab packet that enters gets exactly one fate report: delivered (at the exit)
or dropped (by the entry).
"""
from __future__ import annotations

from typing import Any

import simpy

from simlab.records import NullRecorder

NAN = float("nan")


def _ns_packet_class():
    try:
        from ns.packet.packet import Packet
    except ImportError:
        raise ImportError("simlab.sim.nspy needs ns.py (pip install 'ns.py>=0.4', or simlab's "
                          "'nspy' extra)") from None
    return Packet


class ToNsPy:
    """Entry into ns.py: ``put(packet)`` (a simlab packet) sets its ``send_s`` to now, wraps it in an
    ``ns.packet.packet.Packet`` (``size`` = the packet's ``size_bytes``, headers included;
    ``flow_id``; ``packet_id`` = its ``seq``; ``src``/``dst``; the simlab packet as ``payload``) and
    forwards that to ``out.put``.

    A packet is *in flight* from its ``put`` until its exit (`FromNsPy`) reports it came out. A
    packet in flight is declared dropped (``dropped`` set, ``arrival_s`` NaN, reported once to
    ``recorder.packet``):

    - by `flush`: every packet still in flight when it is called (call it once the run is over,
      after ``env.run`` returns and before the flows' ``finish``); and
    - with ``horizon_s``: a packet still in flight ``horizon_s`` or more after it went in, declared
      when this path next sees a packet go in or come out (no event of its own), so that a long run's frame
      rows are written as it goes instead of waiting for `flush`. One that comes out after that
      is not delivered (``exits_after_drop`` counts it). Choose ``horizon_s`` above any delay the
      topology can give a packet it does not drop (a packet later than the playout deadline
      is useless to the receiver anyway).

    The wrapped packet is a new ``ns`` Packet each time: an ns.py element may store state on it
    (a scheduler's priority, a port's per-hop time) without touching the simlab packet.
    """

    def __init__(self, env: simpy.Environment, flow_id: Any, src: Any = "simlab", dst: Any = "simlab",
                 horizon_s: float | None = None):
        if horizon_s is not None and not horizon_s > 0:
            raise ValueError(f"horizon_s must be > 0, got {horizon_s}")
        self._packet = _ns_packet_class()
        self.env = env
        self.flow_id = flow_id
        self.src, self.dst = src, dst
        self.horizon_s = horizon_s
        self.out: Any = None
        self.recorder: Any = NullRecorder()
        self._inside: dict[int, Any] = {}  # seq -> simlab packet, in the order they went in
        self.sent = 0
        self.dropped = 0
        self.exits_after_drop = 0

    def put(self, pkt) -> None:
        now = self.env.now
        if self.horizon_s is not None:
            self._expire(now)
        if pkt.seq in self._inside:
            raise ValueError(f"flow {pkt.flow}: packet {pkt.seq} is already in flight")
        pkt.send_s = now
        self._inside[pkt.seq] = pkt
        self.sent += 1
        self.out.put(self._packet(now, pkt.size_bytes, pkt.seq, src=self.src, dst=self.dst,
                                  flow_id=self.flow_id, payload=pkt))

    def came_out(self, pkt) -> bool:
        """The exit's report that ``pkt`` left the topology: True when it was in flight (it is no
        longer), False when it was not (already declared dropped, or a copy ns.py made)."""
        if self.horizon_s is not None:
            self._expire(self.env.now)
        if self._inside.get(pkt.seq) is pkt:
            del self._inside[pkt.seq]
            return True
        self.exits_after_drop += 1
        return False

    def in_flight(self) -> int:
        return len(self._inside)

    def flush(self) -> int:
        """Declare every packet still in flight dropped; returns how many."""
        gone = list(self._inside.values())
        self._inside.clear()
        for pkt in gone:
            self._drop(pkt)
        return len(gone)

    def _expire(self, now: float) -> None:
        inside, limit = self._inside, now - self.horizon_s
        while inside:
            seq, pkt = next(iter(inside.items()))
            if pkt.send_s > limit:
                break
            del inside[seq]
            self._drop(pkt)

    def _drop(self, pkt) -> None:
        pkt.dropped = True
        pkt.arrival_s = NAN
        self.dropped += 1
        self.recorder.packet(pkt)


class FromNsPy:
    """Exit from ns.py: ``put(packet)`` (an ns.py Packet that `ToNsPy` made) unwraps the simlab
    packet, sets its ``arrival_s`` to now, hands it to ``out.put`` (the simlab `Receiver`) and
    reports its fate to ``recorder.packet`` (the `Flow`), as a simlab link does at an arrival.

    ``entry`` is the `ToNsPy` whose packets come out here: it is told of each, and a packet it no
    longer holds in flight (declared dropped, or a second copy) goes nowhere. An ns.py packet that
    carries no simlab packet (a stray from a misrouted demux) is counted in ``strays``."""

    def __init__(self, env: simpy.Environment, entry: ToNsPy):
        self.env = env
        self.entry = entry
        self.out: Any = None
        self.recorder: Any = NullRecorder()
        self.received = 0
        self.strays = 0

    def put(self, ns_pkt) -> None:
        pkt = getattr(ns_pkt, "payload", None)
        if pkt is None or not hasattr(pkt, "contents"):
            self.strays += 1
            return
        if not self.entry.came_out(pkt):
            return
        pkt.arrival_s = self.env.now
        self.received += 1
        self.out.put(pkt)
        self.recorder.packet(pkt)


class NsPyPath:
    """A call's forward way through ns.py, as a `Flow` takes a forward link: ``put`` enters at
    ``entry`` (a `ToNsPy`; wire ``entry.out`` to the first ns.py element), packets come out at
    ``exit`` (a `FromNsPy`; wire the topology's last element, e.g. a demux output, to it), and what
    `simlab.sim.link.attach` assigns, ``out`` (the receiver) and ``recorder`` (the flow), is the
    exit's, the recorder the entry's too (it reports the drops). Call `flush` after the run,
    before the flow's ``finish``."""

    def __init__(self, env: simpy.Environment, flow_id: Any, src: Any = "simlab", dst: Any = "simlab",
                 horizon_s: float | None = None):
        self.entry = ToNsPy(env, flow_id, src, dst, horizon_s)
        self.exit = FromNsPy(env, self.entry)

    def put(self, pkt) -> None:
        self.entry.put(pkt)

    @property
    def out(self):
        return self.exit.out

    @out.setter
    def out(self, element) -> None:
        self.exit.out = element

    @property
    def recorder(self):
        return self.exit.recorder

    @recorder.setter
    def recorder(self, recorder) -> None:
        self.exit.recorder = self.entry.recorder = recorder

    def flush(self) -> int:
        """`ToNsPy.flush`: every packet still in flight is declared dropped; how many."""
        return self.entry.flush()
