"""When a scenario runs on the block engine (`simlab.sim.block_engine`), and running it there.

The block engine takes calls whose sender never listens and whose timing is fixed: a system with
a fixed frame layout (``fixed_frame()``, as `synthetic` has), plain FIFO links without jitter or a
queue cap, a fixed playout deadline, reports at a fixed interval, no pcap, no bottleneck or start
offsets. Anything else runs on the event engine; `block_reason` says why, and the run's manifest
says which engine ran (``engine``). Both give the same bytes (tests/test_block_engine.py).
"""
from __future__ import annotations

import numpy as np

from simlab.build import estimator, flow_rngs, loss_schedule
from simlab.sim.block_engine import BlockCall, BlockRun, block_groups
from simlab.sim.block_flows import FlowState
from simlab.sim.block_timing import events_coincide
from simlab.sim.feedback import Feedback
from simlab.sim.packetizer import Packetizer

ENGINES = ("auto", "event", "block")


def _link_reason(spec, where: str) -> str | None:
    if getattr(spec.link, "model", "fifo") != "fifo":
        return f"{where}.link is {spec.link.model}"
    if spec.jitter_s > 0:
        return f"{where}.jitter_s > 0"
    if spec.queue_packets is not None:
        return f"{where}.queue_packets is set"
    return None


def block_reason(sc, system, params) -> str | None:
    """Why ``sc`` cannot run on the block engine (None: it can)."""
    net = sc.network
    fixed = getattr(system, "fixed_frame", None)
    frame = fixed() if fixed is not None else None
    checks = [
        (frame is None, f"system {system.name} decides each frame as it goes"),
        (frame is not None and not np.any(frame.copies > 0), "the system sends nothing"),
        (frame is not None and np.any(frame.copies > 1) and params.redundancy != "same",
         "second copies travel apart (packetization.redundancy is not same)"),
        (params.interleave, "packetization.interleave"),
        (sc.compute.batch, "compute.batch"),
        (net.bottleneck.mode != "per_flow" or net.bottleneck.managed, "network.bottleneck"),
        (net.start_offsets is not None or net.send_jitter_s > 0, "start offsets or send jitter"),
        (params.adaptive_playout is not None, "receiver.jitter_buffer is adaptive"),
        (params.outage_s is not None, "feedback.outage_s"),
        (sc.feedback.interval != "fixed", "feedback.interval is not fixed"),
        (bool(sc.outputs.pcap), "outputs.pcap"),
        (net.forward.mtu_bytes is not None or net.reverse.mtu_bytes is not None, "a link's mtu_bytes is set"),
    ]
    for bad, why in checks:
        if bad:
            return why
    return _link_reason(net.forward, "network.forward") or _link_reason(net.reverse, "network.reverse")


def block_call(sc, system, params, tx_timer, rx_timer) -> BlockCall:
    frame = system.fixed_frame()
    copies, unit_bits = np.asarray(frame.copies), np.asarray(frame.unit_bits, dtype=np.int64)
    tx, rx = _charges(tx_timer, frame.tx_stages), _charges(rx_timer, frame.rx_stages)
    stage_s = {s: 0.0 for s in ("encoder", "controller", "concealer", "decoder")} | tx | rx
    fb = _feedback(params)
    # what the receiver waits beyond a frame, as `Flow` works it out: the system's and the packetizer's
    lookahead = system.lookahead_frames + Packetizer(0, params.frames_per_packet, params.interleave,
                                                     params.redundancy, params.headers,
                                                     getattr(system, "sends_second_copies", True)).lookahead_frames
    fwd = sc.network.forward
    return BlockCall(
        n_frames=params.n_frames, frame_s=system.frame_samples / system.sample_rate,
        group_frames=params.frames_per_packet, lookahead=lookahead, playout_s=params.playout_delay_s,
        units_sent=int((copies > 0).sum()), units_double=int((copies > 1).sum()),
        frame_bits=int(unit_bits[copies > 0].sum() + unit_bits[copies > 1].sum()), side_bits=int(frame.side_bits),
        stage_s=stage_s, tx_s=sum(tx.values()), rx_s=sum(rx.values()),
        algorithmic_delay_s=getattr(system, "algorithmic_delay_samples", 0) / system.sample_rate,
        headers=params.headers, bandwidth_bps=float(fwd.bandwidth_bps), delay_s=float(fwd.delay_s),
        link_overhead_bytes=int(fwd.link_overhead_bytes), report_size_bytes=fb.size_bytes,
        report_header_bytes=fb.overhead_bytes, report_payload_bytes=fb.payload_bytes,
        info=tuple(frame.info.items()))


def _charges(timer, stages) -> dict:
    """What ``timer`` records for a frame whose stages are all `Timer.charge`d, as `Timer.take` gives it."""
    for s in stages:
        timer.charge(s)
    return timer.take()


def _feedback(params) -> Feedback:
    """A report's sizes and quantisation, as the event engine's `Feedback` works them out."""
    return Feedback(params.interval_s, params.report_bytes, None, None, 0, params.report_overhead_bytes,
                    params.initial_p, None, params.outage_s, None, params.report_rtcp)


def plan_block(sc, system, params, tx_timer, rx_timer, engine: str = "auto"):
    """(BlockCall, p-hat levels) when ``sc`` runs on the block engine, else None; ``engine`` block makes
    a scenario that cannot a `UserError` naming why."""
    from simlab.errors import UserError

    if engine not in ENGINES:
        raise UserError(f"engine: {engine!r} is not one of {', '.join(ENGINES)}")
    if engine == "event":
        return None
    why = block_reason(sc, system, params)
    call = None
    if why is None:
        call = block_call(sc, system, params, tx_timer, rx_timer)
        if sc.flows > 1 and events_coincide(call.clock(), block_groups(sc.flows)):
            why = "events of different kinds coincide in time (their order across flows is SimPy's)"
    if why is not None:
        if engine == "block":
            raise UserError(f"engine: block cannot run this scenario: {why}")
        return None
    return call, _feedback(params)._levels


def run_block(sc, plan, flow_seeds, recorder) -> list:
    """Run the planned call for every flow; the flows' results for `simulate`'s summary. Each flow's
    loss streams are spawned exactly as `simulate` spawns them for the event engine."""
    call, levels = plan
    net = sc.network
    reverse = (float(net.reverse.bandwidth_bps), float(net.reverse.delay_s),
               call.report_size_bytes + int(net.reverse.link_overhead_bytes))
    states = []
    for i, fs in enumerate(flow_seeds):
        rngs = flow_rngs(fs)
        fwd = loss_schedule(net.forward, rngs["forward_loss"], sc.path, "network.forward")
        rev = loss_schedule(net.reverse, rngs["reverse_loss"], sc.path, "network.reverse")
        states.append(FlowState(i, fwd, rev, estimator(sc), sc.feedback.interval_s, reverse, levels,
                                sc.feedback.initial_p, call.report_size_bytes))
    return BlockRun(call, states, recorder).run()

