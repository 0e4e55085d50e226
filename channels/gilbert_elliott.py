"""The two-state Gilbert-Elliott channel: bursts of loss.

States Good (0) and Bad (1); ``p`` = P(G->B), ``r`` = P(B->G) per packet; a packet is lost with
probability ``loss_good`` in Good and ``loss_bad`` in Bad (named apart: netem's command line mixes
loss and success probabilities). Stationary P(Bad) = p/(p+r).

The chain is simulated by its sojourns: the time spent in a state is geometric (with parameter
p in Good, r in Bad), so a block costs one draw per sojourn instead of one per packet.
"""
from __future__ import annotations

import numpy as np

from channels.base import LossModel, check_probability


class GilbertElliott(LossModel):
    def __init__(self, p: float, r: float, rng: np.random.Generator,
                 loss_good: float = 0.0, loss_bad: float = 1.0):
        super().__init__()
        self.p = check_probability("p", p)
        self.r = check_probability("r", r)
        if self.p + self.r == 0:
            raise ValueError("p and r: at least one must be > 0 (the chain would never move)")
        self.loss_good = check_probability("loss_good", loss_good)
        self.loss_bad = check_probability("loss_bad", loss_bad)
        # Two streams, so that the decisions do not depend on how they are blocked.
        self._rng_state, self._rng_loss = rng.spawn(2)
        # Start in the stationary distribution, so averages hold from the first packet.
        self._state = int(self._rng_state.random() < self.p_bad)
        self._left = self._sojourn(self._state)
        self._states = np.zeros(0, dtype=np.int8)

    @classmethod
    def from_average(cls, loss: float, burst: float, rng: np.random.Generator) -> "GilbertElliott":
        """Simple Gilbert (loss_good 0, loss_bad 1) with average loss ``loss`` and mean burst
        length ``burst`` packets: r = 1/burst, p = loss / (burst (1 - loss))."""
        loss = check_probability("loss", loss)
        if not burst >= 1:
            raise ValueError(f"burst: {burst:g} is not >= 1 (a mean burst length in packets)")
        if loss >= 1:
            raise ValueError("loss: 1 is not in [0, 1) for a Gilbert-Elliott channel built from a burst length")
        r = 1.0 / burst
        p = loss / (burst * (1.0 - loss))
        if p > 1:
            raise ValueError(f"loss {loss:g} with burst {burst:g} needs p = {p:.3g} > 1: use a longer burst")
        return cls(p=p, r=r, rng=rng)

    @property
    def p_bad(self) -> float:
        return self.p / (self.p + self.r)

    @property
    def mean_loss(self) -> float:
        return self.loss_good * (1 - self.p_bad) + self.loss_bad * self.p_bad

    @property
    def state(self) -> int:
        """The state of the last packet decided (0 Good, 1 Bad)."""
        if self._i > 0:
            return int(self._states[self._i - 1])
        return self._state

    def continue_from(self, state: int) -> None:
        """Carry a state across a phase change (the new phase's chain starts where the old one is)."""
        self._state = int(state)
        self._left = self._sojourn(self._state)
        self._block = np.zeros(0, dtype=bool)
        self._states = np.zeros(0, dtype=np.int8)
        self._i = 0

    def _sojourn(self, state: int) -> int:
        leave = self.r if state else self.p
        if leave == 0:
            return 1 << 62  # absorbing
        return int(self._rng_state.geometric(leave))

    def _fill(self, n: int) -> np.ndarray:
        states = np.empty(n, dtype=np.int8)
        k = 0
        while k < n:
            run = min(self._left, n - k)
            states[k:k + run] = self._state
            k += run
            self._left -= run
            if self._left == 0:
                self._state ^= 1
                self._left = self._sojourn(self._state)
        self._states = states
        u = self._rng_loss.random(n)
        return u < np.where(states == 1, self.loss_bad, self.loss_good)
