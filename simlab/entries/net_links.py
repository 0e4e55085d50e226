"""Link models of real networks: ``mahimahi`` (a trace of delivery opportunities, as mm-link),
``netem`` (Linux netem's delay distributions, correlation, reordering and rate) and
``fate_trace`` (a recorded delay or loss per packet, replayed). See docs/networks.md."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import model_validator

from simlab.registry import LinkEntry
from simlab.spec import Replayed, MAX_DURATION_S, Prob, Strict, at_least, in_range


class MahimahiLinkSpec(Strict):
    """mm-link: ``trace`` (Mahimahi's format: one line per opportunity, its time in ms), replayed
    from ``start_s`` into it and started over at its end (``loop``); a drop-tail queue of at most
    ``queue_packets`` packets and ``queue_bytes`` bytes (mm-link's droptail packets=, bytes=;
    none: unbounded, mm-link's default); ``opportunity_bytes`` per line (1500)."""

    model: Literal["mahimahi"]
    trace: str
    loop: bool = True
    start_s: Annotated[float, in_range(0, MAX_DURATION_S)] = 0.0
    queue_packets: Optional[Annotated[int, at_least(1)]] = None
    queue_bytes: Optional[Annotated[int, at_least(1)]] = None
    opportunity_bytes: Annotated[int, in_range(1, 65535)] = 1500


def _mahimahi(spec: MahimahiLinkSpec, params, env):
    from simlab.sim.mahimahi import MahimahiLink, Opportunities, read_trace

    times = read_trace(params.resolve(spec.trace) if params.resolve is not None else spec.trace)
    return MahimahiLink(env, params, Opportunities(times, spec.loop, spec.start_s), spec.queue_packets,
                        spec.queue_bytes, spec.opportunity_bytes)


class NetemLinkSpec(Strict):
    """netem on the link: the link section's ``delay_s``/``jitter_s`` are netem's ``delay TIME
    JITTER``, its ``bandwidth_bps`` netem's ``rate`` (``rate: false``: none), its loss model
    netem's loss. Here: ``correlation`` (of the jitter, 0-1: netem's percent / 100),
    ``distribution`` (uniform, normal, pareto, paretonormal: iproute2's tables), ``reorder``
    (probability of sending a packet at once), ``reorder_correlation``, ``gap`` (reorder only
    after gap - 1 packets delayed; 1 when reorder is given), ``packet_overhead_bytes``,
    ``cell_bytes`` and ``cell_overhead_bytes`` (rate's PACKETOVERHEAD CELLSIZE CELLOVERHEAD), and
    ``limit`` (packets netem holds, 1000 as tc's default)."""

    model: Literal["netem"]
    distribution: Literal["uniform", "normal", "pareto", "paretonormal"] = "uniform"
    correlation: Prob = 0.0
    reorder: Prob = 0.0
    reorder_correlation: Prob = 0.0
    gap: Optional[Annotated[int, at_least(1)]] = None
    rate: bool = True
    packet_overhead_bytes: Annotated[int, in_range(-65535, 65535)] = 0
    cell_bytes: Annotated[int, in_range(0, 65535)] = 0
    cell_overhead_bytes: Annotated[int, in_range(-65535, 65535)] = 0
    limit: Annotated[int, at_least(1)] = 1000

    @model_validator(mode="after")
    def _as_tc(self):
        if self.gap is not None and self.reorder == 0:
            raise ValueError("gap: only with reorder > 0 (tc: gap specified without reorder probability)")
        if self.reorder_correlation and not self.reorder:
            raise ValueError("reorder_correlation: only with reorder > 0")
        return self


def _netem(spec: NetemLinkSpec, params, env):
    from simlab.sim.netem import NetemLink

    if spec.reorder and params.delay_s == 0:
        raise ValueError("reorder needs delay_s > 0 (tc: reordering not possible without specifying some delay)")
    if spec.distribution != "uniform" and (params.delay_s == 0 or params.jitter_s == 0):
        raise ValueError(f"distribution {spec.distribution} needs delay_s and jitter_s > 0 (tc: distribution "
                         "specified but no latency and jitter values)")
    if spec.correlation and params.jitter_s == 0:
        raise ValueError("correlation needs jitter_s > 0 (netem's delay TIME JITTER CORRELATION)")
    return NetemLink(env, params, spec.distribution, spec.correlation, spec.reorder, spec.reorder_correlation,
                     spec.gap, spec.rate, spec.packet_overhead_bytes, spec.cell_bytes, spec.cell_overhead_bytes,
                     spec.limit)


class FateTraceLinkSpec(Replayed):
    """A recorded fate per packet (CSV ``seq,delay_s``; ``lost`` or empty: lost), replayed in
    order: the n-th packet on the link meets the n-th row. ``loop: true`` starts over at the
    end; ``loop: false`` needs ``after_end``: ``lost`` (every later packet lost) or
    ``last_delay`` (they meet the last delay recorded)."""

    model: Literal["fate_trace"]
    file: str
    after_end: Optional[Literal["lost", "last_delay"]] = None


def _fate_trace(spec: FateTraceLinkSpec, params, env):
    from simlab.sim.fate_trace import FateTraceLink, read_fates

    delays = read_fates(params.resolve(spec.file) if params.resolve is not None else spec.file)
    return FateTraceLink(env, params, delays, spec.loop, spec.after_end)


MAHIMAHI = LinkEntry("mahimahi", MahimahiLinkSpec, _mahimahi, files=lambda spec: [spec.trace])
NETEM = LinkEntry("netem", NetemLinkSpec, _netem)
FATE_TRACE = LinkEntry("fate_trace", FateTraceLinkSpec, _fate_trace, files=lambda spec: [spec.file])
