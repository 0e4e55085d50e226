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


def memory(spec: SyntheticSpec) -> tuple[float, float]:
    """Its calls run on the block engine where the scenario allows (`simlab.block_run`): the rows of
    two blocks in flight (one computed, one written; 128k packets at most) and the writers' pyarrow
    and pandas, ~0.3 GB once (100 flows over 1 h peaked at 348 MB, 290 MB beyond the process);
    4 kB a call beyond the event engine's estimate (35 kB measured a call, 1,000 against 10,000;
    43 kB before the writers took constant columns as broadcasts)."""
    return 0.3e9, 4e3


ENTRY = SystemEntry("synthetic", SyntheticSpec, build, needs_audio=False, memory=memory)
