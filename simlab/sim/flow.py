"""One call, wired: sender -> forward link -> receiver, and the feedback path back."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import simpy

from simlab.actors.base import System, Timer
from simlab.packets import HeaderProfile, header_profile
from simlab.records import NullRecorder
from simlab.sim.feedback import Feedback
from simlab.sim.link import attach
from simlab.sim.monitor import Monitor
from simlab.sim.packetizer import Packetizer
from simlab.sim.playout import AdaptivePlayout
from simlab.sim.receiver import Receiver
from simlab.sim.sender import Sender


@dataclass(frozen=True)
class CallParams:
    """What a call does besides its links and its system (`simlab.build` derives it from a
    scenario): packetization, headers, playout deadline, and its loss reports."""

    n_frames: int
    frames_per_packet: int = 2
    interleave: bool = False
    redundancy: str = "next"  # same | next | own
    headers: HeaderProfile = field(default_factory=lambda: header_profile("ipv4"))
    playout_delay_s: float = 0.4
    interval_s: float = 0.1
    report_bytes: int = 1
    report_overhead_bytes: int = 0  # headers around each report (UDP/IP under rtcp accounting)
    initial_p: float = 0.0
    adaptive_playout: Optional[dict] = None  # `AdaptivePlayout`'s settings; None: a fixed deadline
    outage_s: Optional[float] = None  # a silence this long counts as loss in the reports
    report_rtcp: Optional[str] = None  # None: the report's bytes alone; compound | reduced: an RTCP RR (simlab.rtcp)


class Flow:
    """A call between two endpoints: ``forward`` and ``reverse`` are links (the forward one may
    be shared with other flows, `simlab.sim.link.share`), ``estimator`` turns receptions into
    the reported p-hat, ``recorder`` gets every packet's fate and every frame's record."""

    def __init__(self, env: simpy.Environment, flow: int, system: System, params: CallParams, forward, reverse,
                 estimator, recorder: Any = None, audio: Callable[[int], object] | None = None,
                 tx_timer: Timer | None = None, rx_timer: Timer | None = None):
        self.recorder = recorder if recorder is not None else NullRecorder()
        self.frame_s = frame_s = system.frame_samples / system.sample_rate
        self.monitor = Monitor(flow, frame_s, getattr(system, "algorithmic_delay_samples", 0) / system.sample_rate,
                               self.recorder)
        self.forward, self.reverse = forward, reverse
        self.feedback = Feedback(params.interval_s, params.report_bytes, estimator, reverse, flow,
                                 params.report_overhead_bytes, params.initial_p, self.recorder, params.outage_s,
                                 params.frames_per_packet * frame_s, params.report_rtcp)
        self.packetizer = Packetizer(flow, params.frames_per_packet, params.interleave, params.redundancy,
                                     params.headers, second_copies=getattr(system, "sends_second_copies", True))
        self.sender = Sender(env, system, self.packetizer, params.n_frames, audio, tx_timer, self.monitor,
                             self.feedback)
        expect = getattr(system, "expect_frames", None)
        if expect is not None:  # optional: a system may size its state for the call's length
            expect(params.n_frames)
        lookahead = system.lookahead_frames + self.packetizer.lookahead_frames
        playout = None
        if params.adaptive_playout is not None:
            playout = AdaptivePlayout(params.playout_delay_s, frame_s, **params.adaptive_playout)
        self.receiver = Receiver(env, system, self.monitor, params.n_frames, params.playout_delay_s, lookahead,
                                 rx_timer, self.feedback, self.recorder, playout)
        # Wiring by assignment.
        self.sender.out = forward
        attach(forward, flow, self.receiver, self)
        self.duration_s = params.n_frames * frame_s
        self.start_s = 0.0
        self.tap: Callable | None = None  # tap(packet) at each forward packet's fate (a pcap capture)

    def packet(self, pkt) -> None:
        """The forward link's report of a packet's fate."""
        if pkt.lost or pkt.dropped:
            self.monitor.copies_gone(pkt)
        if self.tap is not None:
            self.tap(pkt)
        self.recorder.packet(pkt)

    def set_timing(self, start_s: float, send_jitter_s: float = 0.0, jitter_rng=None) -> None:
        """Start the call at ``start_s`` (its frames, packets, playout and reports all shifted)
        and hand each packet to the link up to ``send_jitter_s`` late (uniform from
        ``jitter_rng``, packet order kept): before `start`."""
        self.start_s = start_s
        for element in (self.sender, self.receiver, self.monitor, self.feedback):
            element.start_s = start_s
        self.sender.send_jitter_s, self.sender.jitter_rng = send_jitter_s, jitter_rng

    def start(self) -> None:
        self.sender.start()

    def finish(self) -> None:
        self.receiver.finish()
        self.feedback.catch_up(self.start_s + self.duration_s)
        self.monitor.flush_stats()
