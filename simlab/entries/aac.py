"""The ``aac`` system: FFmpeg's AAC-LC encoder with waveform concealment."""
from __future__ import annotations

from typing import Annotated, Literal

from simlab.registry import SystemEntry
from simlab.spec import Strict, in_range


class AacSpec(Strict):
    kind: Literal["aac"]
    bitrate_bps: Annotated[int, in_range(4000, 144000)] = 16000  # AAC-LC mono at 24 kHz tops out at 144 kbit/s


def build(spec: AacSpec, ctx):
    from simlab.actors.aac import AacSystem

    return AacSystem(spec.bitrate_bps)


def memory(spec: AacSpec) -> tuple[float, float]:
    """PyAV and the bitrate probe once (measured 100 MB), an encoder and decoder a call (1.3 MB)."""
    return 100e6, 1.3e6


ENTRY = SystemEntry("aac", AacSpec, build, memory=memory)
