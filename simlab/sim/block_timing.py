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
    """A call's clock, shared by all its flows (they differ in losses only).

    Per packet (group) g: ``wake`` (the sender's group event), ``send`` (when the link takes it),
    ``send_event`` (the send is an event of its own, the TX device still busy at the wake),
    ``arrival`` (the record's arrival_s) and ``arrive_ev`` (the arrival event's time). Per frame n:
    ``ready``, ``release``, ``rx_start``/``rx_end`` (the RX device), ``group``."""

    wake: np.ndarray
    send: np.ndarray
    send_event: np.ndarray
    arrival: np.ndarray
    arrive_ev: np.ndarray
    first_frame: np.ndarray
    frames_in: np.ndarray
    ready: np.ndarray
    release: np.ndarray
    rx_start: np.ndarray
    rx_end: np.ndarray
    group: np.ndarray


def call_timing(n_frames: int, frame_s: float, group_frames: int, tx_s: float, rx_s: float, lookahead: int,
                playout_s: float, size_bytes: np.ndarray, link_overhead: int, bandwidth_bps: float,
                delay_s: float) -> CallTiming:
    """``size_bytes[g]``: packet g's IP bytes; ``tx_s``/``rx_s``: a frame's TX and RX stage time
    (the sums the Timer makes); the link has no queue cap, no jitter, no MTU (the engine's terms)."""
    N, G, T = n_frames, group_frames, frame_s
    n = np.arange(N, dtype=np.int64)
    g = n // G
    P = int(g[-1]) + 1
    first = np.arange(P, dtype=np.int64) * G
    last = np.minimum(first + G, N) - 1
    target = 0.0 + (last + 1).astype(np.float64) * T
    wake = target.copy()  # the first wake is scheduled at 0: 0 + (t - 0) = t
    if P > 1:
        chained = timeout_at(target[:-1], target[1:])
        if not np.array_equal(chained, target[1:]):  # scheduled from the group before: chain it
            for i in range(1, P):
                wake[i] = wake[i - 1] + max(0.0, float(target[i]) - float(wake[i - 1]))
    ready = 0.0 + (n + 1).astype(np.float64) * T
    _, tx_end, _ = fifo(ready, tx_s)
    end = tx_end[last]
    send_event = end > wake
    send = np.where(send_event, timeout_at(wake, end), wake)
    wire = (size_bytes + link_overhead).astype(np.int64)
    _, depart, _ = fifo(send, wire * 8.0 / bandwidth_bps)
    arrival = depart + delay_s
    arrive_ev = timeout_at(send, arrival)
    release = (0.0 + (n + lookahead).astype(np.float64) * T) + playout_s
    rx_start, rx_end, _ = fifo(release, rx_s)
    return CallTiming(wake, send, send_event, arrival, arrive_ev, first, last - first + 1, ready, release,
                      rx_start, rx_end, g)


def events_coincide(t: CallTiming) -> bool:
    """Whether two kinds of event (a group's wake, a separate send, an arrival) ever fall on the same
    instant: SimPy then orders them by when they were scheduled, which the engine does not model
    across flows."""
    kinds = [t.wake, t.send[t.send_event], t.arrive_ev]
    for i in range(len(kinds)):
        for j in range(i + 1, len(kinds)):
            if np.intersect1d(kinds[i], kinds[j]).size:
                return True
    return any(np.unique(k).size != k.size for k in kinds)
