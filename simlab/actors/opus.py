"""Opus (libopus) as a baseline speech system, with in-band FEC (LBRR) and PLC.

The sender behaves like a WebRTC sender: it tells the encoder the packet loss it hears
about through feedback (p_hat), which is what makes libopus spend bits on LBRR data. The
receiver decodes a frame that arrived; recovers a lost frame n from frame n+1's LBRR copy
when FEC is on and n+1 arrived (one frame of look-ahead, paid in latency); and otherwise
runs libopus's packet-loss concealment.
"""
from __future__ import annotations

import numpy as np

from simlab.actors import opus_lib
from simlab.actors.base import Decoded, Encoded, Received, Timer, Window
from simlab.errors import UserError

FRAME_MS = (20, 40, 60)
APPLICATIONS = ("voip", "audio", "restricted_lowdelay")
#: libopus's accepted bitrate range (opus_encoder.c clamps outside it; refuse instead).
MIN_BITRATE, MAX_BITRATE = 500, 512_000


class OpusSystem:
    """One Opus packet per frame, through the real libopus.

    ``algorithmic_delay_samples`` is the encoder's look-ahead as libopus reports it
    (OPUS_GET_LOOKAHEAD: 6.5 ms for voip/audio, 2.5 ms for restricted_lowdelay); the decoded
    stream lags the input by exactly that (tests check it by cross-correlation).
    """

    name = "opus"
    stages = ("encoder", "decoder")
    rtp_clock_rate = 48000  # RFC 7587 §4.1: Opus's RTP clock is 48 kHz whatever rate it codes at

    def __init__(self, bitrate_bps: int, frame_ms: int, fec: bool, application: str = "voip",
                 sample_rate: int = 24000):
        if frame_ms not in FRAME_MS:
            raise UserError(f"opus frame_ms {frame_ms!r} is not one of {FRAME_MS}")
        if application not in APPLICATIONS:
            raise UserError(f"opus application {application!r} is not one of {APPLICATIONS}")
        if sample_rate not in opus_lib.OPUS_RATES:
            raise UserError(f"opus sample_rate {sample_rate!r} is not one of {opus_lib.OPUS_RATES}")
        if not (isinstance(bitrate_bps, (int, np.integer)) and MIN_BITRATE <= bitrate_bps <= MAX_BITRATE):
            raise UserError(f"opus bitrate_bps {bitrate_bps!r} is outside {MIN_BITRATE}..{MAX_BITRATE}")
        self._op = opus_lib.load()
        c = self._op.constants
        self.bitrate_bps = int(bitrate_bps)
        self.frame_ms = int(frame_ms)
        self.fec = bool(fec)
        self.application = application
        self.sample_rate = int(sample_rate)
        self.frame_samples = self.sample_rate * self.frame_ms // 1000
        self.lookahead_frames = 1 if self.fec else 0
        self.sends_second_copies = False  # FEC rides inside the next Opus packet, not as a copy

        self._enc = self._op.encoder.create_state(self.sample_rate, 1, c.APPLICATION_TYPES_MAP[application])
        self._dec = self._op.decoder.create_state(self.sample_rate, 1)
        opus_lib.set_ctl(self._op, self._enc, c.SET_BITRATE_REQUEST, self.bitrate_bps)
        opus_lib.set_ctl(self._op, self._enc, c.SET_INBAND_FEC_REQUEST, int(self.fec))
        opus_lib.set_ctl(self._op, self._enc, c.SET_PACKET_LOSS_PERC_REQUEST, 0)
        self._loss_pct = 0
        self.algorithmic_delay_samples: int = opus_lib.get_ctl(self._op, self._enc, c.GET_LOOKAHEAD_REQUEST)

    def __del__(self):
        op = getattr(self, "_op", None)
        if op is not None:
            if getattr(self, "_enc", None) is not None:
                op.encoder.destroy(self._enc)
            if getattr(self, "_dec", None) is not None:
                op.decoder.destroy(self._dec)

    @property
    def expected_loss_pct(self) -> int:
        """The packet-loss percentage the encoder is currently set to (read back from libopus)."""
        return opus_lib.get_ctl(self._op, self._enc, self._op.constants.GET_PACKET_LOSS_PERC_REQUEST)

    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: Timer) -> Encoded:
        """Encode one frame; the encoder's expected loss follows ``p_hat`` (feedback)."""
        if audio is None or np.shape(audio) != (self.frame_samples,):
            raise ValueError(f"opus transmit: audio must have shape ({self.frame_samples},), "
                             f"got {None if audio is None else np.shape(audio)}")
        if not 0.0 <= p_hat <= 1.0:
            raise ValueError(f"opus transmit: p_hat {p_hat!r} is outside [0, 1]")
        pct = int(round(100.0 * p_hat))
        if pct != self._loss_pct:
            opus_lib.set_ctl(self._op, self._enc, self._op.constants.SET_PACKET_LOSS_PERC_REQUEST, pct)
            self._loss_pct = pct
        packet = timer.run("encoder", opus_lib.encode, self._op, self._enc, audio)
        return Encoded(frame, unit_bits=np.array([8 * len(packet)]), copies=np.array([1], np.int8),
                       side_bits=0, payload=packet,
                       info={"expected_loss_pct": pct,
                             "fec_in_packet": int(opus_lib.packet_has_lbrr(self._op, packet))})

    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        """Decode, recover by FEC from the next packet, or conceal by PLC."""
        r = window.get(frame)
        if _arrived(r):
            audio = timer.run("decoder", opus_lib.decode, self._op, self._dec, r.payload, self.frame_samples)
            return Decoded(audio, concealed=0, info={"recovery": "none"})
        nxt = window.get(frame + 1) if self.fec else None
        # Only a packet that really carries LBRR data recovers the frame; decoding FEC from
        # one without it would silently be PLC, so call that what it is.
        if _arrived(nxt) and opus_lib.packet_has_lbrr(self._op, nxt.payload):
            audio = timer.run("decoder", opus_lib.decode, self._op, self._dec, nxt.payload,
                              self.frame_samples, True)
            return Decoded(audio, concealed=1, info={"recovery": "fec"})
        audio = timer.run("decoder", opus_lib.decode, self._op, self._dec, None, self.frame_samples)
        return Decoded(audio, concealed=1, info={"recovery": "plc"})

    def describe(self) -> dict:
        """Settings and library version for the run manifest."""
        return {"system": self.name, "library": opus_lib.version_string(self._op),
                "bitrate_bps": self.bitrate_bps, "frame_ms": self.frame_ms, "fec": self.fec,
                "application": self.application, "sample_rate": self.sample_rate,
                "frame_samples": self.frame_samples, "lookahead_frames": self.lookahead_frames,
                "algorithmic_delay_samples": self.algorithmic_delay_samples,
                "vbr": True, "expected_loss_from": "p_hat (feedback)"}


def _arrived(r: Received | None) -> bool:
    """A one-unit frame is usable when its unit arrived."""
    return r is not None and bool(np.asarray(r.arrived)[0])
