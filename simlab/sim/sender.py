"""The sending side of a call: source frames -> encoder and controller on the TX device ->
packetizer -> link."""
from __future__ import annotations

from typing import Any, Callable

import simpy

from simlab.actors.base import System, Timer
from simlab.packets import layout_of
from simlab.sim.clock import Fifo, call_at
from simlab.sim.feedback import Feedback
from simlab.sim.monitor import Monitor
from simlab.sim.packetizer import Packetizer


class Sender:
    """Wakes once per packet group, when the group's last frame has been captured, and runs
    each frame through the system's TX stages at the frame's own capture time on the TX device
    (a FIFO): what the controller sees is p-hat as it was when that frame was captured.

    ``audio(n)`` gives frame n's samples (None: a system without audio); ``out`` is the element
    packets go to (``out.put(packet)``: a link, an ns.py element). ``feedback`` (optional: p-hat
    stays ``initial_p`` without it) is what the sender knows of the loss; ``monitor`` (one is made
    when absent) keeps each frame's account: hand the same one to the `Receiver`.
    """

    def __init__(self, env: simpy.Environment, system: System, packetizer: Packetizer, n_frames: int,
                 audio: Callable[[int], object] | None = None, timer: Timer | None = None,
                 monitor: Monitor | None = None, feedback: Feedback | None = None, initial_p: float = 0.0):
        self.env = env
        self.system = system
        self.timer = timer if timer is not None else Timer("profile", None)
        self.packetizer = packetizer
        self.frame_s = system.frame_samples / system.sample_rate
        self.monitor = monitor if monitor is not None else Monitor(
            packetizer.flow, self.frame_s, getattr(system, "algorithmic_delay_samples", 0) / system.sample_rate)
        self.feedback = feedback
        self.initial_p = initial_p
        self.audio = audio if audio is not None else (lambda n: None)
        self.n_frames = n_frames
        self.device = Fifo()
        self.out: Any = None
        self.tap: Callable | None = None  # tap(packet, encoded frames) after each send (pcap)
        self.start_s = 0.0  # when the call starts: frame n is captured over start_s + [n T, (n+1) T)
        # each packet handed over up to send_jitter_s late (uniform, drawn from jitter_rng), in order
        self.send_jitter_s = 0.0
        self.jitter_rng = None
        self._last_send_s = 0.0
        self._encoded: dict = {}  # for the tap only
        self._layouts: dict = {}
        self._side: dict = {}

    def start(self) -> None:
        if self.n_frames:
            self._wake_for(0)

    def _wake_for(self, g: int) -> None:
        G = self.packetizer.group_frames
        last = min((g + 1) * G, self.n_frames) - 1
        call_at(self.env, self.start_s + (last + 1) * self.frame_s, self._group, g)

    def _group(self, g: int) -> None:
        G = self.packetizer.group_frames
        frames = list(range(g * G, min((g + 1) * G, self.n_frames)))
        end = self.env.now
        for n in frames:
            ready = self.start_s + (n + 1) * self.frame_s
            p_hat = self.feedback.p_hat(ready) if self.feedback is not None else self.initial_p
            enc = self.system.transmit(n, self.audio(n), p_hat, self.timer)
            tx = self.timer.take()
            _, end = self.device.serve(ready, sum(tx.values()))
            layout = layout_of(enc.copies, enc.unit_bits)
            self._layouts[n] = layout
            self._side[n] = enc.side_bits
            if self.tap is not None:
                self._encoded[n] = enc
            self.monitor.encoded(n, enc, layout, tx, p_hat)
        pkts = self.packetizer.packets(frames, self._layouts, self._side)
        last_group = frames[-1] == self.n_frames - 1
        if last_group:
            pkts += self.packetizer.flush(self._side)
        for pkt in pkts:
            self.monitor.packet_made(pkt)
        # Frames of the group before are still needed for copies carried into this one.
        for n in range(frames[0] - 2 * G, frames[0] - G):
            self._layouts.pop(n, None)
            self._side.pop(n, None)
            self._encoded.pop(n, None)
        known = dict(self._encoded) if self.tap is not None else None
        if self.send_jitter_s > 0:
            for pkt in pkts:
                t = max(end + self.send_jitter_s * self.jitter_rng.random(), self._last_send_s)
                self._last_send_s = t
                call_at(self.env, t, self._send, [pkt], known)
        elif end <= self.env.now:
            self._send(pkts, known)
        else:
            call_at(self.env, end, self._send, pkts, known)
        if not last_group:
            self._wake_for(g + 1)

    def _send(self, pkts, known) -> None:
        for pkt in pkts:
            self.out.put(pkt)
            if self.tap is not None:
                self.tap(pkt, known)
