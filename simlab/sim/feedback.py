"""Loss feedback: the receiver estimates the loss rate and reports it to the sender over a
reverse link with its own delay and loss; the controller sees only the latest report that
arrived, never the true p.

Reports are made lazily but exactly: report k describes the packets that arrived before
k * interval_s, so it is produced before the first later arrival is counted, or when the sender
asks for p-hat. Nothing here needs an event of its own.
"""
from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Callable

import numpy as np

from channels import Schedule
from simlab.packets import Packet
from simlab.sim.clock import Fifo


class RtcpCounter:
    """RTCP-style counts since the last report: packets expected (from the highest sequence
    number seen) and packets received."""

    def __init__(self) -> None:
        self.max_seq = -1
        self.received = 0
        self._last_max = -1
        self._last_received = 0

    def arrived(self, seq: int) -> None:
        self.received += 1
        if seq > self.max_seq:
            self.max_seq = seq

    def interval(self) -> tuple[int, int]:
        """(expected, received) since the previous call."""
        expected = self.max_seq - self._last_max
        received = self.received - self._last_received
        self._last_max, self._last_received = self.max_seq, self.received
        return expected, received


class Ewma:
    def __init__(self, alpha: float, initial: float = 0.0):
        self.alpha = alpha
        self.value = initial

    def update(self, t: float, expected: int, received: int) -> float:
        if expected > 0:
            frac = min(1.0, max(0.0, 1.0 - received / expected))
            self.value += self.alpha * (frac - self.value)
        return self.value


class Windowed:
    """Fraction lost over the reports of the last ``window_s`` seconds."""

    def __init__(self, window_s: float, initial: float = 0.0):
        self.window_s = window_s
        self.value = initial
        self._hist: deque[tuple[float, int, int]] = deque()
        self._exp = self._rec = 0

    def update(self, t: float, expected: int, received: int) -> float:
        h = self._hist
        h.append((t, expected, received))
        self._exp += expected
        self._rec += received
        while h and h[0][0] <= t - self.window_s:
            _, e, r = h.popleft()
            self._exp -= e
            self._rec -= r
        if self._exp > 0:
            self.value = min(1.0, max(0.0, 1.0 - self._rec / self._exp))
        return self.value


def make_estimator(spec, initial: float):
    if spec.kind == "ewma":
        return Ewma(spec.alpha, initial)
    return Windowed(spec.window_s, initial)


class Feedback:
    """The receiver's loss reports and their way back to the sender.

    ``arrived(t, pkt)`` counts a media packet; ``p_hat(t)`` is what the sender knows at t.
    Report packets go to ``record`` (kind ``feedback``) with their real sizes.
    """

    def __init__(self, interval_s: float, report_bytes: int, overhead_bytes: int, estimator,
                 bandwidth_bps: float, delay_s: float, jitter_s: float, loss: Schedule,
                 rng: np.random.Generator, flow: int, initial_p: float,
                 write_row: Callable[[tuple], None]):
        self.interval_s = interval_s
        self.report_bytes = report_bytes
        self.overhead_bytes = overhead_bytes
        self.estimator = estimator
        self.bandwidth_bps = bandwidth_bps
        self.delay_s = delay_s
        self.jitter_s = jitter_s
        self.loss = loss
        self.rng = rng
        self.flow = flow
        self.write_row = write_row
        self.counter = RtcpCounter()
        self.size_bytes = overhead_bytes + report_bytes
        self._tx_s = self.size_bytes * 8.0 / bandwidth_bps
        # A report of n bytes quantises p-hat to 2^(8n) - 1 steps (at most 16 bits), as a real one would.
        self._levels = (1 << (8 * min(report_bytes, 2))) - 1
        self.tx = Fifo()
        self._k = 1  # next report index (report k at k * interval_s)
        self._seq = 0
        # What reached the sender: arrival times (increasing) and values.
        self._times: list[float] = [-math.inf]
        self._values: list[float] = [initial_p]
        self._now = -math.inf  # simulated time of the latest call (calls come in time order)
        self.carried_bytes = 0
        self.sent = self.lost = 0

    def arrived(self, t: float, pkt: Packet) -> None:
        self.catch_up(t)
        self.counter.arrived(pkt.seq)

    def catch_up(self, t: float) -> None:
        """Make every report due at or before ``t`` (they count arrivals strictly before)."""
        self._now = t
        while self._k * self.interval_s <= t:
            self._report(self._k * self.interval_s)
            self._k += 1

    def p_hat(self, t: float) -> float:
        self.catch_up(t)
        # The latest report that arrived by t; report arrivals can be out of order under jitter.
        i = bisect.bisect_right(self._times, t) - 1
        return self._values[i]

    def _report(self, tau: float) -> None:
        expected, received = self.counter.interval()
        value = self.estimator.update(tau, expected, received)
        value = round(value * self._levels) / self._levels
        seq = self._seq
        self._seq += 1
        _, end = self.tx.serve(tau, self._tx_s)
        self.carried_bytes += self.size_bytes
        self.sent += 1
        if self.loss.lost(tau):
            self.lost += 1
            arrival = math.nan
        else:
            delay = self.delay_s
            if self.jitter_s:
                delay = max(0.0, delay + self.jitter_s * (2.0 * self.rng.random() - 1.0))
            arrival = end + delay
            times = self._times
            if arrival < times[-1]:
                # This report is the newest; older reports arriving after it (reordered by
                # jitter) are stale by sequence number and a real sender ignores them.
                i = bisect.bisect_right(times, arrival)
                del times[i:], self._values[i:]
            times.append(arrival)
            self._values.append(value)
            if len(times) > 1024:
                self._trim()
        # A packets.csv row (see simlab.run.PACKET_COLUMNS): the report's way back.
        self.write_row((self.flow, seq, "feedback", tau, arrival, self.overhead_bytes, self.report_bytes,
                        8 * self.report_bytes, -1, int(arrival != arrival), 0, 0))

    def _trim(self) -> None:
        # Keep memory flat: of the reports that arrived by now only the newest can still matter;
        # those still in flight all may (a long reverse delay can hold more than 1024 of them).
        i = bisect.bisect_right(self._times, self._now) - 1
        if i > 0:
            del self._times[:i]
            del self._values[:i]
