"""Checks of ``compute.batch`` on a whole scenario (`simlab.scenario.Scenario` runs them): the
batched calls step in lockstep (`simlab.sim.device`), on a system that batches."""
from __future__ import annotations

from simlab import registry


def check_batch(sc) -> None:
    """ValueError naming the key when ``compute.batch`` cannot hold for ``sc``."""
    if not sc.compute.batch:
        return
    kind = getattr(sc.system, "kind", None)
    if kind is not None and getattr(registry.system(sc.system).factory, "batch", None) is None:
        raise ValueError(f"compute.batch: system {kind} does not batch calls (largesc does)")
    net = sc.network
    if net is not None and not isinstance(net, dict) and net.start_offsets is not None:
        raise ValueError("compute.batch: the calls must start together (leave network.start_offsets out)")
    if sc.receiver.jitter_buffer.kind != "fixed":
        raise ValueError("compute.batch: needs the fixed jitter buffer (an adaptive one releases each "
                         "call's frames at its own times)")
