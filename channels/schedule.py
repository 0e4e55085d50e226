"""Loss parameters that change over time: phases, like the paper's 0/5/20/10/30/10 % run."""
from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np

from channels.base import LossModel


class Schedule:
    """Phase i's model decides for packets sent before ``until_s[i]``; ``after`` decides the rest.

    ``carries[i]`` (default all False) says that model i hands its state to the next phase when
    that phase's model is of the same class (``state`` and ``continue_from``): a Gilbert-Elliott
    burst in progress does not end because the parameters changed. A model in time hands over
    its state at the boundary instant (``state_at``, ``continue_at``).
    """

    def __init__(self, phases: Sequence[tuple[float, LossModel]], after: LossModel,
                 carries: Sequence[bool] | None = None):
        ends = [float(t) for t, _ in phases]
        if any(b <= a for a, b in zip(ends, ends[1:])):
            raise ValueError("schedule: until_s must increase from phase to phase")
        self.ends = ends
        self.models = [m for _, m in phases] + [after]
        self.carries = list(carries) if carries is not None else [False] * len(self.models)
        self._k = 0

    def model_at(self, t: float) -> LossModel:
        return self.models[bisect.bisect_right(self.ends, t)]

    def lost(self, t: float) -> bool:
        k = self._k
        while k < len(self.ends) and t >= self.ends[k]:
            k += 1
        if k != self._k:
            self._switch(k)
        return self.models[k].lost_at(t)

    lost_at = lost  # the loss-model interface the links call

    def lost_many(self, times) -> np.ndarray:
        """`lost` for packets sent at ``times`` (in order), as a bool array: a block from the model's
        stream when one per-packet model decides them all (the same decisions, `LossModel.draw`),
        else one `lost` per packet."""
        model = self.models[0]
        if not self.ends and type(model).lost_at is LossModel.lost_at:
            return model.draw(len(times))
        return np.fromiter((self.lost(float(t)) for t in times), dtype=bool, count=len(times))

    def _switch(self, k: int) -> None:
        old, new = self.models[self._k], self.models[k]
        old.discard_block()
        if hasattr(new, "continue_at"):
            self._hand_over_in_time(k)
        elif self.carries[self._k] and self.carries[k] and type(old) is type(new):
            new.continue_from(old.state)
        self._k = k

    def _hand_over_in_time(self, k: int) -> None:
        """A model that lives in time (``state_at(t)``, ``continue_at(state, t)``) takes over its
        predecessor's state at each phase boundary passed, phases without packets included: the
        state at the boundary, not at the last packet, so every packet rate meets the same chain."""
        for j in range(self._k, k):
            a, b = self.models[j], self.models[j + 1]
            if self.carries[j] and self.carries[j + 1] and type(a) is type(b) and hasattr(b, "continue_at"):
                b.continue_at(a.state_at(self.ends[j]), self.ends[j])

    @property
    def mean_loss(self) -> float:
        """The loss of the phase in force at the start (phases differ; see model_at)."""
        return self.models[0].mean_loss
