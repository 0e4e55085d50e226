"""The `synthetic` system: tokens drawn from the seed and a fixed controller, no audio, so
the network side can be exercised and measured alone."""
from __future__ import annotations

import numpy as np

from simlab.actors.base import Decoded, Encoded, FixedFrame, Timer, Window

N_Q, TOKEN_BITS, CARD = 8, 11, 2048
SIDE_BITS = 8  # the mask as two 4-bit counts (tokens sent, tokens doubled)


def fixed_mask(quantizers: int, redundant: int, n_q: int = N_Q) -> np.ndarray:
    """First ``quantizers`` tokens sent, the first ``redundant`` of them twice."""
    m = np.zeros(n_q, dtype=np.int8)
    m[:quantizers] = 1
    m[:min(redundant, quantizers)] = 2
    return m


def mask_string(mask: np.ndarray) -> str:
    return "".join("012"[int(v)] for v in mask)


_NOTHING = Decoded(None, 0)


class SyntheticSystem:
    name = "synthetic"
    sample_rate = 24_000
    frame_samples = 1920
    lookahead_frames = 0
    algorithmic_delay_samples = 0
    stages = ("encoder", "controller", "concealer", "decoder")

    def __init__(self, quantizers: int, redundant: int, rng: np.random.Generator):
        self.mask = fixed_mask(quantizers, redundant)
        self.sends_second_copies = bool((self.mask == 2).any())
        self.unit_bits = np.full(N_Q, TOKEN_BITS, dtype=np.int64)
        self.rng = rng
        self._tokens = np.zeros((0, N_Q), dtype=np.int64)
        self._i = 0
        self._info = {"mask": mask_string(self.mask)}

    def _draw(self) -> np.ndarray:
        if self._i >= len(self._tokens):
            # 64 frames at a time (4 kB per flow); the stream is the same as in larger blocks
            self._tokens = self.rng.integers(0, CARD, size=(64, N_Q))
            self._i = 0
        self._i += 1
        return self._tokens[self._i - 1]

    def transmit(self, frame: int, audio, p_hat: float, timer: Timer) -> Encoded:
        # Drawing tokens and a fixed mask are not the work being simulated: the stages cost what
        # the latency profile says they cost.
        timer.charge("encoder")
        timer.charge("controller")
        return Encoded(frame, self.unit_bits, self.mask, SIDE_BITS, self._draw(), self._info)

    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        # No concealment and no audio: lost tokens stay lost; the stages still cost their time.
        timer.charge("concealer")
        timer.charge("decoder")
        return _NOTHING

    def fixed_frame(self) -> FixedFrame | None:
        """Every frame is the same mask and sizes whatever p-hat says (the block engine's term);
        the tokens themselves reach no table. None for a subclass with a transmit or receive of its
        own: what it sends is no longer known here."""
        cls = type(self)
        if cls.transmit is not SyntheticSystem.transmit or cls.receive is not SyntheticSystem.receive:
            return None
        return FixedFrame(self.mask, self.unit_bits, SIDE_BITS, self._info, ("encoder", "controller"),
                          ("concealer", "decoder"))

    def describe(self) -> dict:
        return {"system": "synthetic", "mask": mask_string(self.mask)}
