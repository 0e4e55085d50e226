"""Scheduling helpers: a call at a future simulated time, and a FIFO server in closed form."""
from __future__ import annotations

from typing import Callable

import simpy


def call_at(env: simpy.Environment, t: float, fn: Callable, *args) -> None:
    """Run ``fn(*args)`` at simulated time ``t`` (now if t <= now): one event, no process."""
    ev = env.timeout(max(0.0, t - env.now))
    ev.callbacks.append(lambda _ev: fn(*args))


class Fifo:
    """A single server that serves in arrival order: a compute device or a link transmitter.

    With service times known when work arrives, waiting needs no events: work arriving at
    ``t`` starts at max(t, free) and ends ``service`` later.
    """

    __slots__ = ("free_s", "busy_s")

    def __init__(self) -> None:
        self.free_s = 0.0
        self.busy_s = 0.0

    def serve(self, t: float, service_s: float) -> tuple[float, float]:
        start = t if t > self.free_s else self.free_s
        self.free_s = start + service_s
        self.busy_s += service_s
        return start, self.free_s
