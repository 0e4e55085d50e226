"""Compute actors and the speech systems built from them (no SimPy here)."""
from __future__ import annotations

import numpy as np

from simlab.actors.base import STAGES, Decoded, Encoded, Received, System, Timer


def system_key(spec) -> str:
    """The name a latency profile files a system's stages under."""
    if spec.kind == "largesc":
        return f"largesc/{spec.profile}"
    return spec.kind


def build_system(spec, rng: np.random.Generator, device: str = "auto", seed: int = 0, threads: int = 1) -> System:
    """The system a scenario names; heavy imports (torch, libopus, FFmpeg) only when used.
    ``threads``: torch's intra-op threads for model-based systems."""
    if spec.kind == "synthetic":
        from simlab.actors.synthetic import SyntheticSystem

        return SyntheticSystem(spec.quantizers, spec.redundant, rng)
    if spec.kind == "largesc":
        import torch

        from simlab.actors.largesc import LargeSCSystem
        from simlab.models.profiles import load_profile

        torch.set_num_threads(threads)
        models = load_profile(spec.profile, device=device, seed=seed)
        return LargeSCSystem(models, quantizers=spec.quantizers, controller=spec.controller,
                             redundant=spec.redundant, concealer=spec.concealer, greedy=spec.greedy, seed=seed,
                             min_confidence=spec.min_confidence)
    if spec.kind == "opus":
        from simlab.actors.opus import OpusSystem

        return OpusSystem(spec.bitrate_bps, spec.frame_ms, spec.fec, spec.application)
    if spec.kind == "aac":
        from simlab.actors.aac import AacSystem

        return AacSystem(spec.bitrate_bps)
    raise ValueError(f"system.kind: {spec.kind!r} is unknown")


__all__ = ["STAGES", "Decoded", "Encoded", "Received", "System", "Timer", "build_system", "system_key"]
