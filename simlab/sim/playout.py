"""Playout policies of the jitter buffer: how long after its capture a frame is played.

`FixedPlayout` is a constant deadline (a packet later than it is late). `AdaptivePlayout` is
NetEq-like: its target delay follows a high quantile of the delay recent packets needed to be
in time, plus a margin, and the delay in force moves toward it by at most ``stretch`` of a
frame per frame, as accounted time-stretching would (the audio itself is not stretched: the
cost is counted in time only). Decisions are causal: frame n's delay is set when frame n-1 is
released, from the packets that had arrived by then.
"""
from __future__ import annotations

from collections import deque


class FixedPlayout:
    adaptive = False

    def __init__(self, delay_s: float):
        self.delay_s = delay_s

    def next_delay(self, t: float) -> float:
        return self.delay_s

    def observe(self, t: float, need_s: float) -> None:
        pass


class AdaptivePlayout:
    """``need_s`` of a packet: the playout delay that would just have made it in time. The
    target is the ``quantile`` of the needs seen over the last ``window_s`` plus ``margin_s``,
    kept in [``min_s``, ``max_s``]; the delay moves toward it by at most ``stretch`` ×
    ``frame_s`` per frame (0 < stretch < 1: playout order is kept)."""

    adaptive = True

    def __init__(self, initial_s: float, frame_s: float, quantile: float = 0.95, window_s: float = 2.0,
                 margin_s: float = 0.01, min_s: float = 0.0, max_s: float = 2.0, stretch: float = 0.1):
        if not 0 < stretch < 1:
            raise ValueError(f"stretch: {stretch} is not in (0, 1)")
        self.delay_s = min(max(initial_s, min_s), max_s)
        self.step_s = stretch * frame_s
        self.quantile, self.window_s, self.margin_s = quantile, window_s, margin_s
        self.min_s, self.max_s = min_s, max_s
        self._needs: deque[tuple[float, float]] = deque()

    def observe(self, t: float, need_s: float) -> None:
        self._needs.append((t, need_s))

    def target(self, t: float) -> float | None:
        h = self._needs
        while h and h[0][0] <= t - self.window_s:
            h.popleft()
        if not h:
            return None  # nothing arrived lately (a start, an outage): keep the delay
        needs = sorted(n for _, n in h)
        k = min(len(needs) - 1, int(self.quantile * len(needs)))
        return min(max(needs[k] + self.margin_s, self.min_s), self.max_s)

    def next_delay(self, t: float) -> float:
        """The delay of the next frame, decided at ``t`` (the release of the frame before it)."""
        goal = self.target(t)
        if goal is not None:
            self.delay_s = min(max(goal, self.delay_s - self.step_s), self.delay_s + self.step_s)
        return self.delay_s
