"""The Gilbert-Elliott channel in continuous time: bursts measured in seconds, not packets.

States Good (0) and Bad (1); the time spent in a state is exponential, with mean ``burst_s`` in
Bad and ``burst_s (1 - loss) / loss`` in Good, so that the chain is Bad a fraction ``loss`` of
the time. A packet sent at ``t`` is lost iff the chain is Bad at ``t``: the chain's path is a
function of its seed alone, so every system at a seed meets the same channel whatever its packet
rate (a packet of one is lost iff a packet of another sent at the same instant is).

The path is drawn in blocks of sojourns from a stream of its own, lazily, as far as the latest
time asked; a time earlier than the block in hand replays the path from its start (the stream's
initial state is kept), so the answer never depends on the order of the questions.
"""
from __future__ import annotations

import math

import numpy as np

from channels.base import TimedLossModel, check_probability

SOJOURNS = 1024  # sojourns drawn at once


class TimedGilbertElliott(TimedLossModel):
    """Simple Gilbert in time (loss_good 0, loss_bad 1): average loss ``loss`` (the stationary
    P(Bad)) and mean burst duration ``burst_s`` seconds. The chain starts at time 0 in its
    stationary distribution (or where `continue_at` puts it)."""

    def __init__(self, loss: float, burst_s: float, rng: np.random.Generator):
        super().__init__()
        self.loss = check_probability("loss", loss)
        if self.loss >= 1:
            raise ValueError("loss: 1 is not in [0, 1) for a Gilbert-Elliott channel built from a burst duration")
        if not (math.isfinite(burst_s) and burst_s > 0):
            raise ValueError(f"burst_s: {burst_s!r} is not > 0 (a mean burst duration in seconds)")
        self.burst_s = float(burst_s)
        self.good_s = self.burst_s * (1 - self.loss) / self.loss if self.loss > 0 else math.inf
        self._rng = rng.spawn(1)[0]
        self._origin: tuple[float, int, dict] | None = None  # (t0, state at t0, stream state)

    # -- the path ------------------------------------------------------------------------------

    def _begin(self, t0: float, state: int | None) -> None:
        if state is None:  # stationary start
            state = int(self._rng.random() < self.loss)
        self._origin = (float(t0), int(state), self._rng.bit_generator.state)
        self._rewind()

    def _rewind(self) -> None:
        t0, state, stream = self._origin
        self._rng.bit_generator.state = stream
        self._from = t0          # the block covers [self._from, self._times[-1])
        self._first = state      # the state from self._from until self._times[0]
        self._times = np.array([t0])
        self._next_state = state  # the state that follows the last switch in self._times
        self._extend()

    def _extend(self) -> None:
        """The next block of switch times (the previous block's last switch starts it)."""
        start, state = float(self._times[-1]), self._next_state
        means = np.where((np.arange(SOJOURNS) + state) % 2 == 1, self.burst_s, self.good_s)
        draws = self._rng.exponential(1.0, SOJOURNS)
        # loss 0: Good lasts for ever (inf, not 0 * inf = nan for a zero draw)
        times = start + np.cumsum(np.where(np.isinf(means), np.inf, draws * means))
        self._from, self._first, self._times = start, state, times
        self._next_state = state ^ (SOJOURNS % 2)

    def state_at(self, t: float) -> int:
        """The chain's state at time ``t`` (0 Good, 1 Bad)."""
        if self._origin is None:
            self._begin(0.0, None)
        t0, s0, _ = self._origin
        if t < t0:
            return s0  # before a continued chain starts: its first state
        if t < self._from:
            self._rewind()
        while t >= self._times[-1]:
            self._extend()
        switches = int(np.searchsorted(self._times, t, side="right"))
        return self._first ^ (switches & 1)

    def lost_at(self, t: float) -> bool:
        return self.state_at(t) == 1

    def continue_at(self, state: int, t: float) -> None:
        """Start the chain at time ``t`` in ``state`` (a schedule phase continuing the previous
        phase's chain: a burst in progress does not end because the parameters changed)."""
        self._begin(t, state)

    def switches(self, until_s: float) -> tuple[int, np.ndarray]:
        """(state at the start, switch times before ``until_s``) of the path from its start: the
        sojourns themselves, for statistics."""
        self.state_at(0.0 if self._origin is None else self._origin[0])
        self._rewind()
        t0, first, _ = self._origin
        out = []
        while True:
            out.append(self._times[self._times < until_s])
            if self._times[-1] >= until_s:
                break
            self._extend()
        return first, np.concatenate(out)

    @property
    def mean_loss(self) -> float:
        return self.loss
