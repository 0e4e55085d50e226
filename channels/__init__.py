"""Packet-loss models. They know nothing of speech: each decides, packet after packet, whether
the channel erases it, drawing from an injected ``numpy.random.Generator``. Scenarios name them
through `simlab.registry` (simlab's own entries: `simlab.entries.losses`)."""
from __future__ import annotations

from channels.base import LossModel
from channels.gilbert_elliott import GilbertElliott
from channels.gilbert_elliott_time import TimedGilbertElliott
from channels.intervals import LossIntervals, read_time_trace
from channels.schedule import Schedule
from channels.trace import Trace, read_trace
from channels.uniform import Uniform

__all__ = ["LossModel", "Uniform", "GilbertElliott", "TimedGilbertElliott", "LossIntervals", "Trace", "Schedule",
           "read_trace", "read_time_trace"]
