"""The ``lc3`` system: Google's liblc3 (through lc3py) with LC3's own packet-loss concealment."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import model_validator

from simlab.actors.lc3 import MAX_FRAME_BYTES, MIN_FRAME_BYTES, bitrate_range
from simlab.registry import SystemEntry
from simlab.spec import Strict, at_least


class Lc3Spec(Strict):
    """LC3 (Bluetooth LE Audio): frames of 7.5 or 10 ms, 20..400 bytes each (the bitrate rounded
    down to whole bytes per frame), 16-bit PCM at sample_rate; lost frames concealed by
    liblc3's own PLC."""

    kind: Literal["lc3"]
    bitrate_bps: Annotated[int, at_least(1)] = 32000
    frame_ms: Literal[7.5, 10] = 10
    sample_rate: Literal[8000, 16000, 24000, 32000, 48000] = 16000

    @model_validator(mode="after")
    def _bytes_per_frame(self):
        lo, hi = bitrate_range(self.frame_ms)
        if not lo <= self.bitrate_bps <= hi:
            raise ValueError(f"bitrate_bps: {self.bitrate_bps} is outside {lo}..{hi} for frame_ms "
                             f"{self.frame_ms:g} (LC3 frames of {MIN_FRAME_BYTES}..{MAX_FRAME_BYTES} bytes)")
        return self


def build(spec: Lc3Spec, ctx):
    from simlab.actors.lc3 import Lc3System

    return Lc3System(spec.bitrate_bps, spec.frame_ms, spec.sample_rate)


ENTRY = SystemEntry("lc3", Lc3Spec, build)
