"""Independent erasures: every packet lost with the same probability p."""
from __future__ import annotations

import numpy as np

from channels.base import LossModel, check_probability


class Uniform(LossModel):
    def __init__(self, p: float, rng: np.random.Generator):
        super().__init__()
        self.p = check_probability("p", p)
        self.rng = rng

    def _fill(self, n: int) -> np.ndarray:
        return self.rng.random(n) < self.p

    @property
    def mean_loss(self) -> float:
        return self.p
