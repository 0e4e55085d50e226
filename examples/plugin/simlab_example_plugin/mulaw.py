"""The ``mulaw`` system: ITU-T G.711 µ-law at 64 kbit/s, one 20 ms frame (160 bytes) per unit.

Registered by the entry point ``mulaw = simlab_example_plugin.mulaw:ENTRY`` in the group
``simlab.systems``. A scenario selects it with ``system: {kind: mulaw}`` (``plc: repeat`` or
``silence``).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from simlab.actors.base import Decoded, Encoded, Received, Timer, Window
from simlab.registry import SystemEntry
from simlab.spec import Strict

from simlab_example_plugin import g711

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms
#: Gain of a repeated frame per consecutive lost frame: the k-th lost frame in a row repeats the
#: last good frame at 0.5**k (-6 dB a frame), so a long outage fades out instead of buzzing.
REPEAT_GAIN = 0.5


class MulawSpec(Strict):
    """G.711 µ-law, 64 kbit/s, 20 ms frames.

    ``plc``: what a lost frame is replaced by: ``repeat`` (the last good frame, attenuated by
    6 dB more for each frame lost in a row) or ``silence``."""

    kind: Literal["mulaw"]
    plc: Literal["repeat", "silence"] = "repeat"


class MulawSystem:
    """G.711 µ-law as a simlab system (the protocol of `simlab.actors.base.System`).

    Each 20 ms frame is one unit of 160 bytes (1280 bits, sent once, no side information). The
    receiver decodes a frame that arrived; a lost frame is concealed by ``plc``: ``repeat``
    plays the last frame that arrived again at 0.5**k for the k-th consecutive lost frame
    (silence before the first good frame), ``silence`` plays zeros. Concealment runs as part of
    the decoder stage, as a real G.711 receiver's (Appendix I) PLC does.
    """

    name = "mulaw"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES
    lookahead_frames = 0
    sends_second_copies = False
    algorithmic_delay_samples = 0  # sample by sample: no look-ahead
    stages = ("encoder", "decoder")

    def __init__(self, plc: str = "repeat"):
        if plc not in ("repeat", "silence"):
            raise ValueError(f"mulaw plc {plc!r} is not 'repeat' or 'silence'")
        self.plc = plc
        self._unit_bits = np.array([8 * FRAME_SAMPLES], dtype=np.int64)
        self._copies = np.array([1], dtype=np.int8)
        self._last = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        self._lost_run = 0

    @staticmethod
    def _encode(audio: np.ndarray) -> bytes:
        return g711.encode(g711.float_to_pcm16(audio)).tobytes()

    @staticmethod
    def _decode(payload: bytes) -> np.ndarray:
        return g711.pcm16_to_float(g711.decode(np.frombuffer(payload, dtype=np.uint8)))

    def _conceal(self) -> np.ndarray:
        self._lost_run += 1
        if self.plc == "silence":
            return np.zeros(FRAME_SAMPLES, dtype=np.float32)
        return (self._last * np.float32(REPEAT_GAIN ** self._lost_run)).astype(np.float32)

    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: Timer) -> Encoded:
        if audio is None or np.shape(audio) != (FRAME_SAMPLES,):
            raise ValueError(f"mulaw transmit: audio must have shape ({FRAME_SAMPLES},), "
                             f"got {None if audio is None else np.shape(audio)}")
        payload = timer.run("encoder", self._encode, audio)
        return Encoded(frame, unit_bits=self._unit_bits, copies=self._copies, side_bits=0, payload=payload)

    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        r = window.get(frame)
        if _arrived(r):
            audio = timer.run("decoder", self._decode, r.payload)
            self._last, self._lost_run = audio, 0
            return Decoded(audio, concealed=0, info={"recovery": "none"})
        audio = timer.run("decoder", self._conceal)
        return Decoded(audio, concealed=1, info={"recovery": self.plc})

    def describe(self) -> dict:
        return {"system": self.name, "codec": "ITU-T G.711 mu-law (numpy, bit-exact to audioop)",
                "bitrate_bps": 8 * SAMPLE_RATE, "sample_rate": SAMPLE_RATE, "frame_samples": FRAME_SAMPLES,
                "plc": self.plc, "plugin": "simlab-example-plugin"}


def _arrived(r: Received | None) -> bool:
    return r is not None and bool(np.asarray(r.arrived)[0])


def build(spec: MulawSpec, ctx) -> MulawSystem:
    """The factory: ``ctx`` (rng, device, seed, threads) is not needed by a deterministic codec."""
    return MulawSystem(spec.plc)


ENTRY = SystemEntry("mulaw", MulawSpec, build)
