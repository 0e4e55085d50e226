"""Streaming mean and quantiles in fixed memory (log-spaced histogram, HdrHistogram's idea)."""
from __future__ import annotations

import math

import numpy as np


class StreamStats:
    """Mean (exact) and quantiles (to ``rel`` relative precision) of positive values in
    [lo, hi]; values outside are clamped into the end bins. Memory does not grow with count."""

    def __init__(self, lo: float = 1e-6, hi: float = 1e4, rel: float = 1e-4):
        self.lo, self.rel = lo, rel
        self._log_step = math.log1p(rel)
        self.bins = np.zeros(int(math.log(hi / lo) / self._log_step) + 2, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.max = -math.inf

    def add(self, x: float) -> None:
        if x != x:  # NaN: nothing to count
            return
        self.n += 1
        self.total += x
        if x > self.max:
            self.max = x
        i = 0 if x <= self.lo else int(math.log(x / self.lo) / self._log_step) + 1
        self.bins[min(i, len(self.bins) - 1)] += 1

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    def quantile(self, q: float) -> float:
        """The upper edge of the bin holding the q-quantile (never above the true maximum)."""
        if not self.n:
            return float("nan")
        rank = math.ceil(q * self.n)
        i = int(np.searchsorted(np.cumsum(self.bins), max(rank, 1)))
        edge = self.lo * math.exp(i * self._log_step)
        return min(edge, self.max)
