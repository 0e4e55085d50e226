"""Codec2 (libcodec2 through `pycodec2`) as a low-rate baseline: 700 to 3200 bit/s at 8 kHz.

One simlab frame is one Codec2 frame (20 ms at 3200 and 2400 bit/s, 40 ms below), one unit of
exactly the mode's bits per frame (1200 bit/s x 40 ms = 48 bits); the network rounds a
packet's payload up to whole bytes. Codec2 has no loss concealment of its own. A lost frame
is concealed either by decoding the last frame that arrived once more (``repeat``: its
parameters continue the sound through the decoder's own interpolation, which the next frame
then picks up) or by the waveform concealer AAC uses (``waveform``: pitch-period repetition of
what was played, crossfaded into the next decoded frame). Both fade by 0.5 per 40 ms so a
burst goes silent rather than buzzing. ``auto`` (the default) takes the one that scored better
for the mode on dev speech (`BEST`, docs/baselines.md).
"""
from __future__ import annotations

import numpy as np

from simlab.actors import waveform_conceal
from simlab.actors.base import Decoded, Encoded, FrameCodec, Received, Timer, Window
from simlab.actors.codec2_lib import DELAY_SAMPLES, MODES, SAMPLE_RATE, NoiseState, load, versions
from simlab.actors.pcm16 import from_int16, to_int16
from simlab.errors import UserError

CONCEALMENTS = ("auto", "repeat", "waveform")
#: What ``auto`` chooses: the concealment that scored better by ViSQOL on dev speech at 10 %
#: loss (docs/baselines.md). Repeating a frame suits the modes that code each frame's
#: parameters on their own; 2400, 1400 and 1200 predict pitch and energy from the previous
#: frame, which a repeated frame leads astray, and there the waveform concealer wins.
BEST = {"3200": "repeat", "2400": "waveform", "1600": "repeat", "1400": "waveform", "1300": "repeat",
        "1200": "waveform", "700C": "repeat"}
#: Gain lost per second of concealment (0.5 per 40 ms frame): silent 80 ms into a burst.
FADE_PER_S = 12.5


class Codec2System(FrameCodec):
    """One Codec2 frame per simlab frame, one unit of ``bits_per_frame`` bits."""

    name = "codec2"
    sample_rate = SAMPLE_RATE

    def __init__(self, mode: str = "1200", concealment: str = "auto"):
        if mode not in MODES:
            raise UserError(f"codec2 mode {mode!r} is not one of {', '.join(MODES)}")
        if concealment not in CONCEALMENTS:
            raise UserError(f"codec2 concealment {concealment!r} is not one of {', '.join(CONCEALMENTS)}")
        pycodec2 = load()
        self._library = versions(pycodec2)
        self.mode = mode
        self.concealment_setting = concealment
        self.concealment = BEST[mode] if concealment == "auto" else concealment
        self._enc = pycodec2.Codec2(MODES[mode])
        self._dec = pycodec2.Codec2(MODES[mode])
        self._noise = NoiseState()
        self.frame_samples: int = self._enc.samples_per_frame()
        self.bits_per_frame: int = self._enc.bits_per_frame()
        self.algorithmic_delay_samples: int = DELAY_SAMPLES[mode]
        self._fade = FADE_PER_S * self.frame_samples / self.sample_rate  # gain lost per concealed frame
        self._last = None  # the last payload that arrived (repeat)
        self._history = np.zeros(0, np.float32)  # what was played, the last 2 frames (waveform)
        self._gain = 1.0  # gain a concealment would start at

    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: Timer) -> Encoded:
        """Encode one frame (16-bit PCM at 8 kHz) into ``bits_per_frame`` bits."""
        if audio is None or np.shape(audio) != (self.frame_samples,):
            raise ValueError(f"codec2 transmit: audio must have shape ({self.frame_samples},), "
                             f"got {None if audio is None else np.shape(audio)}")
        payload = timer.run("encoder", self._enc.encode, to_int16(audio))
        return Encoded(frame, unit_bits=np.array([self.bits_per_frame]), copies=np.array([1], np.int8),
                       side_bits=0, payload=payload)

    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        """Decode an arrived frame; conceal a lost one (inside the decoder's timed stage)."""
        r = window.get(frame)
        if _arrived(r):
            audio, recovery = timer.run("decoder", self._decode, r.payload)
            return self._play(audio, 0, recovery)
        audio = timer.run("decoder", self._conceal)
        return self._play(audio, 1, self.concealment)

    def decode(self, payload: bytes) -> np.ndarray:
        """One frame of float audio from one payload, with this decoder's noise state."""
        return from_int16(self._noise.run(self._dec.decode, payload))

    def _decode(self, payload: bytes) -> tuple[np.ndarray, str]:
        audio = self.decode(payload)
        self._last = payload
        recovery = "none"
        if self._gain < 1.0:  # the first frame after a concealment: back to full level
            if self.concealment == "waveform":
                audio = waveform_conceal.fade_in(self._history, audio, self.frame_samples, self.sample_rate,
                                                 self._gain)
            else:
                ramp = waveform_conceal.raised_cosine(self.frame_samples)
                audio = audio * (self._gain + (1.0 - self._gain) * ramp)
            recovery = "resume"
        self._gain = 1.0
        return audio, recovery

    def _conceal(self) -> np.ndarray:
        start, end = self._gain, max(0.0, self._gain - self._fade)
        self._gain = end
        if self.concealment == "waveform":
            return waveform_conceal.fill(self._history, self.frame_samples, self.sample_rate, start, end)
        if self._last is None or start == 0.0:
            return np.zeros(self.frame_samples, np.float32)
        return self.decode(self._last) * np.linspace(start, end, self.frame_samples, dtype=np.float32)

    def _play(self, audio: np.ndarray, concealed: int, recovery: str) -> Decoded:
        audio = np.asarray(audio, np.float32)
        if self.concealment == "waveform":
            self._history = np.concatenate([self._history, audio])[-2 * self.frame_samples:]
        return Decoded(audio, concealed=concealed, info={"recovery": recovery})

    def describe(self) -> dict:
        """Settings and library versions for the run manifest."""
        return {"system": self.name, "library": self._library, "mode": self.mode,
                "bits_per_frame": self.bits_per_frame, "sample_rate": self.sample_rate,
                "frame_samples": self.frame_samples, "lookahead_frames": self.lookahead_frames,
                "algorithmic_delay_samples": self.algorithmic_delay_samples,
                "payload_bps_nominal": self.bits_per_frame * self.sample_rate // self.frame_samples,
                "concealment": self.concealment, "concealment_setting": self.concealment_setting,
                "noise_generator": "per decoder" if self._noise.per_decoder else "shared by the process"}


def _arrived(r: Received | None) -> bool:
    """A one-unit frame is usable when its unit arrived."""
    return r is not None and bool(np.asarray(r.arrived)[0])
