"""The receiving side: jitter buffer with a playout deadline, de-interleaving by unit labels,
concealer and decoder on the RX device, playout."""
from __future__ import annotations

import simpy

from simlab.actors.base import Decoded, Received, System, Timer
from simlab.packets import Packet
from simlab.records import NullRecorder
from simlab.sim.clock import Fifo
from simlab.sim.feedback import Feedback
from simlab.sim.monitor import Monitor
from simlab.sim.playout import FixedPlayout


class Receiver:
    """Frame n is released at ``n * frame_s + D_n + lookahead_frames * frame_s``: a unit
    arriving by then is used, later is late (lost to the decoder). D_n is ``playout_delay_s``,
    or what a ``playout`` policy (`simlab.sim.playout`) sets frame by frame. The lookahead is what
    the system (the LM's one-step acoustic delay, Opus FEC) and the packetizer (copies in the
    next packet) need to see beyond frame n; its cost is latency.

    Releases happen lazily but exactly: before an arrival at t is counted, every frame due
    before t is released with what had arrived by its deadline.

    ``monitor`` must be the sender's (it holds what was sent of each frame); ``feedback``
    (optional) counts arrivals for the loss reports; ``recorder.playout`` gets each frame's
    decoded audio. ``lookahead_frames`` defaults to the system's own.
    """

    def __init__(self, env: simpy.Environment, system: System, monitor: Monitor, n_frames: int,
                 playout_delay_s: float, lookahead_frames: int | None = None, timer: Timer | None = None,
                 feedback: Feedback | None = None, recorder=None, playout=None):
        self.env = env
        self.system = system
        self.timer = timer if timer is not None else Timer("profile", None)
        self.monitor = monitor
        self.feedback = feedback
        self.recorder = recorder if recorder is not None else NullRecorder()
        self.n_frames = n_frames
        self.frame_s = system.frame_samples / system.sample_rate
        self.playout_delay_s = playout_delay_s
        self.lookahead_frames = system.lookahead_frames if lookahead_frames is None else lookahead_frames
        self.playout = playout if playout is not None else FixedPlayout(playout_delay_s)
        self._delay_s = self.playout.next_delay(0.0)  # D of the next frame to release
        self.device = Fifo()
        self.start_s = 0.0  # when the call starts (frame n is captured at start_s + n T)
        self._next = 0  # next frame to release
        self._limit = -1  # frames beyond this are outside the current window

    def release_s(self, n: int) -> float:
        """When frame n (the next to release, or any under a fixed deadline) is released."""
        return self.start_s + (n + self.lookahead_frames) * self.frame_s + self._delay_s

    def put(self, pkt: Packet) -> None:
        t = self.env.now
        if self.feedback is not None:
            self.feedback.arrived(t, pkt)
        self.release_until(t)
        if self.playout.adaptive and pkt.contents:
            first = min(c[0] for c in pkt.contents)
            self.playout.observe(t, t - self.start_s - (first + self.lookahead_frames) * self.frame_s)
        self.monitor.copies_delivered(pkt, self._in_time)

    def _in_time(self, st) -> bool:
        return not st.released

    def get(self, m: int) -> Received | None:
        """The `Window` the system sees while frame ``_next`` is released."""
        if m > self._limit:
            return None
        return self.monitor.received(m)

    def release_until(self, t: float, inclusive: bool = False) -> None:
        while self._next < self.n_frames:
            n = self._next
            rel = self.release_s(n)
            if rel > t or (rel == t and not inclusive):
                break
            self._limit = n + self.lookahead_frames
            dec = self.system.receive(n, self, self.timer)
            if self.playout.adaptive:  # the buffer's delay of this frame, a frames.csv column
                dec = Decoded(dec.audio, dec.concealed, {**dec.info, "playout_delay_s": self._delay_s})
                self._delay_s = self.playout.next_delay(rel)
            rx = self.timer.take()
            start, end = self.device.serve(rel, sum(rx.values()))
            self.monitor.released(n, rel, dec, rx, start, end)
            self.recorder.playout(self.monitor.flow, n, dec.audio)
            self._next += 1

    def finish(self) -> None:
        self.release_until(float("inf"), inclusive=True)
