"""Queue disciplines for a bottleneck (`simlab.sim.qlink.QueuedLink`): drop-tail in packets or
bytes, RED (Floyd and Jacobson, 1993) and CoDel (RFC 8289); FQ-CoDel is in
`simlab.sim.fq_codel`.

A discipline holds `Entry` objects (a packet, its enqueue time and size, and its fate on the
channel after the queue). ``enqueue(entry, t)`` returns the entries it dropped at once (the
arriving one, or for FQ-CoDel another flow's head); ``dequeue(t, drops)`` returns the entry
that starts service at ``t`` (None when empty), appending any it dropped on the way to
``drops``. ``final_at_enqueue``: a packet admitted is never dropped later (drop-tail, RED), so
its channel fate can be reported when it is handed over, as `simlab.sim.link.Link` does.
Sizes are bytes; times are simulated seconds.
"""
from __future__ import annotations

import math
from collections import deque
from typing import Optional

import numpy as np

#: CoDel's MTU-sized floor: a queue holding at most this many bytes is never "above target".
MTU_BYTES = 1500


class Entry:
    __slots__ = ("pkt", "t_enq", "size", "lost", "delay")

    def __init__(self, pkt, t_enq: float, size: int, lost: bool, delay: float):
        self.pkt, self.t_enq, self.size, self.lost, self.delay = pkt, t_enq, size, lost, delay


class ByteFifo:
    """A FIFO of entries that counts its bytes."""

    __slots__ = ("items", "bytes")

    def __init__(self) -> None:
        self.items: deque[Entry] = deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self.items)

    def append(self, e: Entry) -> None:
        self.items.append(e)
        self.bytes += e.size

    def popleft(self) -> Optional[Entry]:
        if not self.items:
            return None
        e = self.items.popleft()
        self.bytes -= e.size
        return e


class DropTail:
    """Tail drop at ``limit_packets`` waiting (besides the one in service) and/or ``limit_bytes``
    of waiting packets (the arriving one included); neither: unbounded."""

    final_at_enqueue = True

    def __init__(self, limit_packets: Optional[int] = None, limit_bytes: Optional[int] = None):
        self.limit_packets, self.limit_bytes = limit_packets, limit_bytes
        self.q = ByteFifo()

    def __len__(self) -> int:
        return len(self.q)

    @property
    def bytes(self) -> int:
        return self.q.bytes

    def full(self, size: int) -> bool:
        return ((self.limit_packets is not None and len(self.q) >= self.limit_packets)
                or (self.limit_bytes is not None and self.q.bytes + size > self.limit_bytes))

    def enqueue(self, e: Entry, t: float) -> list:
        if self.full(e.size):
            return [e]
        self.q.append(e)
        return []

    def dequeue(self, t: float, drops: list) -> Optional[Entry]:
        return self.q.popleft()

    def serving(self, start: float, end: float) -> None:
        """The link started sending a packet at ``start`` that leaves at ``end``."""


class Red(DropTail):
    """Random Early Detection as Floyd and Jacobson (1993) give it, dropping (no ECN marks).

    At each arrival the average queue ``avg`` (in packets waiting) moves by ``w_q`` toward the
    instantaneous queue; after an idle period it decays as if ``m`` small packets had been sent
    meanwhile, ``m = idle / s`` with ``s`` the transmission time of a ``mean_packet_bytes``
    packet. Between ``min_th`` and ``max_th`` a packet is dropped with p_a = p_b / (1 - count
    p_b), p_b = max_p (avg - min_th) / (max_th - min_th), ``count`` the packets since the last
    drop; at or above ``max_th`` every packet is dropped, or with ``gentle`` (Floyd, 2000) p_b
    rises from max_p to 1 between max_th and 2 max_th. ``limit_packets`` is the hard buffer."""

    def __init__(self, rng: np.random.Generator, bandwidth_bps: float, min_th: float = 5.0, max_th: float = 15.0,
                 max_p: float = 0.1, w_q: float = 0.002, gentle: bool = False, mean_packet_bytes: int = 500,
                 limit_packets: Optional[int] = None, limit_bytes: Optional[int] = None):
        super().__init__(limit_packets, limit_bytes)
        self.rng = rng
        self.min_th, self.max_th, self.max_p, self.w_q, self.gentle = min_th, max_th, max_p, w_q, gentle
        self.s = mean_packet_bytes * 8.0 / bandwidth_bps
        self.avg = 0.0
        self.count = -1
        self.q_time: Optional[float] = 0.0  # when the queue last became empty (None: not empty)
        self.busy_until = 0.0  # the end of the packet in service (`serving`)

    def _average(self, t: float) -> None:
        if len(self.q) or t < self.busy_until:
            self.avg += self.w_q * (len(self.q) - self.avg)
        else:  # idle since the later of q_time and the end of the last service
            idle = t - max(self.q_time if self.q_time is not None else t, self.busy_until)
            self.avg *= (1.0 - self.w_q) ** max(0.0, idle / self.s)

    def _drop_probability(self) -> float:
        avg = self.avg
        if avg < self.min_th:
            return -1.0
        if avg < self.max_th:
            return self.max_p * (avg - self.min_th) / (self.max_th - self.min_th)
        if self.gentle and avg < 2 * self.max_th:
            return self.max_p + (1.0 - self.max_p) * (avg - self.max_th) / self.max_th
        return 1.0

    def enqueue(self, e: Entry, t: float) -> list:
        self._average(t)
        p_b = self._drop_probability()
        drop = False
        if p_b < 0:
            self.count = -1
        elif p_b >= 1.0:
            drop = True
        else:
            self.count += 1
            den = 1.0 - self.count * p_b
            p_a = 1.0 if den <= 0 else min(1.0, p_b / den)
            drop = self.rng.random() < p_a
        if drop:
            self.count = 0
            return [e]
        if self.full(e.size):
            return [e]
        self.q.append(e)
        self.q_time = None
        return []

    def dequeue(self, t: float, drops: list) -> Optional[Entry]:
        e = self.q.popleft()
        if not len(self.q) and self.q_time is None:
            self.q_time = t
        return e

    def serving(self, start: float, end: float) -> None:
        self.busy_until = end


class CodelState:
    """CoDel's state machine (RFC 8289, section 5's pseudocode) over any `ByteFifo`: drops happen
    at dequeue, while the sojourn time has stayed above ``target_s`` for at least ``interval_s``;
    the next drop comes ``interval_s / sqrt(count)`` later (the control law)."""

    __slots__ = ("target", "interval", "first_above_time", "drop_next", "count", "lastcount", "dropping")

    def __init__(self, target_s: float, interval_s: float):
        self.target, self.interval = target_s, interval_s
        self.first_above_time = 0.0
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False

    def _control_law(self, t: float) -> float:
        return t + self.interval / math.sqrt(self.count)

    def _dodequeue(self, q: ByteFifo, now: float):
        e = q.popleft()
        if e is None:
            self.first_above_time = 0.0
            return None, False
        ok_to_drop = False
        if now - e.t_enq < self.target or q.bytes <= MTU_BYTES:
            self.first_above_time = 0.0
        elif self.first_above_time == 0.0:
            self.first_above_time = now + self.interval
        elif now >= self.first_above_time:
            ok_to_drop = True
        return e, ok_to_drop

    def dequeue(self, q: ByteFifo, now: float, drops: list) -> Optional[Entry]:
        e, ok_to_drop = self._dodequeue(q, now)
        if e is None:
            self.dropping = False
            return None
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False
            while self.dropping and now >= self.drop_next:
                drops.append(e)
                self.count += 1
                e, ok_to_drop = self._dodequeue(q, now)
                if e is None or not ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next = self._control_law(self.drop_next)
        elif ok_to_drop:
            drops.append(e)
            e, _ = self._dodequeue(q, now)
            self.dropping = True
            delta = self.count - self.lastcount
            self.count = delta if delta > 1 and now - self.drop_next < 16 * self.interval else 1
            self.drop_next = self._control_law(now)
            self.lastcount = self.count
        return e


class Codel(DropTail):
    """CoDel (RFC 8289): ``target_s`` 5 ms, ``interval_s`` 100 ms, drops at dequeue; tail drop
    at ``limit_packets`` (Linux's default 1000) as the hard buffer."""

    final_at_enqueue = False

    def __init__(self, target_s: float = 0.005, interval_s: float = 0.1, limit_packets: Optional[int] = 1000,
                 limit_bytes: Optional[int] = None):
        super().__init__(limit_packets, limit_bytes)
        self.codel = CodelState(target_s, interval_s)

    def dequeue(self, t: float, drops: list) -> Optional[Entry]:
        return self.codel.dequeue(self.q, t, drops)
