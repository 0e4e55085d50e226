"""Scenario -> the bottleneck's elements: the forward link (a plain `Link` model, or a
`QueuedLink` with a queue discipline), cross traffic, and each call's start offset and send
jitter. One builder per discipline and per kind of cross traffic, in the tables below."""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Callable

import numpy as np

from simlab.build import link_params
from simlab.sim.bottleneck_stats import COLUMNS, BottleneckStats
from simlab.sim.cross import ConstantRate, Delay, OnOff, Poisson, Sink
from simlab.sim.fq_codel import FqCodel
from simlab.sim.link import Link, LinkParams, attach
from simlab.sim.qlink import QueuedLink
from simlab.sim.queues import Codel, DropTail, Red
from simlab.sim.tcp import CONGESTION_CONTROLS, NO_LOSS, TcpReceiver, TcpSender

#: discipline name -> (spec, link bandwidth, rng) -> the discipline
DISCIPLINES: dict[str, Callable] = {
    "droptail": lambda s, bw, rng: DropTail(s.limit_packets, s.limit_bytes),
    "red": lambda s, bw, rng: Red(rng, bw, s.min_th, s.max_th, s.max_p, s.w_q, s.gentle, s.mean_packet_bytes,
                                  s.limit_packets),
    "codel": lambda s, bw, rng: Codel(s.target_s, s.interval_s, s.limit_packets),
    "fq_codel": lambda s, bw, rng: FqCodel(s.target_s, s.interval_s, s.quantum_bytes, s.flows, s.limit_packets),
}


def _open_loop(cls):
    def build(env, spec, flow, start_s, stop_s, rng, link, stats, forward):
        src = cls(env, flow, spec.rate_bps, spec.packet_bytes, start_s, stop_s, rng)
        src.out = link
        sink = Sink()
        attach(link, flow, sink, sink)
        return src
    return build


def _onoff(env, spec, flow, start_s, stop_s, rng, link, stats, forward):
    src = OnOff(env, flow, spec.rate_bps, spec.packet_bytes, start_s, stop_s, rng, spec.on_s, spec.off_s,
                spec.distribution, spec.shape)
    src.out = link
    sink = Sink()
    attach(link, flow, sink, sink)
    return src


def _tcp(env, spec, flow, start_s, stop_s, rng, link, stats, forward):
    cc = CONGESTION_CONTROLS[spec.cc]()
    sender = TcpSender(env, flow, cc, spec.packet_bytes, start_s, stop_s, spec.initial_cwnd, spec.min_rto_s,
                       stats=stats)
    receiver = TcpReceiver(env, flow, spec.ack_bytes, spec.packet_bytes, stats)
    back = spec.reverse_delay_s if spec.reverse_delay_s is not None else forward.delay_s
    acks = Link(env, LinkParams(forward.bandwidth_bps, back, NO_LOSS))
    receiver.out, acks.out = acks, sender
    if spec.access_delay_s:
        sender.out = Delay(env, spec.access_delay_s)
        sender.out.out = link
    else:
        sender.out = link
    attach(link, flow, receiver, receiver)
    return sender


#: cross-traffic kind -> builder(env, spec, flow id, start_s, stop_s, rng, link, stats, forward spec)
SOURCES: dict[str, Callable] = {"cbr": _open_loop(ConstantRate), "poisson": _open_loop(Poisson),
                                "onoff": _onoff, "tcp": _tcp}


def _kind(spec) -> str:
    return f"tcp_{spec.cc}" if spec.kind == "tcp" else spec.kind


class BottleneckBuild:
    """What `simlab.simulation.simulate` asks of the bottleneck keys, in its order: ``seed``
    (after every other spawn from the scenario's seed), ``link`` for the shared link or each
    call's own, ``time_call`` per call, ``start_cross`` once the calls are wired, ``close`` after
    the run (bottleneck.csv)."""

    def __init__(self, sc, env, out: Path | None, call_s: float):
        net = sc.network
        self.sc, self.env, self.net, self.spec = sc, env, net, net.bottleneck
        self.flows, self.call_s = sc.flows, call_s
        self.stats = None
        if self.spec.managed:
            from simlab.report.csvstream import CsvStream, NullStream

            sink = CsvStream(out / "bottleneck.csv", COLUMNS) if out is not None else NullStream()
            self.stats = BottleneckStats(self.spec.record_s, sink)
            for i in range(sc.flows):
                self.stats.register(i, "call")
        self.offsets = [0.0] * sc.flows
        self._queue_rngs: list = []
        self._jitter_rngs: list = [None] * sc.flows
        self._cross_rngs: list = []
        self._sources: list = []

    @property
    def needed(self) -> bool:
        return self.spec.managed or self.net.start_offsets is not None or self.net.send_jitter_s > 0

    def seed(self, seeds: np.random.SeedSequence) -> None:
        """Spawn this part's streams from the scenario's seed sequence; nothing when no key of
        it is used (the streams of runs that use none stay as they were)."""
        if not self.needed:
            return
        queue, offsets, jitter, cross = seeds.spawn(1)[0].spawn(4)
        self._queue_rngs = [np.random.default_rng(s) for s in queue.spawn(self.flows)]
        self._jitter_rngs = [np.random.default_rng(s) for s in jitter.spawn(self.flows)]
        n_cross = sum(c.count for c in self.spec.cross_traffic)
        self._cross_rngs = [np.random.default_rng(s) for s in cross.spawn(n_cross)]
        off = self.net.start_offsets
        if isinstance(off, list):
            self.offsets = [float(x) for x in off]
        elif off is not None and off.model == "uniform":
            self.offsets = [float(x) for x in np.random.default_rng(offsets).uniform(0.0, off.max_s, self.flows)]
        elif off is not None:  # even
            self.offsets = [k * off.max_s / self.flows for k in range(self.flows)]

    def link(self, make_link: Callable, loss_rng, jitter_rng, flow: int = 0):
        """The forward link (the shared one, or call ``flow``'s own)."""
        fwd = self.net.forward
        if not self.spec.managed:
            return make_link(self.env, fwd, loss_rng, jitter_rng, self.sc.path, "network.forward")
        params: LinkParams = link_params(fwd, loss_rng, jitter_rng, self.sc.path, "network.forward")
        q = self.spec.queue
        if q is None:
            discipline = DropTail(fwd.queue_packets)
        else:
            discipline = DISCIPLINES[q.discipline](q, fwd.bandwidth_bps, self._queue_rngs[flow])
        return QueuedLink(self.env, dataclasses.replace(params, queue_packets=None), discipline, self.stats)

    def time_call(self, flow, i: int) -> None:
        """Call ``i``'s start offset and send jitter (``flow``: its `Flow`)."""
        flow.set_timing(self.offsets[i], self.net.send_jitter_s, self._jitter_rngs[i])

    def start_cross(self, link) -> None:
        """Cross traffic into the shared ``link``; flow ids after the calls'."""
        if not self.spec.cross_traffic:
            return
        stop_default = max(self.offsets) + self.call_s
        fid = self.flows
        for spec in self.spec.cross_traffic:
            stop = spec.stop_s if spec.stop_s is not None else stop_default
            for j in range(spec.count):
                start = spec.start_s + j * getattr(spec, "stagger_s", 0.0)
                self.stats.register(fid, _kind(spec), reports_goodput=spec.kind == "tcp")
                src = SOURCES[spec.kind](self.env, spec, fid, start, stop, self._cross_rngs[fid - self.flows],
                                         link, self.stats, self.net.forward)
                self._sources.append(src)
                fid += 1
        for src in self._sources:
            src.start()

    def close(self, end_s: float) -> None:
        if self.stats is not None:
            self.stats.close(end_s if math.isfinite(end_s) else 0.0)
