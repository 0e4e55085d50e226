"""Scenario -> the simulator's typed parameters and elements. `simlab.sim` knows no scenario:
this is the one place that reads one to build links, loss models, estimators and call
parameters, each through its registry entry."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from channels.schedule import Schedule
from simlab import registry
from simlab.actors.base import BuildContext
from simlab.errors import UserError
from simlab.packets import HeaderProfile, header_profile
from simlab.sim.flow import CallParams
from simlab.sim.link import LinkParams


def loss_schedule(link_spec, rng: np.random.Generator, resolve: Callable, where: str) -> Schedule:
    """The link's loss model and phases, each model with a stream of its own spawned from
    ``rng``; file paths resolved relative to the scenario. ``where`` names the link's key path
    for error messages."""
    phases = list(link_spec.schedule)
    streams = rng.spawn(len(phases) + 1)
    specs = [ph.loss for ph in phases] + [link_spec.loss]
    try:
        models = [registry.channel(spec).factory(spec, s, resolve) for spec, s in zip(specs, streams)]
    except ValueError as exc:
        raise UserError(f"{where}.loss: {exc}") from None
    carries = [registry.channel(spec).carries_state for spec in specs]
    return Schedule([(ph.until_s, m) for ph, m in zip(phases, models)], models[-1], carries)


def link_params(link_spec, loss_rng: np.random.Generator, jitter_rng: np.random.Generator, resolve: Callable,
                where: str) -> LinkParams:
    return LinkParams(link_spec.bandwidth_bps, link_spec.delay_s, loss_schedule(link_spec, loss_rng, resolve, where),
                      link_spec.jitter_s, link_spec.queue_packets, jitter_rng, link_spec.link_overhead_bytes,
                      link_spec.mtu_bytes, resolve)


def make_link(env, link_spec, loss_rng: np.random.Generator, jitter_rng: np.random.Generator, resolve: Callable,
              where: str):
    """The link element ``network.forward``/``network.reverse`` describes (its link model's factory)."""
    params = link_params(link_spec, loss_rng, jitter_rng, resolve, where)
    try:
        return registry.get("links", link_spec.link.model).factory(link_spec.link, params, env)
    except ValueError as exc:  # a setting the model cannot take, a trace it cannot read
        raise UserError(f"{where}.link: {exc}") from None


FLOW_STREAMS = ("forward_loss", "forward_jitter", "reverse_loss", "reverse_jitter")


def flow_rngs(fs: np.random.SeedSequence) -> dict[str, np.random.Generator]:
    """A call's link streams, spawned from its flow's seed sequence (its system's comes after)."""
    return {k: np.random.default_rng(s) for k, s in zip(FLOW_STREAMS, fs.spawn(len(FLOW_STREAMS)))}


def headers_of(sc) -> HeaderProfile:
    r = sc.network.rohc
    return header_profile(sc.network.headers, r.steady_bytes, r.refresh_bytes, r.refresh_every)


def call_params(sc, n_frames: int, headers: HeaderProfile) -> CallParams:
    fb, pz = sc.feedback, sc.packetization
    # rtcp: a compound RR + SDES/CNAME (RFC 3550); rtcp_reduced: the RR alone (RFC 5506); both in UDP/IP
    rtcp = {"rtcp": "compound", "rtcp_reduced": "reduced"}.get(fb.accounting)
    overhead = headers.ip_udp_bytes() if rtcp else 0
    jb = sc.receiver.jitter_buffer
    adaptive = jb.model_dump(exclude={"kind"}) if jb.kind == "adaptive" else None
    return CallParams(n_frames, pz.frames_per_packet, pz.interleave, pz.redundancy, headers,
                      sc.receiver.playout_delay_s, fb.interval_s, fb.report_bytes, overhead, fb.initial_p, adaptive,
                      fb.outage_s, rtcp)


def estimator(sc) -> Any:
    spec = sc.feedback.estimator
    return registry.get("estimators", spec.kind).factory(spec, sc.feedback.initial_p)


def system_key(spec) -> str:
    """The name a latency profile files a system's stages under (its entry's ``profile_key``)."""
    return registry.system(spec).key(spec)


def build_system(spec, ctx: BuildContext):
    """The system a spec names, by its registry entry's factory."""
    try:
        return registry.system(spec).factory(spec, ctx)
    except ValueError as exc:  # a setting the system cannot take (e.g. largesc quantizers > 8, fixed)
        raise UserError(f"system: {exc}") from None


def build_flow_system(spec, ctx: BuildContext, first):
    """A further flow's system: another stream on flow 0's loaded models where the system can
    share them (its ``sibling(seed)``), else one of its own built from ``ctx``."""
    sibling = getattr(first, "sibling", None)
    system = sibling(ctx.seed) if sibling is not None else None
    return system if system is not None else build_system(spec, ctx)


def flow_child_seed(fs: np.random.SeedSequence) -> np.random.SeedSequence:
    """The seed sequence flow ``fs`` spawns for its own system (`simlab.simulation.simulate`: after
    its four link streams), computed without spawning it."""
    return np.random.SeedSequence(fs.entropy, spawn_key=(*fs.spawn_key, 4), pool_size=fs.pool_size)


def batch_factory(spec) -> Callable:
    """The system's batched factory, ``(spec, ctx, seeds, batch_costs) -> [System per call]`` (an
    attribute ``batch`` of its entry's factory), else `UserError`."""
    entry = registry.system(spec)
    build_batch = getattr(entry.factory, "batch", None)
    if build_batch is None:
        raise UserError(f"compute.batch: system {entry.name} does not batch calls (largesc does)")
    return build_batch


def build_batched(sc, ctx0: BuildContext, flow_seeds) -> list:
    """``compute.batch``: every call's system as one row of a batched group on one set of models
    (call 0 seeded as ``ctx0``, call i as its flow's own system would be)."""
    from simlab.actors.base import STAGES

    build_batch = batch_factory(sc.system)
    seeds = [ctx0.seed] + [int(flow_child_seed(fs).generate_state(1)[0]) for fs in flow_seeds[1:]]
    costs = None
    if sc.compute.timing == "profile" and sc.compute.profile is not None:
        from simlab.latency import batch_stage_costs, resolve_profile_path

        path = resolve_profile_path(sc.compute.profile, sc.base_dir)
        costs = batch_stage_costs(path, system_key(sc.system), STAGES, len(seeds))
    try:
        return build_batch(sc.system, ctx0, seeds, costs)
    except ValueError as exc:
        raise UserError(f"system: {exc}") from None


def share_batched(members: list, flows: list) -> None:
    """Wire the calls of `build_batched` to their flows and to one shared TX and RX device."""
    from simlab.sim.device import share_compute

    try:
        share_compute(members[0].group, flows)
    except ValueError as exc:
        raise UserError(f"compute.batch: {exc}") from None
