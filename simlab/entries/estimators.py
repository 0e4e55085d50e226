"""simlab's loss estimators at the receiver: an EWMA of per-report loss, or a sliding window."""
from __future__ import annotations

from typing import Annotated, Literal

from simlab.registry import EstimatorEntry
from simlab.spec import Instant, Strict, in_range


class EwmaSpec(Strict):
    kind: Literal["ewma"]
    alpha: Annotated[float, in_range(1e-6, 1)] = 0.1


class WindowSpec(Strict):
    kind: Literal["window"]
    window_s: Instant = 1.0


def _ewma(spec: EwmaSpec, initial: float):
    from simlab.sim.estimators import Ewma

    return Ewma(spec.alpha, initial)


def _window(spec: WindowSpec, initial: float):
    from simlab.sim.estimators import Windowed

    return Windowed(spec.window_s, initial)


EWMA = EstimatorEntry("ewma", EwmaSpec, _ewma)
WINDOW = EstimatorEntry("window", WindowSpec, _window)
