"""Two simlab speech calls and ns.py TCP flows through one ns.py scheduler at a bottleneck.

    python examples/nspy_bottleneck.py                     # sp, drr, wfq and a plain FIFO port, side by side
    python examples/nspy_bottleneck.py --scheduler drr --duration 30 --tcp 3

Needs ns.py (``pip install 'ns.py>=0.4'``, or simlab's ``nspy`` extra). The topology, all in one
SimPy environment::

    call i: simlab Sender -> ToNsPy ----------> Port (tail drop, call_buffer) --+
    tcp j:  TCPPacketGenerator (Reno) -> Fresh -> Port (tail drop, tcp_buffer) ---+-> scheduler (sp|drr|wfq)
      scheduler -> Meter -> Wire (delay) -> FlowDemux -+-> FromNsPy i -> simlab Receiver i
                                                       +-> TCPSink j -> Wire (delay) -> TCPPacketGenerator j

Each flow has a tail-drop buffer of its own in front of the scheduler (ns.py's ``Port`` with
``zero_downstream_buffer``, the scheduler with ``zero_buffer``, as ns.py's FairPacketSwitch
builds it, but one buffer per flow); ``fifo`` replaces buffers and scheduler by one shared
tail-drop ``Port``. The calls' side is built from a scenario (`SCENARIO`): the synthetic system
(no audio, no models), its forward link's ``bandwidth_bps`` and ``delay_s`` are the bottleneck's
rate and wire delay (its loss, jitter and queue settings are not used: ns.py carries the calls),
and each call's loss reports go back over a simlab reverse link. ns.py's TCP flows send 512-byte
segments from an unlimited backlog; their acks return over a wire without a bottleneck.

With the calls given priority (sp) or a share they never use up (drr, wfq), TCP takes the rest of
the link and the calls see little more than serialization and propagation; behind one FIFO they
wait in TCP's queue, arrive after their playout deadline and lose packets when it is full.

What it prints per call: packets sent, dropped (by an ns.py buffer) and late, the tokens lost or
late, ``t_transmit_s`` (the network's part: queueing, serialization, propagation) and
``latency_s`` (capture to playout, from frames.csv: fixed by the jitter buffer's deadline, so it
does not move with the network; late tokens do). Per TCP flow: throughput (bytes that reached the
sink) and goodput (bytes in order). ns.py 0.4.3's TCP re-sends the missing segment on every
duplicate ack past the third, so after a buffer drop most of what it sends are duplicates: its
goodput is a fraction of its throughput, while the link stays full.
"""
from __future__ import annotations

import argparse
import copy
import math

import numpy as np
import pandas as pd
import simpy

import simlab
from simlab.actors.base import BuildContext, Timer
from simlab.build import build_system, call_params, estimator, headers_of, make_link
from simlab.report.recorder import RunRecorder
from simlab.sim.flow import Flow
from simlab.sim.nspy import NsPyPath

SCHEDULERS = ("sp", "drr", "wfq", "fifo")

#: The calls: the synthetic system (8 tokens of 11 bits per 80 ms frame, 2 frames a packet: 64-byte
#: packets with IPv4 headers, 3.2 kbit/s), no compute time. network.forward: the bottleneck.
SCENARIO = {
    "name": "nspy_bottleneck",
    "seed": 1,
    "duration_s": 20,
    "system": {"kind": "synthetic", "quantizers": 8, "redundant": 0},
    "packetization": {"frames_per_packet": 2, "interleave": False, "redundancy": "next"},
    "network": {
        "headers": "ipv4",
        "forward": {"bandwidth_bps": 1_000_000, "delay_s": 0.02, "loss": {"model": "uniform", "p": 0.0}},
        "reverse": {"delay_s": 0.02, "loss": {"model": "uniform", "p": 0.0}},
    },
    "feedback": {"interval_s": 0.1, "report_bytes": 1, "estimator": {"kind": "ewma", "alpha": 0.1}},
    "receiver": {"playout_delay_s": 0.4},
    "compute": {"timing": "profile", "profile": None},
}


class Fresh:
    """Passes on a copy of each packet. ns.py's TCP sender re-sends the very Packet object it sent
    before, and a scheduler with ``zero_buffer`` files its bookkeeping under the object: a
    retransmission queued beside its original breaks it (a KeyError). A copy per send avoids it."""

    def __init__(self) -> None:
        self.out = None

    def put(self, packet) -> None:
        c = copy.copy(packet)
        c.prio, c.perhop_time = dict(packet.prio), dict(packet.perhop_time)  # per-hop state of its own
        self.out.put(c)


class Meter:
    """Counts the bytes that leave the bottleneck (ns.py packets), passing them on."""

    def __init__(self) -> None:
        self.bytes = 0
        self.out = None

    def put(self, packet) -> None:
        self.bytes += packet.size
        self.out.put(packet)


def build_calls(env: simpy.Environment, sc, forwards: list, recorder) -> list[Flow]:
    """One `Flow` per forward element (``forwards[i]``: call i's way to its receiver), seeded as
    `simlab.simulation.simulate` seeds its flows, so that one call over an ns.py path that behaves
    as the scenario's forward link gives the records ``simlab.run`` gives."""
    seeds = np.random.SeedSequence(sc.seed)
    system_seed, *flow_seeds = seeds.spawn(1 + len(forwards))
    system = build_system(sc.system, BuildContext(np.random.default_rng(system_seed), "cpu",
                                                  int(system_seed.generate_state(1)[0]), sc.compute.threads))
    frame_s = system.frame_samples / system.sample_rate
    n_frames = max(1, int(math.floor(sc.duration_s / frame_s + 1e-9)))
    params = call_params(sc, n_frames, headers_of(sc))
    flows = []
    for i, (fs, forward) in enumerate(zip(flow_seeds, forwards)):
        names = ["forward_loss", "forward_jitter", "reverse_loss", "reverse_jitter"]
        rngs = {k: np.random.default_rng(s) for k, s in zip(names, fs.spawn(len(names)))}
        reverse = make_link(env, sc.network.reverse, rngs["reverse_loss"], rngs["reverse_jitter"], sc.path,
                            "network.reverse")
        if i == 0:
            flow_system = system
        else:  # a system of its own, seeded from the flow's seed
            child = fs.spawn(1)[0]
            flow_system = build_system(sc.system, BuildContext(np.random.default_rng(child), "cpu",
                                                               int(child.generate_state(1)[0]), sc.compute.threads))
        flows.append(Flow(env, i, flow_system, params, forward, reverse, estimator(sc), recorder, None,
                          Timer("profile", None), Timer("profile", None)))
    return flows


def run(scheduler: str = "sp", duration_s: float = 20.0, calls: int = 2, tcp_flows: int = 2,
        rate_bps: float | None = None, delay_s: float | None = None, call_buffer: int = 50,
        tcp_buffer: int = 30, call_weight: float = 4.0, horizon_s: float | None = None, drain_s: float = 2.0,
        overrides: dict | None = None) -> dict:
    """Run the topology for a ``duration_s`` call (TCP sends for as long); returns ``packets`` and
    ``frames`` (the calls' records, as ``simlab.run`` gives them), ``calls`` and ``tcp`` (a row per
    call / TCP flow), ``link`` (bytes that left the bottleneck, its rate and delay, the run's end),
    ``paths`` (the calls' `NsPyPath`), ``ports`` (flow id -> the tail-drop Port it enters) and
    ``scenario``. ``overrides``: scenario keys for the calls (``{"system.redundant": 3}``).

    The run ends ``drain_s`` after the last frame's release; a call packet still inside ns.py
    then is declared dropped (`NsPyPath.flush`), as is every packet a buffer dropped. Make
    ``drain_s`` longer than a packet can wait: the defaults' largest buffer, the FIFO's 110
    packets of at most 512 bytes, empties in 0.45 s at 1 Mbit/s."""
    from ns.demux.flow_demux import FlowDemux
    from ns.flow.cc import TCPReno
    from ns.flow.flow import Flow as NsFlow
    from ns.packet.tcp_generator import TCPPacketGenerator
    from ns.packet.tcp_sink import TCPSink
    from ns.port.port import Port
    from ns.port.wire import Wire
    from ns.scheduler.drr import DRRServer
    from ns.scheduler.sp import SPServer
    from ns.scheduler.wfq import WFQServer

    if scheduler not in SCHEDULERS:
        raise ValueError(f"scheduler {scheduler!r} is not one of {', '.join(SCHEDULERS)}")
    sets = {"duration_s": duration_s, **(overrides or {})}
    if rate_bps is not None:
        sets["network.forward.bandwidth_bps"] = rate_bps
    if delay_s is not None:
        sets["network.forward.delay_s"] = delay_s
    sc = simlab.load_scenario(SCENARIO, sets)
    rate, delay = sc.network.forward.bandwidth_bps, sc.network.forward.delay_s
    env = simpy.Environment()

    # ns.py flow ids: the calls 0..calls-1, then the TCP flows (FlowDemux indexes a list by them;
    # TCP acks carry flow_id + 10000).
    call_ids = list(range(calls))
    tcp_ids = list(range(calls, calls + tcp_flows))
    if scheduler == "fifo":
        bottleneck = Port(env, rate, qlimit=call_buffer + tcp_buffer * tcp_flows)
        inputs = {fid: bottleneck for fid in call_ids + tcp_ids}
    else:
        if scheduler == "sp":  # a higher number is served first
            bottleneck = SPServer(env, rate, {**{f: 2 for f in call_ids}, **{f: 1 for f in tcp_ids}}, zero_buffer=True)
        else:
            weights = {**{f: call_weight for f in call_ids}, **{f: 1.0 for f in tcp_ids}}
            server = DRRServer if scheduler == "drr" else WFQServer
            bottleneck = server(env, rate, weights, zero_buffer=True)
        inputs = {}
        for fid in call_ids + tcp_ids:
            inputs[fid] = Port(env, 0, qlimit=call_buffer if fid in call_ids else tcp_buffer,
                               zero_downstream_buffer=True)
            inputs[fid].out = bottleneck
    meter = Meter()
    wire = Wire(env, lambda: delay)
    demux = FlowDemux(outs=[None] * (calls + tcp_flows))
    bottleneck.out, meter.out, wire.out = meter, wire, demux

    recorder = RunRecorder(None, keep=True)
    paths = [NsPyPath(env, fid, src=f"call{fid}", dst=f"call{fid}", horizon_s=horizon_s) for fid in call_ids]
    for fid, path in zip(call_ids, paths):
        path.entry.out = inputs[fid]
        demux.outs[fid] = path.exit
    flows = build_calls(env, sc, paths, recorder)

    sinks = []
    for fid in tcp_ids:
        gen = TCPPacketGenerator(env, NsFlow(fid, f"tcp{fid}", f"tcp{fid}", finish_time=duration_s), TCPReno())
        sink = TCPSink(env, rec_arrivals=False, rec_waits=False)
        ack_wire, fresh = Wire(env, lambda: delay), Fresh()
        gen.out, fresh.out = fresh, inputs[fid]
        demux.outs[fid], sink.out, ack_wire.out = sink, ack_wire, gen
        sinks.append(sink)

    for f in flows:
        f.start()
    end_s = max(f.receiver.release_s(f.receiver.n_frames - 1) for f in flows) + drain_s
    env.run(until=end_s)
    for p in paths:
        p.flush()
    for f in flows:
        f.finish()
    recorder.close()
    packets, frames = recorder.tables()

    media = packets[packets.kind != "feedback"]
    call_rows = []
    for fid, path in zip(call_ids, paths):
        fr, pk = frames[frames.flow == fid], media[media.flow == fid]
        sent = fr.tokens_sent.sum()
        call_rows.append({
            "call": fid, "packets": len(pk), "dropped": int(pk.dropped.sum()), "late": int(pk.late.sum()),
            "token_loss": (fr.tokens_lost.sum() + fr.tokens_late.sum()) / sent if sent else float("nan"),
            "transmit_mean_ms": 1e3 * fr.t_transmit_s.mean(), "transmit_max_ms": 1e3 * fr.t_transmit_s.max(),
            "latency_mean_ms": 1e3 * fr.latency_s.mean(),
        })
    tcp_rows = [{"tcp": fid, "throughput_bps": 8 * sink.bytes_received[fid] / end_s,
                 "goodput_bps": 8 * sink.next_seq_expected / end_s} for fid, sink in zip(tcp_ids, sinks)]
    return {"packets": packets, "frames": frames, "calls": pd.DataFrame(call_rows), "tcp": pd.DataFrame(tcp_rows),
            "link": {"rate_bps": rate, "delay_s": delay, "end_s": end_s, "bytes": meter.bytes,
                     "utilization": 8 * meter.bytes / (rate * end_s)},
            "paths": paths, "ports": inputs, "sinks": dict(zip(tcp_ids, sinks)), "scenario": sc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scheduler", choices=SCHEDULERS + ("all",), default="all")
    ap.add_argument("--duration", type=float, default=20.0, help="call length in seconds (default 20)")
    ap.add_argument("--rate", type=float, default=1e6, help="bottleneck rate in bit/s (default 1e6)")
    ap.add_argument("--tcp", type=int, default=2, help="TCP flows (default 2)")
    args = ap.parse_args()

    pd.set_option("display.width", 120)
    for name in SCHEDULERS if args.scheduler == "all" else (args.scheduler,):
        res = run(name, args.duration, tcp_flows=args.tcp, rate_bps=args.rate)
        link = res["link"]
        print(f"== {name}: {link['rate_bps'] / 1e6:g} Mbit/s, {1e3 * link['delay_s']:g} ms wire, "
              f"{link['utilization']:.1%} of the link used over {link['end_s']:g} s")
        print(res["calls"].to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        print(res["tcp"].to_string(index=False, float_format=lambda x: f"{x:.0f}"))
        print()


if __name__ == "__main__":
    main()
