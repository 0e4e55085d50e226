"""netem's random delays, as Linux computes them (net/sched/sch_netem.c) from the tables
iproute2 makes (netem/normal.c, pareto.c, paretonormal.c, taken from NIST Net).

- A table is the inverse CDF of a distribution with mean 0 and (about) unit spread, sampled at
  4096 points and scaled by ``NETEM_DIST_SCALE`` (8192) into 16-bit integers: `dist_table`
  generates iproute2's tables exactly as its generators do (the same floating-point loop, the
  same rounding and clamping), so they equal the ``*.dist`` files tc loads.
- `tabledist` draws a delay of mean ``mu`` and spread ``sigma`` (nanoseconds) from a 32-bit
  random value: without a table (``uniform``) ``rnd % (2 sigma) + mu - sigma``; with one,
  ``mu + sigma * table[rnd % size] / 8192`` in netem's integer arithmetic.
- `CRandom` is netem's "correlated" generator (``get_crandom``): the next value is
  ``(value * (2^32 - rho) + last * rho) >> 32``, with rho = round(correlation * (2^32 - 1)) + 1,
  a first-order autoregression of uniform draws. Its successive values have correlation rho
  (over 2^32), but their spread shrinks by sqrt((1 - rho) / (1 + rho)) and netem then takes
  them modulo the table size or 2 sigma, which throws the correlation away unless it is very
  close to 1: the man page (tc-netem(8)) says it "isn't a true statistical correlation, but an
  approximation". This module reproduces netem, caveat included.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

NETEM_DIST_SCALE = 8192
#: Entries of iproute2's tables (every fourth of its generators' 16384-point grids).
TABLE_SIZE = 4096
DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
U32 = 1 << 32
SHRT_MIN, SHRT_MAX = -32768, 32767


def percent_u32(fraction: float) -> int:
    """A probability or correlation as tc hands it to netem: rint(fraction * UINT32_MAX)."""
    return int(np.rint(float(fraction) * (U32 - 1)))


def _normal_grid() -> np.ndarray:
    """normal.c's table[16384 + 1]: for x from -10 by 0.00005 (summed in doubles, in order, as
    its loop does) the last x whose rint(16384 * Phi(x)) is each index."""
    from scipy.special import erf

    steps = int(20.05 / 0.00005) + 2
    x = np.cumsum(np.concatenate([[-10.0], np.full(steps, 0.00005)]))  # sequential: the C loop's rounding
    x = x[x < 10.05]
    idx = np.rint(16384 * (0.5 + 0.5 * erf(x / np.sqrt(2.0)))).astype(np.int64)
    last = np.searchsorted(idx, np.arange(16385), side="right") - 1
    return x[last]


def _pareto_values(i: np.ndarray) -> np.ndarray:
    """pareto.c: shape a = 3 at u = i / 65536, shifted by its mean (1.5), scaled by 4/3."""
    d = 1.0 / np.power(i / 65536.0, 1.0 / 3.0) - 1.5
    return np.rint(np.minimum(d * (4.0 / 3.0) * NETEM_DIST_SCALE, 32767.0)).astype(np.int64)


@lru_cache(maxsize=None)
def dist_table(name: str) -> tuple[int, ...]:
    """iproute2's table for ``normal``, ``pareto`` or ``paretonormal`` (4096 signed 16-bit values)."""
    if name == "normal":
        raw = np.rint(_normal_grid()[0:16384:4] * NETEM_DIST_SCALE)
        table = np.clip(raw, SHRT_MIN, SHRT_MAX)
    elif name == "pareto":
        table = _pareto_values(np.arange(65536, 0, -16))
    elif name == "paretonormal":
        i = np.arange(0, 16384, 4)
        norm = np.rint(_normal_grid()[i] * NETEM_DIST_SCALE).astype(np.int64)  # not clamped, as there
        table = np.clip(np.trunc((norm + 3 * _pareto_values(65536 - 4 * i)) / 4), SHRT_MIN, SHRT_MAX)
    else:
        raise ValueError(f"distribution {name!r}: netem's tables are normal, pareto, paretonormal")
    return tuple(int(v) for v in table)


class U32Stream:
    """Uniform 32-bit integers from a numpy Generator, drawn in blocks (netem's prandom_u32)."""

    def __init__(self, rng: np.random.Generator, block: int = 4096):
        self.rng, self.block = rng, block
        self._buf: list[int] = []
        self._i = 0

    def __call__(self) -> int:
        if self._i >= len(self._buf):
            self._buf = self.rng.integers(0, U32, size=self.block, dtype=np.uint64).tolist()
            self._i = 0
        self._i += 1
        return self._buf[self._i - 1]


class CRandom:
    """netem's ``crndstate`` and ``get_crandom``: ``rho`` as tc sets it (`percent_u32`), the
    first ``last`` a random 32-bit value (``init_crandom``)."""

    __slots__ = ("rho", "last")

    def __init__(self, correlation: float, draw: U32Stream):
        self.rho = percent_u32(correlation)
        self.last = draw()

    def next(self, draw: U32Stream) -> int:
        value = draw()
        if self.rho == 0:
            return value
        rho = self.rho + 1
        self.last = (value * (U32 - rho) + self.last * rho) >> 32
        return self.last


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def tabledist(mu: int, sigma: int, rnd: int, table: tuple[int, ...] | None) -> int:
    """netem's ``tabledist`` for a random value ``rnd`` already drawn (ns in, ns out)."""
    if sigma == 0:
        return mu
    if table is None:  # uniform
        return (rnd % (2 * sigma)) + mu - sigma
    t = table[rnd % len(table)]
    x = (sigma % NETEM_DIST_SCALE) * t
    x = x + NETEM_DIST_SCALE // 2 if x >= 0 else x - NETEM_DIST_SCALE // 2
    return _c_div(x, NETEM_DIST_SCALE) + (sigma // NETEM_DIST_SCALE) * t + mu


def table_moments(name: str) -> tuple[float, float]:
    """The mean and standard deviation (over the 4096 equally likely entries, in units of sigma)
    of a distribution's table; ``uniform``: 0 and 1/sqrt(3)."""
    if name == "uniform":
        return 0.0, 1.0 / np.sqrt(3.0)
    t = np.asarray(dist_table(name), dtype=float) / NETEM_DIST_SCALE
    return float(t.mean()), float(t.std())
