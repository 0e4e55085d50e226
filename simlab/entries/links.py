"""simlab's link model: a FIFO transmitter at the link's bandwidth (optionally a capped queue),
propagation delay with uniform jitter, erasures by the link's loss model."""
from __future__ import annotations

from typing import Literal

from simlab.registry import LinkEntry
from simlab.spec import Strict


class FifoLinkSpec(Strict):
    """The link as `network.forward`/`network.reverse` describe it (bandwidth_bps, delay_s,
    jitter_s, queue_packets, loss): no parameters of its own."""

    model: Literal["fifo"]


def _fifo(spec: FifoLinkSpec, params, env):
    from simlab.sim.link import Link

    return Link(env, params)


FIFO = LinkEntry("fifo", FifoLinkSpec, _fifo)
