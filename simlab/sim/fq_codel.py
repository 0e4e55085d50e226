"""FQ-CoDel (RFC 8290) as a queue discipline of `simlab.sim.qlink.QueuedLink` (the interface of
`simlab.sim.queues`): packets are classified into ``flows`` queues (a packet's flow id modulo
``flows``: simlab knows each packet's flow, so no 5-tuple hash is needed and ids below
``flows`` never collide), served by deficit round robin with a ``quantum_bytes`` quantum, new
queues before old ones, each queue managed by its own CoDel state (target, interval shared).
Above ``limit_packets`` the head packet of the queue holding the most bytes is dropped (one
packet; Linux drops a batch of up to 64, or half that queue's bytes)."""
from __future__ import annotations

from collections import deque
from typing import Optional

from simlab.sim.queues import ByteFifo, CodelState, Entry


class _FlowQueue:
    __slots__ = ("q", "codel", "deficit", "listed")

    def __init__(self, target_s: float, interval_s: float):
        self.q = ByteFifo()
        self.codel = CodelState(target_s, interval_s)
        self.deficit = 0
        self.listed = False  # in new_flows or old_flows


class FqCodel:
    final_at_enqueue = False

    def __init__(self, target_s: float = 0.005, interval_s: float = 0.1, quantum_bytes: int = 1514,
                 flows: int = 1024, limit_packets: int = 10240):
        self.target_s, self.interval_s = target_s, interval_s
        self.quantum, self.buckets, self.limit = quantum_bytes, flows, limit_packets
        self.queues: dict[int, _FlowQueue] = {}
        self.new_flows: deque[_FlowQueue] = deque()
        self.old_flows: deque[_FlowQueue] = deque()
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def enqueue(self, e: Entry, t: float) -> list:
        b = e.pkt.flow % self.buckets
        fq = self.queues.get(b)
        if fq is None:
            fq = self.queues[b] = _FlowQueue(self.target_s, self.interval_s)
        fq.q.append(e)
        self.n += 1
        if not fq.listed:
            fq.listed = True
            fq.deficit = self.quantum
            self.new_flows.append(fq)
        if self.n <= self.limit:
            return []
        fattest = max(self.queues.values(), key=lambda f: f.q.bytes)  # the first of equals: deterministic
        self.n -= 1
        return [fattest.q.popleft()]

    def dequeue(self, t: float, drops: list) -> Optional[Entry]:
        while True:
            if self.new_flows:
                lst = self.new_flows
            elif self.old_flows:
                lst = self.old_flows
            else:
                return None
            fq = lst[0]
            if fq.deficit <= 0:
                fq.deficit += self.quantum
                lst.popleft()
                self.old_flows.append(fq)
                continue
            before = len(drops)
            e = fq.codel.dequeue(fq.q, t, drops)
            self.n -= len(drops) - before
            if e is None:
                lst.popleft()
                if lst is self.new_flows and self.old_flows:
                    self.old_flows.append(fq)
                else:
                    fq.listed = False
                continue
            self.n -= 1
            fq.deficit -= e.size
            return e

    def serving(self, start: float, end: float) -> None:
        pass
