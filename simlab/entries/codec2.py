"""The ``codec2`` system: libcodec2 (through pycodec2) at 700 to 3200 bit/s, 8 kHz."""
from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from simlab.registry import SystemEntry
from simlab.spec import Strict

#: The modes pycodec2's libcodec2 (1.2) codes; the scenario writes 1200 or 700C.
MODES = (3200, 2400, 1600, 1400, 1300, 1200, "700C")
#: Modes of older libcodec2 releases that the bundled one no longer has.
GONE = ("450", "450PWB")


class Codec2Spec(Strict):
    """Codec2, the open low-rate vocoder: one frame of the mode's bits every 20 ms (3200, 2400)
    or 40 ms (the others), 8 kHz speech; lost frames concealed by repeating the last frame or
    by the waveform concealer (auto: the one that scores better for the mode)."""

    kind: Literal["codec2"]
    mode: Literal[3200, 2400, 1600, 1400, 1300, 1200, "700C"] = 1200
    concealment: Literal["auto", "repeat", "waveform"] = "auto"

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, v):
        allowed, given = ", ".join(map(str, MODES)), v
        if isinstance(v, str) and v.upper() in GONE or v == 450:
            raise ValueError(f"{v!r} is not available: pycodec2's libcodec2 1.2 has no 450 coder "
                             f"(allowed: {allowed})")
        if isinstance(v, str) and v.isdigit():
            v = int(v)
        elif isinstance(v, str):
            v = v.upper()
        if isinstance(v, bool) or not isinstance(v, (int, str)) or v not in MODES:
            raise ValueError(f"{given!r} is not one of {allowed}")
        return v


def build(spec: Codec2Spec, ctx):
    from simlab.actors.codec2 import Codec2System

    return Codec2System(str(spec.mode), spec.concealment)


ENTRY = SystemEntry("codec2", Codec2Spec, build)
