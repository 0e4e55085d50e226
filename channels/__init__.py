"""Packet-loss models. They know nothing of speech: each decides, packet after packet, whether
the channel erases it, drawing from an injected ``numpy.random.Generator``."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from channels.base import LossModel
from channels.gilbert_elliott import GilbertElliott
from channels.schedule import Schedule
from channels.trace import Trace, read_trace
from channels.uniform import Uniform

MODELS = ("uniform", "gilbert_elliott", "trace")


def build(spec: Mapping[str, Any], rng: np.random.Generator) -> LossModel:
    """A model from a validated spec: {model: uniform, p}, {model: gilbert_elliott, p, r,
    loss_good, loss_bad} or {model: gilbert_elliott, loss, burst}, {model: trace, file, loop}."""
    kind = spec["model"]
    if kind == "uniform":
        return Uniform(spec["p"], rng)
    if kind == "gilbert_elliott":
        if spec.get("loss") is not None:
            return GilbertElliott.from_average(spec["loss"], spec["burst"], rng)
        return GilbertElliott(spec["p"], spec["r"], rng, spec.get("loss_good", 0.0), spec.get("loss_bad", 1.0))
    if kind == "trace":
        return Trace.from_file(spec["file"], spec.get("loop", True))
    raise ValueError(f"model: {kind!r} is not one of {', '.join(MODELS)}")


def build_schedule(base: Mapping[str, Any], phases, rng: np.random.Generator) -> Schedule:
    """A schedule of phases [{until_s, loss}], then ``base``; each model gets its own stream."""
    streams = rng.spawn(len(phases) + 1)
    built = [(ph["until_s"], build(ph["loss"], s)) for ph, s in zip(phases, streams)]
    return Schedule(built, build(base, streams[-1]))


__all__ = ["LossModel", "Uniform", "GilbertElliott", "Trace", "Schedule", "read_trace", "build",
           "build_schedule", "MODELS"]
