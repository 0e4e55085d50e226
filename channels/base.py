"""What every loss model is: a stream of per-packet erasure decisions."""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

BLOCK = 512  # decisions drawn at once: one numpy call per block, not per packet (512 B a link held)


class LossModel(ABC):
    """Decides, packet after packet, whether the channel erases it.

    Decisions are drawn in blocks from the injected generator, so a packet costs an index
    into an array; the sequence of decisions depends only on the seed, not on the block size
    the caller happens to use (``draw(n)`` and n calls of ``lost()`` give the same result).
    """

    def __init__(self) -> None:
        self._block = np.zeros(0, dtype=bool)
        self._i = 0

    @abstractmethod
    def _fill(self, n: int) -> np.ndarray:
        """The next n decisions (bool array), advancing the model's state."""

    def lost(self) -> bool:
        if self._i >= len(self._block):
            self._block = self._fill(BLOCK)
            self._i = 0
        self._i += 1
        return bool(self._block[self._i - 1])

    def lost_at(self, t: float) -> bool:
        """Whether the packet sent at simulated time ``t`` is erased. Per-packet models ignore
        ``t`` (their n-th decision is the n-th packet's); a model that lives in time (an outage
        schedule, a trace stamped in seconds) overrides this."""
        return self.lost()

    def draw(self, n: int) -> np.ndarray:
        """The next n decisions at once (for statistics and benchmarks)."""
        out = np.empty(n, dtype=bool)
        have = min(n, len(self._block) - self._i)
        out[:have] = self._block[self._i:self._i + have]
        self._i += have
        if have < n:
            # The fresh decisions become the current block, all of them handed out.
            self._block = self._fill(n - have)
            self._i = n - have
            out[have:] = self._block
        return out

    def discard_block(self) -> None:
        """Forget decisions drawn ahead (when a phase ends, they belong to no packet)."""
        self._block = self._block[:self._i]

    @property
    @abstractmethod
    def mean_loss(self) -> float:
        """The long-run erasure probability the parameters imply."""


def check_probability(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name}: {value:g} is not in [0, 1]")
    return value


class TimedLossModel(LossModel):
    """A model that lives in simulated time (an outage schedule, a time-stamped trace): it
    decides by a packet's send time alone (``lost_at``), so every system at a seed meets the
    same channel whatever its packet rate. It has no per-packet sequence: ``lost()`` and
    ``draw()`` are refused."""

    @abstractmethod
    def lost_at(self, t: float) -> bool:
        """Whether a packet sent at simulated time ``t`` is erased."""

    def _fill(self, n: int) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} decides by send time: call lost_at(t)")
