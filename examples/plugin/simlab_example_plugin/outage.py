"""The ``outage`` loss model: the channel is down for ``length_s`` every ``period_s``.

Registered by the entry point ``outage = simlab_example_plugin.outage:ENTRY`` in the group
``simlab.channels``. A scenario selects it with
``loss: {model: outage, period_s: 2.0, length_s: 0.3, start_s: 0}``.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import model_validator

from channels.base import LossModel
from simlab.registry import ChannelEntry
from simlab.spec import MAX_DURATION_S, Instant, Strict, at_least, in_range

#: The packet spacing `Outage.draw` and `Outage.lost` assume (they get no send times).
DEFAULT_PACKET_INTERVAL_S = 0.02


class OutageSpec(Strict):
    """Every packet sent in [start_s + k*period_s, start_s + k*period_s + length_s), k = 0, 1, ...
    is lost; every other packet arrives."""

    model: Literal["outage"]
    period_s: Instant  # in (0, 86400]
    length_s: Annotated[float, at_least(0)]
    start_s: Annotated[float, in_range(0, MAX_DURATION_S)] = 0.0

    @model_validator(mode="after")
    def _shorter_than_period(self):
        if self.length_s >= self.period_s:
            raise ValueError(f"length_s: {self.length_s!r} must be less than period_s ({self.period_s!r})")
        return self


class Outage(LossModel):
    """Deterministic periodic outages in simulated time.

    The simulator asks `lost_at` with each packet's send time. Times are compared in whole
    nanoseconds, so a packet the simulator stamps 2.3000000000000003 s is decided as sent at
    2.3 s: an outage's edges fall where the scenario's decimal numbers put them. Without times
    (`lost`, `draw`, which simlab's training recipes use) the n-th decision is that of a packet
    sent at ``n * packet_interval_s`` (n = 0, 1, ...)."""

    def __init__(self, period_s: float, length_s: float, start_s: float = 0.0,
                 packet_interval_s: float = DEFAULT_PACKET_INTERVAL_S):
        super().__init__()
        if not (math.isfinite(period_s) and period_s > 0):
            raise ValueError(f"period_s: {period_s!r} is not > 0")
        if not 0 <= length_s < period_s:
            raise ValueError(f"length_s: {length_s!r} is not in [0, period_s)")
        if not (math.isfinite(start_s) and start_s >= 0):
            raise ValueError(f"start_s: {start_s!r} is not >= 0")
        if not packet_interval_s > 0:
            raise ValueError(f"packet_interval_s: {packet_interval_s!r} is not > 0")
        self.period_s, self.length_s, self.start_s = float(period_s), float(length_s), float(start_s)
        self.packet_interval_s = float(packet_interval_s)
        self._period_ns, self._length_ns, self._start_ns = (_ns(period_s), _ns(length_s), _ns(start_s))
        self._n = 0  # packets decided by `_fill` so far

    def lost_at(self, t: float) -> bool:
        since = _ns(t) - self._start_ns
        return since >= 0 and since % self._period_ns < self._length_ns

    def _fill(self, n: int) -> np.ndarray:
        t_ns = np.rint((self._n + np.arange(n)) * (self.packet_interval_s * 1e9)).astype(np.int64)
        self._n += n
        since = t_ns - self._start_ns
        return (since >= 0) & (np.mod(since, self._period_ns) < self._length_ns)

    @property
    def mean_loss(self) -> float:
        return self.length_s / self.period_s


def _ns(t: float) -> int:
    return int(round(float(t) * 1e9))


def build(spec: OutageSpec, rng: np.random.Generator, resolve) -> Outage:
    """The factory: deterministic, so ``rng`` is unused; it reads no files, so ``resolve`` too."""
    return Outage(spec.period_s, spec.length_s, spec.start_s)


ENTRY = ChannelEntry("outage", OutageSpec, build, nominal_loss=lambda spec: spec.length_s / spec.period_s)
