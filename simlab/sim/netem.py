"""netem (Linux's network emulator qdisc) as a link: delay with jitter from a distribution, the
correlation netem applies, reordering, rate limiting with packet and cell overhead, and its
packet limit, in the order ``netem_enqueue`` applies them (net/sched/sch_netem.c):

1. loss (here the link's loss model) drops the packet before anything else: it takes no room;
2. a full qdisc (``limit`` packets held, delayed or waiting for the rate) drops it;
3. reordering: unless ``gap`` is 0 or fewer than ``gap - 1`` packets went since the last
   reordered one, with probability ``reorder`` (correlated) the packet is sent at once, ahead of
   the delayed ones, and skips the rate;
4. otherwise delay = tabledist(latency, jitter) (`simlab.sim.netem_dist`); with a rate, the
   packet is sent after the last one held (``time_to_send = max(last, now + delay)``) plus its
   time at the rate, ``(len + packet_overhead)`` bytes, rounded up to whole cells of
   ``cell_size`` taking ``cell_size + cell_overhead`` each when cells are set;
5. packets leave in order of their time to send (the tfifo): with jitter and no rate, packets
   reorder; a negative delay sends at once.

Times are whole nanoseconds, as in the kernel. Randomness: one stream of 32-bit draws (netem's
prandom) for the reorder and delay decisions, from the link's generator.
"""
from __future__ import annotations

import heapq
from typing import Optional

import simpy

from simlab.packets import Packet
from simlab.sim.link import Link, LinkParams
from simlab.sim.netem_dist import CRandom, U32Stream, dist_table, percent_u32, tabledist

NSEC = 1_000_000_000
#: netem's jitter is capped at INT_MAX ns in the kernel (tabledist takes a 32-bit sigma).
MAX_JITTER_NS = (1 << 31) - 1


class NetemLink(Link):
    """netem on the link (see the module's docstring). ``params.delay_s`` and ``params.jitter_s``
    are netem's ``delay TIME JITTER``, ``params.bandwidth_bps`` its ``rate`` (unless ``rate`` is
    False), ``params.loss`` its loss (any simlab model), ``params.overhead_bytes`` adds to
    ``packet_overhead``; ``params.queue_packets`` must be None (netem's ``limit`` is the cap)."""

    def __init__(self, env: simpy.Environment, params: LinkParams, distribution: str = "uniform",
                 correlation: float = 0.0, reorder: float = 0.0, reorder_correlation: float = 0.0,
                 gap: Optional[int] = None, rate: bool = True, packet_overhead: int = 0, cell_size: int = 0,
                 cell_overhead: int = 0, limit: int = 1000):
        if params.queue_packets is not None:
            raise ValueError("netem's queue cap is link.limit (1000 packets by default, as tc's): leave the link "
                             "section's queue_packets out")
        if params.rng is None:
            raise ValueError("netem needs rng (a numpy Generator)")
        super().__init__(env, params)
        self.latency_ns = int(round(params.delay_s * NSEC))
        self.jitter_ns = int(round(params.jitter_s * NSEC))
        if self.jitter_ns > MAX_JITTER_NS:
            raise ValueError(f"jitter_s {params.jitter_s:g}: netem caps jitter at {MAX_JITTER_NS / NSEC:.9f} s "
                             "(INT_MAX ns)")
        self.table = None if distribution == "uniform" else dist_table(distribution)
        self.draw = U32Stream(params.rng)
        self.delay_cor = CRandom(correlation, self.draw)
        self.reorder = percent_u32(reorder)
        self.reorder_cor = CRandom(reorder_correlation, self.draw)
        # tc: reorder without gap means gap 1 (every packet may be reordered)
        self.gap = (gap if gap is not None else 1) if reorder > 0 else 0
        self.counter = 0
        # tc hands netem a rate in whole bytes per second
        self.rate_Bps = int(params.bandwidth_bps) // 8 if rate else 0
        self.packet_overhead = int(packet_overhead) + self.overhead_bytes
        self.cell_size, self.cell_overhead = int(cell_size), int(cell_overhead)
        self.limit = int(limit)
        self._held: list[int] = []  # heap of the time_to_send (ns) of the packets netem holds
        self._max_tts = -1  # the latest time_to_send so far: netem's "last" while it is still held
        self.reordered = 0  # packets sent at once by the reorder rule

    def packet_time_ns(self, length: int) -> int:
        """netem's ``packet_time_ns``: the time ``length`` bytes take at the rate, overheads included."""
        length += self.packet_overhead
        if self.cell_size:
            cells = -(-length // self.cell_size)
            length = cells * (self.cell_size + self.cell_overhead)
        return length * NSEC // self.rate_Bps

    def transmit(self, pkt: Packet, t: float) -> bool:
        pkt.send_s = t
        if self.refuses(pkt):
            pkt.dropped = True
            return False
        if self.loss.lost_at(t):  # netem's loss comes first: a lost packet takes no room
            pkt.lost = True
            return False
        now = int(round(t * NSEC))
        held = self._held
        while held and held[0] <= now:
            heapq.heappop(held)
        if len(held) >= self.limit:
            pkt.dropped = True
            return False
        if self.gap == 0 or self.counter < self.gap - 1 or self.reorder < self.reorder_cor.next(self.draw):
            delay = self.latency_ns
            if self.jitter_ns:
                delay = tabledist(self.latency_ns, self.jitter_ns, self.delay_cor.next(self.draw), self.table)
            start = now
            if self.rate_Bps:
                if self._max_tts > now:  # the last packet held is the reference point
                    delay = max(0, delay - (self._max_tts - now))
                    start = self._max_tts
                delay += self.packet_time_ns(pkt.size_bytes)
            tts = start + delay
            self.counter += 1
        else:  # sent at once, at the head of the queue
            tts = now
            self.counter = 0
            self.reordered += 1
        if tts > now:
            heapq.heappush(held, tts)
            self._max_tts = max(self._max_tts, tts)
        self.carried_bytes += pkt.size_bytes
        pkt.arrival_s = t + max(0, tts - now) / NSEC
        return True
