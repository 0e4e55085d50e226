"""The ``opus`` system: libopus with in-band FEC driven by the reported loss, and PLC."""
from __future__ import annotations

from typing import Annotated, Literal

from simlab.registry import SystemEntry
from simlab.spec import Strict, in_range


class OpusSpec(Strict):
    kind: Literal["opus"]
    bitrate_bps: Annotated[int, in_range(6000, 510000)] = 8000
    frame_ms: Literal[20, 40, 60] = 60
    fec: bool = True
    application: Literal["voip", "audio", "restricted_lowdelay"] = "voip"


def build(spec: OpusSpec, ctx):
    from simlab.actors.opus import OpusSystem

    return OpusSystem(spec.bitrate_bps, spec.frame_ms, spec.fec, spec.application)


ENTRY = SystemEntry("opus", OpusSpec, build)
