"""Loss estimators at the receiver: each report's (expected, received) counts since the last
report -> the loss rate p-hat it sends back. simlab's own are registered in
`simlab.entries.estimators`; a plugin's implement the same ``update``."""
from __future__ import annotations

from collections import deque

import numpy as np


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

    def update_many(self, t: np.ndarray, expected: np.ndarray, received: np.ndarray) -> np.ndarray:
        """`update` for a block of reports (optional for an estimator; the block engine uses it):
        the same values, bit for bit (the fractions as numpy divides them are Python's, the
        recurrence runs in its order)."""
        has = expected > 0
        frac = np.minimum(1.0, np.maximum(0.0, 1.0 - received[has] / expected[has]))
        a, v = self.alpha, self.value
        vals = [v]
        keep = vals.append
        for f in frac.tolist():  # a plain loop: ~40 % faster than accumulate with a lambda
            v += a * (f - v)
            keep(v)
        self.value = v
        # a report without packets expected repeats the value before it
        return np.asarray(vals)[np.cumsum(has)]


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
