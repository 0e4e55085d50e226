"""Loss parameters that change over time: phases, like the paper's 0/5/20/10/30/10 % run."""
from __future__ import annotations

import bisect
from typing import Sequence

from channels.base import LossModel
from channels.gilbert_elliott import GilbertElliott


class Schedule:
    """Phase i's model decides for packets sent before ``until_s[i]``; ``after`` decides the rest.

    A Gilbert-Elliott chain carries its state into the next phase when that phase is also
    Gilbert-Elliott: a burst in progress does not end because the parameters changed.
    """

    def __init__(self, phases: Sequence[tuple[float, LossModel]], after: LossModel):
        ends = [float(t) for t, _ in phases]
        if any(b <= a for a, b in zip(ends, ends[1:])):
            raise ValueError("schedule: until_s must increase from phase to phase")
        self.ends = ends
        self.models = [m for _, m in phases] + [after]
        self._k = 0

    def model_at(self, t: float) -> LossModel:
        return self.models[bisect.bisect_right(self.ends, t)]

    def lost(self, t: float) -> bool:
        k = self._k
        while k < len(self.ends) and t >= self.ends[k]:
            k += 1
        if k != self._k:
            self._switch(k)
        return self.models[k].lost()

    def _switch(self, k: int) -> None:
        old, new = self.models[self._k], self.models[k]
        old.discard_block()
        if isinstance(old, GilbertElliott) and isinstance(new, GilbertElliott):
            new.continue_from(old.state)
        self._k = k

    @property
    def mean_loss(self) -> float:
        """The loss of the phase in force at the start (phases differ; see model_at)."""
        return self.models[0].mean_loss
