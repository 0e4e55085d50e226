"""One call, wired: sender -> forward link -> receiver, and the feedback path back."""
from __future__ import annotations

from typing import Callable

import numpy as np
import simpy

import channels
from simlab.errors import UserError
from simlab.actors.base import System, Timer
from simlab.packets import RTCP_BYTES, HeaderProfile
from simlab.sim.feedback import Feedback, make_estimator
from simlab.sim.link import Link, SharedLink
from simlab.sim.monitor import Monitor
from simlab.sim.packetizer import Packetizer
from simlab.sim.receiver import Receiver
from simlab.sim.sender import Sender


def loss_schedule(link_spec, rng: np.random.Generator, resolve: Callable, where: str) -> channels.Schedule:
    """The link's loss model and phases; trace files resolved relative to the scenario.
    ``where`` names the link's key path for error messages."""

    def spec(loss):
        d = loss.model_dump()
        if d["model"] == "trace":
            d["file"] = str(resolve(d["file"]))
        return d

    phases = [{"until_s": ph.until_s, "loss": spec(ph.loss)} for ph in link_spec.schedule]
    try:
        return channels.build_schedule(spec(link_spec.loss), phases, rng)
    except ValueError as exc:
        raise UserError(f"{where}.loss: {exc}") from None


def forward_link(env: simpy.Environment, fwd, loss_rng: np.random.Generator, jitter_rng: np.random.Generator,
                 resolve: Callable, cls: type[Link] = Link) -> Link:
    """The forward link a scenario's ``network.forward`` describes: one flow's own, or (``cls``
    `SharedLink`) the bottleneck every flow crosses."""
    return cls(env, fwd.bandwidth_bps, fwd.delay_s, loss_schedule(fwd, loss_rng, resolve, "network.forward"),
               jitter_rng, fwd.jitter_s, fwd.queue_packets)


class Flow:
    def __init__(self, env: simpy.Environment, flow: int, sc, system: System, tx_timer: Timer,
                 rx_timer: Timer, headers: HeaderProfile, rngs: dict, n_frames: int,
                 audio: Callable[[int], object], record_packet: Callable, write_packet_row: Callable,
                 write_frame: Callable,
                 play: Callable | None = None, resolve: Callable = lambda p: p,
                 forward: SharedLink | None = None):
        frame_s = system.frame_samples / system.sample_rate
        self.frame_s = frame_s
        self.monitor = Monitor(flow, frame_s, getattr(system, "algorithmic_delay_samples", 0) / system.sample_rate,
                               write_frame)
        fwd, rev = sc.network.forward, sc.network.reverse
        # ``forward``: the bottleneck the flows share (network.bottleneck: shared); else a link of its own
        self.forward = forward if forward is not None else forward_link(
            env, fwd, rngs["forward_loss"], rngs["forward_jitter"], resolve)
        fb = sc.feedback
        overhead = RTCP_BYTES + headers.ip_udp_bytes() if fb.accounting == "rtcp" else 0
        self.feedback = Feedback(fb.interval_s, fb.report_bytes, overhead, make_estimator(fb.estimator, fb.initial_p),
                                 rev.bandwidth_bps, rev.delay_s, rev.jitter_s,
                                 loss_schedule(rev, rngs["reverse_loss"], resolve, "network.reverse"), rngs["reverse_jitter"], flow,
                                 fb.initial_p, write_packet_row)
        pz = sc.packetization
        self.packetizer = Packetizer(flow, pz.frames_per_packet, pz.interleave, pz.redundancy, headers,
                                     second_copies=getattr(system, "sends_second_copies", True))
        self.sender = Sender(env, system, tx_timer, self.packetizer, self.monitor, self.feedback, audio,
                             n_frames, frame_s)
        lookahead = system.lookahead_frames + self.packetizer.lookahead_frames
        self.receiver = Receiver(env, system, rx_timer, self.monitor, self.feedback, n_frames, frame_s,
                                 sc.receiver.playout_delay_s, lookahead, play)
        # Wiring by assignment.
        self.sender.out = self.forward.put
        self._record_packet = record_packet
        if isinstance(self.forward, SharedLink):
            self.forward.attach(flow, self.receiver.put, self._forward_fate)
        else:
            self.forward.out = self.receiver.put
            self.forward.record = self._forward_fate
        self.duration_s = n_frames * frame_s

    def _forward_fate(self, pkt) -> None:
        if pkt.lost or pkt.dropped:
            self.monitor.copies_gone(pkt)
        self._record_packet(pkt)

    def start(self) -> None:
        self.sender.start()

    def finish(self) -> None:
        self.receiver.finish()
        self.feedback.catch_up(self.duration_s)
        self.monitor.flush_stats()
