"""The ``synthetic`` system: tokens drawn from the seed, a fixed controller, no audio."""
from __future__ import annotations

from typing import Annotated, Literal

from simlab.registry import SystemEntry
from simlab.spec import Strict, in_range


class SyntheticSpec(Strict):
    """Tokens drawn from the seed, a fixed controller: the network alone, no audio."""

    kind: Literal["synthetic"]
    quantizers: Annotated[int, in_range(0, 8)] = 8
    redundant: Annotated[int, in_range(0, 8)] = 0


def build(spec: SyntheticSpec, ctx):
    from simlab.actors.synthetic import SyntheticSystem

    return SyntheticSystem(spec.quantizers, spec.redundant, ctx.rng)


ENTRY = SystemEntry("synthetic", SyntheticSpec, build, needs_audio=False)
