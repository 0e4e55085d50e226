"""Streaming mean and quantiles in fixed memory (log-spaced histogram, HdrHistogram's idea)."""
from __future__ import annotations

import math

import numpy as np


class StreamStats:
    """Mean (exact) and quantiles (to ``rel`` relative precision) of positive values in
    [lo, hi]; values outside are clamped into the end bins. Memory does not grow with count."""

    def __init__(self, lo: float = 1e-6, hi: float = 1e4, rel: float = 1e-3):
        self.lo, self.rel = lo, rel
        self._log_step = math.log1p(rel)
        self.bins = np.zeros(int(math.log(hi / lo) / self._log_step) + 2, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.max = -math.inf

    def add_many(self, values: np.ndarray) -> None:
        """Count a block of values (NaN values are skipped: nothing to count)."""
        x = np.asarray(values, dtype=np.float64)
        x = x[~np.isnan(x)]
        if not x.size:
            return
        self.n += int(x.size)
        self.total += float(x.sum())
        self.max = max(self.max, float(x.max()))
        with np.errstate(divide="ignore"):
            idx = np.where(x <= self.lo, 0, np.floor(np.log(np.maximum(x, self.lo) / self.lo) / self._log_step) + 1)
        idx = np.minimum(idx.astype(np.int64), len(self.bins) - 1)
        self.bins += np.bincount(idx, minlength=len(self.bins))

    def merge(self, other: "StreamStats") -> None:
        self.bins += other.bins
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)

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
