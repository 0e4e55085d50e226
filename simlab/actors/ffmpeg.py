"""The ``ffmpeg`` system: a speech codec FFmpeg encodes (G.711, G.722, G.726, AMR-NB, G.723.1),
through PyAV, one frame per unit.

Sender: each frame's samples (16-bit, `simlab.actors.pcm16`) go to the encoder, which
returns one packet at once (no priming); that packet is the frame's one unit. AMR-NB's unit is
its RFC 4867 octet-aligned payload: a CMR byte (15, no mode request), the TOC byte FFmpeg's
packet starts with, and the speech bits padded to a byte, all counted in the payload.

Receiver: a frame that arrived is decoded. A lost frame is concealed by the codec's own
concealment where it has one: AMR-NB's decoder gets a NO_DATA frame (RFC 4867's FT 15), which
its 3GPP TS 26.091 error concealment fills; G.723.1's decoder gets an erased frame (a forbidden
pitch lag, what FFmpeg takes as the standard's frame-erasure flag) and interpolates the
residual, muting after three. G.711, G.722 and G.726 have none in FFmpeg: the last pitch period
is repeated (`simlab.actors.waveform_conceal`), fading linearly to silence 60 ms into a loss, and
the first frame decoded after a loss is crossfaded in over 4 ms plus 4 ms per further lost frame,
up to 10 ms (ITU-T G.711 Appendix I's choices). The ADPCM decoders (G.722, G.726) did not see the
lost codewords: their state converges back to the encoder's over the following frames.

``algorithmic_delay_samples``: how far the decoded stream lags the input (AMR-NB 40 samples,
5 ms; G.723.1 60, 7.5 ms; G.722 22, 1.375 ms; G.711, G.726 none), tested by cross-correlation.
"""
from __future__ import annotations

import numpy as np

from simlab.actors import waveform_conceal
from simlab.actors.base import Decoded, Encoded, FrameCodec, Received, Timer, Window
from simlab.actors.ffmpeg_av import AvCodec, library, missing
from simlab.actors.ffmpeg_codecs import AMR_CMR, resolve
from simlab.actors.pcm16 import from_int16, to_int16
from simlab.errors import UserError

#: AMR-NB NO_DATA (RFC 4867 TOC: FT 15, Q 1): a lost frame, concealed by the decoder.
AMR_NO_DATA = bytes([15 << 3 | 0x04])
#: A G.723.1 6.3 kbit/s frame whose first pitch lag is the forbidden code 127 (bits 26-32, read
#: LSB first): FFmpeg's decoder treats it as an erased frame and runs the standard's concealment.
G723_ERASED = bytes([0, 0, 0, 0xFC, 0x01] + [0] * 19)
#: Waveform concealment (G.711 Appendix I): full level for 10 ms, then linearly down to silence
#: 60 ms into the loss (20 % per 10 ms).
FADE_HOLD_S, FADE_END_S = 0.010, 0.060
#: The crossfade into the first frame decoded after a loss: 4 ms, 4 ms more per extra lost frame.
RESUME_S, RESUME_STEP_S, RESUME_MAX_S = 0.004, 0.004, 0.010


class FfmpegSystem(FrameCodec):
    """One FFmpeg speech codec at one bitrate and frame length (`simlab.actors.ffmpeg_codecs`)."""

    name = "ffmpeg"

    def __init__(self, codec: str, bitrate_bps: int | None = None, frame_ms: int | None = None):
        try:
            self.setting = resolve(codec, bitrate_bps, frame_ms)
        except ValueError as exc:
            raise UserError(f"ffmpeg {exc}") from None
        problem = missing(self.setting)
        if problem:
            raise UserError(f"ffmpeg {problem}")
        s, info = self.setting, self.setting.info
        self.codec = info.encoder
        self.bitrate_bps = s.bitrate_bps
        self.frame_ms = s.frame_ms
        self.sample_rate = info.sample_rate
        self.frame_samples = s.frame_samples
        self.algorithmic_delay_samples: int = info.delay_samples
        self.rtp_payload_type: int = info.rtp_pt
        self.rtp_clock_rate: int = info.rtp_clock
        self._av = AvCodec(s)
        self._amr = info.encoder == "libopencore_amrnb"
        keep = max(2 * self.frame_samples, int(0.04 * self.sample_rate))  # a 20 ms pitch period + template
        self._keep = keep
        self._history = np.zeros(0, np.float32)
        self._lost = 0  # samples the current loss has lasted
        self._lost_run = 0  # frames lost in a row

    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: Timer) -> Encoded:
        if audio is None or np.shape(audio) != (self.frame_samples,):
            raise ValueError(f"ffmpeg transmit: audio must have shape ({self.frame_samples},), "
                             f"got {None if audio is None else np.shape(audio)}")
        packet = timer.run("encoder", self._encode, audio)
        return Encoded(frame, unit_bits=np.array([8 * len(packet)]), copies=np.array([1], np.int8),
                       side_bits=0, payload=packet)

    def _encode(self, audio: np.ndarray) -> bytes:
        packet = self._av.encode(to_int16(audio))
        return bytes([AMR_CMR]) + packet if self._amr else packet

    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        r = window.get(frame)
        if _arrived(r):
            audio, recovery = timer.run("decoder", self._decode, r.payload)
            return self._play(audio, 0, recovery)
        audio, recovery = timer.run("decoder", self._conceal)
        return self._play(audio, 1, recovery)

    def _decode(self, payload: bytes) -> tuple[np.ndarray, str]:
        audio = from_int16(self._av.decode(payload[1:] if self._amr else payload))
        recovery = "none"
        if self._lost_run and self.setting.info.plc == "waveform":
            n = int(round(min(RESUME_S + RESUME_STEP_S * (self._lost_run - 1), RESUME_MAX_S) * self.sample_rate))
            audio = waveform_conceal.fade_in(self._history, audio, n, self.sample_rate, self._gain(self._lost))
            recovery = "resume"
        self._lost, self._lost_run = 0, 0
        return audio, recovery

    def _conceal(self) -> tuple[np.ndarray, str]:
        start, self._lost = self._lost, self._lost + self.frame_samples
        self._lost_run += 1
        if self.setting.info.plc == "decoder":
            erased = AMR_NO_DATA if self._amr else G723_ERASED
            return from_int16(self._av.decode(erased)), "plc"
        audio = waveform_conceal.fill(self._history, self.frame_samples, self.sample_rate,
                                      self._gain(start), self._gain(self._lost))
        return audio, "repeat"

    def _gain(self, lost: int) -> float:
        """The concealment's level ``lost`` samples into a loss (exactly 0 from 60 ms on)."""
        hold, end = FADE_HOLD_S * self.sample_rate, FADE_END_S * self.sample_rate
        return float(np.clip((end - lost) / (end - hold), 0.0, 1.0))

    def _play(self, audio: np.ndarray, concealed: int, recovery: str) -> Decoded:
        self._history = np.concatenate([self._history, audio])[-self._keep:]
        return Decoded(audio.astype(np.float32, copy=False), concealed=concealed, info={"recovery": recovery})

    def rtp_payload(self, payloads: list[bytes]) -> bytes:
        """The RTP payload of a packet carrying these frames' payloads, in order. AMR-NB: one CMR,
        then each frame's TOC (F set on all but the last), then the speech (RFC 4867 §4.4), one CMR
        byte per extra frame shorter than simlab counts; other codecs: the frames end to end."""
        if not self._amr or len(payloads) <= 1:
            return b"".join(payloads)
        tocs = bytes(p[1] | (0x80 if i < len(payloads) - 1 else 0) for i, p in enumerate(payloads))
        return bytes([AMR_CMR]) + tocs + b"".join(p[2:] for p in payloads)

    def describe(self) -> dict:
        s, info = self.setting, self.setting.info
        conceal = {"decoder": f"the {info.standard} decoder's own", "waveform": (
            "pitch-period repetition fading to silence 60 ms into a loss; next decoded frame crossfaded "
            "in over 4-10 ms (G.711 Appendix I)")}[info.plc]
        return {"system": self.name, "codec": self.codec, "standard": info.standard, "library": library(),
                "bitrate_bps": self.bitrate_bps, "payload_bps": s.payload_bps, "frame_ms": self.frame_ms,
                "frame_bytes": s.frame_bytes, "sample_rate": self.sample_rate, "frame_samples": self.frame_samples,
                "lookahead_frames": self.lookahead_frames,
                "algorithmic_delay_samples": self.algorithmic_delay_samples, "concealment": conceal,
                "rtp": {"payload_type": self.rtp_payload_type, "clock_rate": self.rtp_clock_rate,
                        "encoding_name": s.rtp_name}}


def _arrived(r: Received | None) -> bool:
    return r is not None and bool(np.asarray(r.arrived)[0])
