"""AAC-LC (FFmpeg's native encoder through PyAV) as a baseline speech system.

One frame is one AAC frame of 1024 samples. The encoder holds one frame back (its first
call emits nothing) and its first packet decodes to 1024 samples of priming silence, so the
payload of frame n is whatever the encoder emitted at that call (frame 0's is empty: 0 bits,
still a unit), and the decoded stream lags the input by ``algorithmic_delay_samples``,
measured by cross-correlation on the shipped clip.

A lost packet damages two decoded frames (each AAC block overlaps the next), so the lost
frame is filled by pitch-period repetition and the first frame decoded after it is
crossfaded from that repetition into the decoded audio: interpolation between the previous
and the next frame that needs no look-ahead (``lookahead_frames = 0``), see
`simlab.actors.waveform_conceal`.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from simlab.actors import waveform_conceal
from simlab.actors.base import Decoded, Encoded, FrameCodec, Received, Timer, Window
from simlab.errors import UserError

AAC_FRAME_SAMPLES = 1024
AAC_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
#: Gain a concealment continues at, at the end of the k-th consecutive lost frame: a long
#: loss fades to silence within two frames (~85 ms at 24 kHz) instead of buzzing.
FADE_PER_FRAME = 0.5
#: Seconds of the shipped clip the delay and bitrate probe encodes.
PROBE_S = 4.0


class AacCodec:
    """A PyAV AAC encoder and decoder pair working one 1024-sample frame at a time."""

    def __init__(self, bitrate_bps: int, sample_rate: int):
        import av

        self._av = av
        self.sample_rate = sample_rate
        self._pts = 0
        self.enc = av.CodecContext.create("aac", "w")
        self.enc.sample_rate = sample_rate
        self.enc.layout = "mono"
        self.enc.format = "fltp"
        self.enc.bit_rate = bitrate_bps
        self.enc.open()
        self.dec = av.CodecContext.create("aac", "r")
        self.dec.extradata = self.enc.extradata
        self.dec.open()

    def encode(self, audio: np.ndarray) -> bytes:
        """The packet(s) the encoder emits after taking one frame (b"" while priming)."""
        fr = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(audio, np.float32)[None, :],
                                              format="fltp", layout="mono")
        fr.sample_rate = self.sample_rate
        fr.pts = self._pts
        self._pts += AAC_FRAME_SAMPLES
        packets = self.enc.encode(fr)
        if len(packets) > 1:
            raise RuntimeError(f"AAC encoder emitted {len(packets)} packets for one frame")
        return bytes(packets[0]) if packets else b""

    def decode(self, payload: bytes) -> np.ndarray:
        """1024 samples from one packet; an empty payload (priming) decodes to silence."""
        if len(payload) == 0:
            return np.zeros(AAC_FRAME_SAMPLES, np.float32)
        frames = self.dec.decode(self._av.Packet(payload))
        out = np.concatenate([f.to_ndarray()[0] for f in frames]) if frames else np.zeros(0, np.float32)
        if out.shape[0] != AAC_FRAME_SAMPLES:
            raise RuntimeError(f"AAC decoder gave {out.shape[0]} samples, expected {AAC_FRAME_SAMPLES}")
        return out.astype(np.float32, copy=False)


@lru_cache(maxsize=32)
def probe(bitrate_bps: int, sample_rate: int) -> tuple[int, float]:
    """(delay in samples, payload bitrate in bit/s) of the encoder at these settings,
    measured on the first ``PROBE_S`` of the shipped clip with the framing `AacSystem`
    uses. The delay is the lag maximising the cross-correlation of decoded and input."""
    from scipy.signal import correlate

    from simlab.audio import SHIPPED_CLIP, read_audio

    x = read_audio(SHIPPED_CLIP, sample_rate)[: int(PROBE_S * sample_rate)]
    n_frames = len(x) // AAC_FRAME_SAMPLES
    x = x[: n_frames * AAC_FRAME_SAMPLES]
    codec = AacCodec(bitrate_bps, sample_rate)
    payloads = [codec.encode(x[i * AAC_FRAME_SAMPLES:(i + 1) * AAC_FRAME_SAMPLES]) for i in range(n_frames)]
    y = np.concatenate([codec.decode(p) for p in payloads])
    max_lag = 8 * AAC_FRAME_SAMPLES
    c = correlate(y, x, mode="full", method="fft")[len(x) - 1: len(x) + max_lag]
    delay = int(np.argmax(c))
    sent = [len(p) for p in payloads if p]
    bitrate = 8.0 * float(np.mean(sent)) * sample_rate / AAC_FRAME_SAMPLES
    return delay, bitrate


class AacSystem(FrameCodec):
    """AAC-LC frames; lost frames concealed by repetition and crossfade interpolation."""

    name = "aac"
    frame_samples = AAC_FRAME_SAMPLES

    def __init__(self, bitrate_bps: int, sample_rate: int = 24000):
        if sample_rate not in AAC_RATES:
            raise UserError(f"aac sample_rate {sample_rate!r} is not one of {AAC_RATES}")
        max_bps = 6144 * sample_rate // AAC_FRAME_SAMPLES  # AAC's per-channel frame size bound
        if not (isinstance(bitrate_bps, (int, np.integer)) and 1000 <= bitrate_bps <= max_bps):
            raise UserError(f"aac bitrate_bps {bitrate_bps!r} is outside 1000..{max_bps} at {sample_rate} Hz")
        try:
            import av  # noqa: F401
        except ModuleNotFoundError:
            raise UserError("Python package av (PyAV) is not installed: pip install av") from None
        self.bitrate_bps = int(bitrate_bps)
        self.sample_rate = int(sample_rate)
        self._codec = AacCodec(self.bitrate_bps, self.sample_rate)
        delay, self.measured_bitrate_bps = probe(self.bitrate_bps, self.sample_rate)
        self.algorithmic_delay_samples: int = delay
        self._history = np.zeros(0, np.float32)  # what was played, the last 2 frames
        self._gain = 1.0  # gain a concealment continuation would start at
        self._after_loss = False  # the next decoded frame lost its overlap partner

    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: Timer) -> Encoded:
        """Encode one frame; the payload is what the encoder emits now (empty while priming)."""
        if audio is None or np.shape(audio) != (self.frame_samples,):
            raise ValueError(f"aac transmit: audio must have shape ({self.frame_samples},), "
                             f"got {None if audio is None else np.shape(audio)}")
        payload = timer.run("encoder", self._codec.encode, audio)
        return Encoded(frame, unit_bits=np.array([8 * len(payload)]), copies=np.array([1], np.int8),
                       side_bits=0, payload=payload)

    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        """Decode an arrived frame; conceal a lost one by repeating the last pitch period;
        crossfade the first frame decoded after a loss from that continuation."""
        r = window.get(frame)
        # Concealment is part of the decoder's work, so it runs inside the decoder's time.
        if _arrived(r):
            audio, recovery = timer.run("decoder", self._decode, r.payload)
            return self._play(audio, 0, recovery)
        audio = timer.run("decoder", self._conceal)
        return self._play(audio, 1, "repeat")

    def _decode(self, payload: bytes) -> tuple[np.ndarray, str]:
        audio = self._codec.decode(payload)
        recovery = "none"
        if self._after_loss:
            audio = waveform_conceal.fade_in(self._history, audio, self.frame_samples, self.sample_rate, self._gain)
            recovery = "resume"
        self._gain, self._after_loss = 1.0, False
        return audio, recovery

    def _conceal(self) -> np.ndarray:
        gain_end = max(0.0, self._gain - FADE_PER_FRAME)
        audio = waveform_conceal.fill(self._history, self.frame_samples, self.sample_rate, self._gain, gain_end)
        self._gain, self._after_loss = gain_end, True
        return audio

    def _play(self, audio: np.ndarray, concealed: int, recovery: str) -> Decoded:
        self._history = np.concatenate([self._history, audio])[-2 * self.frame_samples:]
        return Decoded(audio.astype(np.float32, copy=False), concealed=concealed, info={"recovery": recovery})

    def describe(self) -> dict:
        """Settings, the bitrate the encoder really produces, and library versions."""
        import av

        ver = ".".join(map(str, av.library_versions.get("libavcodec", ())))
        return {"system": self.name, "library": f"FFmpeg libavcodec {ver} native aac (AAC-LC), PyAV {av.__version__}",
                "bitrate_bps_requested": self.bitrate_bps,
                "bitrate_bps_measured": round(self.measured_bitrate_bps),
                "bitrate_measured_on": f"first {PROBE_S:g} s of the shipped clip",
                "sample_rate": self.sample_rate, "frame_samples": self.frame_samples,
                "lookahead_frames": self.lookahead_frames,
                "algorithmic_delay_samples": self.algorithmic_delay_samples,
                "concealment": "pitch-period repetition fading 0.5 per frame; next decoded frame crossfaded in"}


def _arrived(r: Received | None) -> bool:
    """A one-unit frame is usable when its unit arrived."""
    return r is not None and bool(np.asarray(r.arrived)[0])
