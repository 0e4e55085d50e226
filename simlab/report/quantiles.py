"""Streaming mean and quantiles in fixed memory (log-spaced histogram, HdrHistogram's idea)."""
from __future__ import annotations

import math

import numpy as np


class StreamStats:
    """Mean (exact) and quantiles (to ``rel`` relative precision) of positive values in
    [lo, hi]; values outside are clamped into the end bins. Memory does not grow with count.

    Only the bins between the lowest and highest one used are stored (``_first`` is the index of
    ``_bins[0]``): a flow's delays span a few thousand bins of the 23,000 that [1 µs, 10⁴ s]
    takes, and an idle flow holds none (100,000 flows must fit in a few GB)."""

    def __init__(self, lo: float = 1e-6, hi: float = 1e4, rel: float = 1e-3):
        self.lo, self.rel = lo, rel
        self._log_step = math.log1p(rel)
        self.n_bins = int(math.log(hi / lo) / self._log_step) + 2
        self._first = 0
        self._bins = np.zeros(0, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.max = -math.inf

    @property
    def bins(self) -> np.ndarray:
        """Every bin's count (dense: for inspection, not kept)."""
        out = np.zeros(self.n_bins, dtype=np.int64)
        out[self._first:self._first + len(self._bins)] = self._bins
        return out

    def _count(self, first: int, counts: np.ndarray) -> None:
        """Add ``counts`` to the bins from index ``first`` on, widening the stored range."""
        if not len(self._bins):
            self._first, self._bins = first, counts.astype(np.int64, copy=True)
            return
        lo, hi = min(self._first, first), max(self._first + len(self._bins), first + len(counts))
        if lo != self._first or hi != self._first + len(self._bins):
            wide = np.zeros(hi - lo, dtype=np.int64)
            wide[self._first - lo:self._first - lo + len(self._bins)] = self._bins
            self._first, self._bins = lo, wide
        self._bins[first - lo:first - lo + len(counts)] += counts

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
        idx = np.minimum(idx.astype(np.int64), self.n_bins - 1)
        first = int(idx.min())
        self._count(first, np.bincount(idx - first))

    def merge(self, other: "StreamStats") -> None:
        if len(other._bins):
            self._count(other._first, other._bins)
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
        i = self._first + int(np.searchsorted(np.cumsum(self._bins), max(rank, 1)))
        edge = self.lo * math.exp(i * self._log_step)
        return min(edge, self.max)
