"""The block engine's clock: when every group wakes, every packet is sent and arrives, every frame
is released, for a call whose timing does not depend on its losses (`simlab.sim.block_engine`).

Every time is computed with the same floating-point operations, in the same order, as the event
engine (`Sender`, `Link`, `Receiver`, `Fifo`, SimPy's ``now + delay``), so the tables are the same
to the last bit. Where a closed form would round differently (a FIFO that queues, a timeout whose
``now + (t - now)`` is not ``t``) the recurrence is run as written, in a Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def fifo(arrive: np.ndarray, service: np.ndarray | float, free: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """`simlab.sim.clock.Fifo.serve` over a sequence: (start, end, free after). When no job waits
    (each arrives once the one before has left) start is the arrival: vectorized; else the loop."""
    service = np.broadcast_to(np.asarray(service, dtype=np.float64), arrive.shape)
    start = arrive.copy()
    if len(arrive) and free > arrive[0]:
        start[0] = free
    end = start + service
    if len(arrive) > 1 and not np.all(arrive[1:] >= end[:-1]):
        f = free
        for i in range(len(arrive)):
            t = float(arrive[i])
            s = t if t > f else f
            f = s + float(service[i])
            start[i], end[i] = s, f
    return start, end, float(end[-1]) if len(end) else free


def timeout_at(now: np.ndarray, t: np.ndarray) -> np.ndarray:
    """When SimPy fires ``call_at(env, t)`` scheduled at ``now``: ``now + max(0, t - now)``."""
    return now + np.maximum(0.0, t - now)


@dataclass
class CallTiming:
    """A block of a call's clock, shared by all its flows (they differ in losses only).

    Per packet (group) g of the block: ``wake`` (the sender's group event), ``send`` (when the link
    takes it), ``send_event`` (the send is an event of its own, the TX device still busy at the
    wake), ``arrival`` (the record's arrival_s) and ``arrive_ev`` (the arrival event's time),
    ``ready_last`` (its last frame's capture end). Per frame n: ``ready``, ``release``,
    ``rx_start``/``rx_end`` (the RX device), ``group`` (absolute). ``next_wake``/``next_ready_last``:
    the next block's first group's (inf after the last); ``next_release``: the next frame's."""

    g0: int
    wake: np.ndarray
    send: np.ndarray
    send_event: np.ndarray
    arrival: np.ndarray
    arrive_ev: np.ndarray
    first_frame: np.ndarray
    frames_in: np.ndarray
    ready_last: np.ndarray
    ready: np.ndarray
    release: np.ndarray
    rx_start: np.ndarray
    rx_end: np.ndarray
    group: np.ndarray
    next_wake: float
    next_ready_last: float
    next_release: float


class Clock:
    """A call's clock, a block of groups at a time in order (memory flat in the call's length):
    each FIFO (TX device, link, RX device) and the wake chain carry their state from block to block.
    ``sizes(groups, frames_in)``: the packets' IP bytes; ``tx_s``/``rx_s``: a frame's TX and RX stage
    time (the sums the Timer makes); the link has no queue cap, no jitter, no MTU (the engine's terms)."""

    def __init__(self, n_frames: int, frame_s: float, group_frames: int, tx_s: float, rx_s: float, lookahead: int,
                 playout_s: float, sizes, link_overhead: int, bandwidth_bps: float, delay_s: float):
        self.N, self.T, self.G = n_frames, frame_s, group_frames
        self.tx_s, self.rx_s, self.lookahead, self.playout_s = tx_s, rx_s, lookahead, playout_s
        self.sizes, self.overhead, self.bandwidth_bps, self.delay_s = sizes, link_overhead, bandwidth_bps, delay_s
        self.groups = (n_frames - 1) // group_frames + 1
        self._wake = None  # the wake of the group before the next block's first
        self._tx_free = self._link_free = self._rx_free = 0.0

    def _target(self, g: np.ndarray) -> np.ndarray:
        last = np.minimum((g + 1) * self.G, self.N) - 1
        return 0.0 + (last + 1).astype(np.float64) * self.T

    def _wakes(self, target: np.ndarray, before) -> np.ndarray:
        """Each wake is scheduled at the wake before: ``now + max(0, t - now)`` (the first at 0)."""
        prev = np.concatenate([[0.0 if before is None else before], target[:-1]])
        wake = timeout_at(prev, target)
        if not np.array_equal(wake, target):  # a wake off its target: chain them as SimPy does
            w = 0.0 if before is None else before
            for i in range(len(target)):
                w = wake[i] = w + max(0.0, float(target[i]) - w)
        return wake

    def block(self, g0: int, g1: int) -> CallTiming:
        N, G, T = self.N, self.G, self.T
        g = np.arange(g0, g1, dtype=np.int64)
        first = g * G
        frames_in = np.minimum(first + G, N) - first
        wake = self._wakes(self._target(np.arange(g0, min(g1 + 1, self.groups), dtype=np.int64)), self._wake)
        next_wake = float(wake[-1]) if g1 < self.groups else np.inf
        wake = wake[:g1 - g0]
        self._wake = float(wake[-1])
        n = np.arange(first[0], min(g1 * G, N), dtype=np.int64)
        ready = 0.0 + (n + 1).astype(np.float64) * T
        _, tx_end, self._tx_free = fifo(ready, self.tx_s, self._tx_free)
        last = first + frames_in - 1 - first[0]
        end = tx_end[last]
        send_event = end > wake
        send = np.where(send_event, timeout_at(wake, end), wake)
        wire = (self.sizes(g, frames_in) + self.overhead).astype(np.int64)
        _, depart, self._link_free = fifo(send, wire * 8.0 / self.bandwidth_bps, self._link_free)
        arrival = depart + self.delay_s
        release = (0.0 + (n + self.lookahead).astype(np.float64) * T) + self.playout_s
        rx_start, rx_end, self._rx_free = fifo(release, self.rx_s, self._rx_free)
        n1 = int(n[-1]) + 1
        next_ready_last = float(self._target(np.array([g1]))[0]) if g1 < self.groups else np.inf
        next_release = (0.0 + (n1 + self.lookahead) * T) + self.playout_s if n1 < N else np.inf
        return CallTiming(g0, wake, send, send_event, arrival, timeout_at(send, arrival), first, frames_in, ready[last],
                          ready, release, rx_start, rx_end, n // G, next_wake, next_ready_last, next_release)


def block_bounds(groups: int, per_block: int) -> list[tuple[int, int]]:
    """The call's groups cut into blocks of at most ``per_block``, all about the same size (a short
    last block would be written while nothing else is left to compute)."""
    k = max(1, -(-groups // max(1, per_block)))
    cuts = [groups * i // k for i in range(k + 1)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def events_coincide(clock: Clock, per_block: int) -> bool:
    """Whether two kinds of event (a group's wake, a separate send, an arrival) ever fall on the same
    instant: SimPy then orders them by when they were scheduled, which the engine does not model
    across flows. Streams the clock (a fresh one) a block at a time."""
    late_send, late_arr = np.zeros(0), np.zeros(0)  # events of earlier blocks at or after this block's start
    for g0, g1 in block_bounds(clock.groups, per_block):
        t = clock.block(g0, g1)
        sends = np.concatenate([late_send, t.send[t.send_event]])
        arrs = np.concatenate([late_arr, t.arrive_ev])
        kinds = [t.wake, sends, arrs]
        for i in range(3):
            if np.unique(kinds[i]).size != kinds[i].size:
                return True
            for j in range(i + 1, 3):
                if np.intersect1d(kinds[i], kinds[j]).size:
                    return True
        late_send, late_arr = sends[sends >= t.next_wake], arrs[arrs >= t.next_wake]
    return False
