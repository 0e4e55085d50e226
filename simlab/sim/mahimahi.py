"""Mahimahi's `mm-link`: a trace of packet-delivery opportunities draining a drop-tail queue.

A trace (Mahimahi's format) has one line per opportunity: a time in milliseconds from the start
of the trace; each opportunity carries up to ``opportunity_bytes`` (1500) bytes across the link.
Several lines with the same time are several opportunities in that millisecond. At its end the
trace starts over (mm-link adds the last time to every later opportunity).

What mm-link does (ravinet/mahimahi, src/frontend/link_queue.cc), and so this link:
- a packet handed over at t meets only the opportunities after t (mm-link spends every
  opportunity up to now before it enqueues);
- an opportunity serves the packets in the queue in order: a packet that needs fewer bytes than
  are left goes whole and the next one takes the rest; one that needs more takes what is left
  and goes on in the next opportunity (and the next: mm-link refuses packets over 1504 bytes,
  this link carries any size, a byte budget at a time); the packet leaves at the opportunity
  that carries its last byte;
- bytes of an opportunity that no queued packet needs are lost (a packet arriving a moment
  later cannot use them);
- the drop-tail queue (``queue_packets``, ``queue_bytes``) holds the packets not yet started: the
  one partly sent is in transit, outside it; a packet that would overfill it is dropped.

Departures are computed when a packet is handed over (FIFO: nothing later changes them), from
the opportunity times by bisection: no process and one event per delivered packet.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from pathlib import Path
from typing import Optional

import numpy as np
import simpy

from simlab.packets import Packet
from simlab.sim.link import Link, LinkParams

#: Bytes one line of a trace lets through: the traces' convention (Mahimahi's code uses 1504,
#: its TUN device's largest payload).
OPPORTUNITY_BYTES = 1500


def read_trace(path: str | Path) -> np.ndarray:
    """A Mahimahi trace's opportunity times (ms, int64), checked as mm-link checks them:
    integers, non-decreasing, at least one, the last one > 0. ``ValueError`` says what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"trace {path} does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"trace {path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    out = np.empty(len(lines), dtype=np.int64)
    for i, line in enumerate(lines):
        s = line.strip()
        if not s.isdigit():
            what = "an empty line" if not s else f"{s[:20]!r} is not a whole number of milliseconds"
            raise ValueError(f"trace {path}: line {i + 1}: {what}")
        out[i] = int(s)
    if not len(out):
        raise ValueError(f"trace {path}: no opportunities (an empty file)")
    bad = np.flatnonzero(np.diff(out) < 0)
    if len(bad):
        raise ValueError(f"trace {path}: line {bad[0] + 2}: {out[bad[0] + 1]} ms is before the line above "
                         f"({out[bad[0]]} ms): times must not decrease")
    if out[-1] == 0:
        raise ValueError(f"trace {path}: the last opportunity is at 0 ms: a trace must last a while")
    return out


class Opportunities:
    """A trace's opportunities in simulated time: opportunity k at ``time_ms(k)``, k = 0, 1, ...
    (repeating with period ``period_ms`` when ``loop``), starting ``start_s`` into the trace."""

    def __init__(self, times_ms: np.ndarray, loop: bool = True, start_s: float = 0.0):
        t = np.asarray(times_ms, dtype=np.int64)
        self.period_ms = float(t[-1])
        self.loop = loop
        self.count = len(t)  # opportunities in one pass of the trace
        start_ms = float(start_s) * 1000.0
        if start_ms == 0.0:
            times = t.astype(float)
        else:
            if loop:
                start_ms = math.fmod(start_ms, self.period_ms)
            elif start_ms >= self.period_ms:
                raise ValueError(f"start_s {start_s:g} is past the trace's end ({self.period_ms / 1000:g} s) "
                                 "and loop is false")
            later = t[t > start_ms] - start_ms
            if loop:  # the opportunities before start_s come at the end of each pass
                times = np.concatenate([later, t[t <= start_ms] + self.period_ms - start_ms])
            else:
                times = later.astype(float)
        self._times = [float(x) for x in times]
        self._n = len(self._times)

    def capacity_bps(self, opportunity_bytes: int = OPPORTUNITY_BYTES) -> float:
        """The trace's mean capacity: its opportunities' bytes over its length."""
        return self.count * opportunity_bytes * 8 / (self.period_ms / 1000.0)

    def time_ms(self, k: int) -> float:
        """Opportunity k's time (inf past the end of a trace that does not loop)."""
        if self.loop:
            m, i = divmod(k, self._n)
            return self._times[i] + m * self.period_ms
        return self._times[k] if k < self._n else math.inf

    def first_after(self, t_ms: float) -> int:
        """The index of the first opportunity after ``t_ms`` (strictly)."""
        if self.loop:
            m = int(t_ms // self.period_ms)
            return m * self._n + bisect.bisect_right(self._times, t_ms - m * self.period_ms)
        return bisect.bisect_right(self._times, t_ms)


class MahimahiLink(Link):
    """mm-link's uplink or downlink (see the module's docstring), then ``params.delay_s`` of
    propagation (mm-delay) with ``params.jitter_s`` (uniform, as `Link`), and erasures by
    ``params.loss`` after the link (mm-loss outside mm-link: an erased packet used its
    opportunities). ``params.bandwidth_bps`` is not used (the trace is the rate);
    ``params.queue_packets`` must be None (the queue is ``queue_packets``/``queue_bytes`` here).
    ``params.overhead_bytes`` is added to each packet's bytes against the opportunities; a packet
    over ``params.mtu_bytes`` is dropped. With ``loop`` false, a packet the trace's end leaves in
    the queue is dropped."""

    def __init__(self, env: simpy.Environment, params: LinkParams, opportunities: Opportunities,
                 queue_packets: Optional[int] = None, queue_bytes: Optional[int] = None,
                 opportunity_bytes: int = OPPORTUNITY_BYTES):
        if params.queue_packets is not None:
            raise ValueError("mahimahi's queue is link.queue_packets / link.queue_bytes (mm-link's droptail "
                             "packets=, bytes=): leave the link section's queue_packets out")
        super().__init__(env, params)
        self.opportunities = opportunities
        self.queue_packets_cap = queue_packets
        self.queue_bytes_cap = queue_bytes
        self.opportunity_bytes = int(opportunity_bytes)
        self._k = -1  # the opportunity that carried the last byte of the latest packet
        self._left = 0  # bytes that opportunity had left after it
        self._waiting: deque[tuple[float, int]] = deque()  # (time its first byte goes, bytes) per queued packet
        self._waiting_bytes = 0

    def _queue_full(self, t: float, size: int) -> bool:
        q = self._waiting
        while q and q[0][0] <= t:  # started by t: in transit or gone
            self._waiting_bytes -= q.popleft()[1]
        if self.queue_packets_cap is not None and len(q) + 1 > self.queue_packets_cap:
            return True
        return self.queue_bytes_cap is not None and self._waiting_bytes + size > self.queue_bytes_cap

    def transmit(self, pkt: Packet, t: float) -> bool:
        pkt.send_s = t
        if self.refuses(pkt):
            pkt.dropped = True
            return False
        size = pkt.size_bytes
        if (self.queue_packets_cap is not None or self.queue_bytes_cap is not None) and self._queue_full(t, size):
            pkt.dropped = True
            return False
        opp, full = self.opportunities, self.opportunity_bytes
        t_ms = t * 1000.0
        k, left = self._k, self._left
        if not (k >= 0 and left > 0 and opp.time_ms(k) > t_ms):  # the rest of opportunity k is not its
            k, left = max(k + 1, opp.first_after(t_ms)), full
        start_ms = opp.time_ms(k)
        need = self.wire_bytes(pkt)
        if need <= left:
            left -= need
        else:
            more = -(-(need - left) // full)
            k += more
            left = more * full - (need - left)
        end_ms = opp.time_ms(k)
        if math.isinf(end_ms):  # the trace ended first: it never leaves the queue
            pkt.dropped = True
            return False
        self._k, self._left = k, left
        if self.queue_packets_cap is not None or self.queue_bytes_cap is not None:
            self._waiting.append((start_ms / 1000.0, size))
            self._waiting_bytes += size
        self.carried_bytes += size
        return self.erase_or_delay(pkt, t, max(t, end_ms / 1000.0))
