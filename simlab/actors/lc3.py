"""LC3, the Bluetooth LE Audio codec (Google's liblc3 through the `lc3py` wheel, module `lc3`).

One simlab frame is one LC3 frame (7.5 or 10 ms) of a fixed byte count: liblc3 turns the
bitrate into whole bytes per frame (rounding down, ``lc3_frame_bytes``), 20 to 400. Input and
output are 16-bit PCM, as LC3 runs in devices and in liblc3's own tools. A lost frame is
LC3's own packet-loss concealment: liblc3's decode with no data (``lc3_decode(dec, NULL, ...)``),
which lc3py's ``Decoder.decode`` cannot ask for, so it is called on lc3py's decoder directly.
"""
from __future__ import annotations

import ctypes

import numpy as np

from simlab.actors.base import Decoded, Encoded, FrameCodec, Received, Timer, Window
from simlab.actors.pcm16 import from_int16, to_int16
from simlab.errors import UserError

FRAME_MS = (7.5, 10)
RATES = (8000, 16000, 24000, 32000, 48000)
MIN_FRAME_BYTES, MAX_FRAME_BYTES = 20, 400
INSTALL = "lc3 needs Google's liblc3 binding, the Python package lc3py (module lc3): pip install lc3py"
_S16 = 0  # enum lc3_pcm_format: LC3_PCM_FORMAT_S16


def frame_bytes(bitrate_bps: int, frame_ms: float) -> int:
    """Bytes per frame at ``bitrate_bps``, as liblc3's ``lc3_frame_bytes`` rounds (down)."""
    return int(bitrate_bps) * int(round(frame_ms * 1000)) // 8_000_000


def bitrate_range(frame_ms: float) -> tuple[int, int]:
    """The bitrates (bit/s) from the lowest that fills 20 bytes per frame (rounding down to whole
    bytes as liblc3 does) to the lowest that fills 400: 16000..320000 at 10 ms, 21334..426667
    at 7.5 ms. Above, liblc3 would code 400 bytes, not the rate asked for."""
    us = int(round(frame_ms * 1000))
    return -(-MIN_FRAME_BYTES * 8_000_000 // us), -(-MAX_FRAME_BYTES * 8_000_000 // us)


def load():
    """The ``lc3`` module, or a one-line `UserError` saying what to install."""
    try:
        import lc3
    except ImportError:
        raise UserError(INSTALL) from None
    return lc3


class Lc3System(FrameCodec):
    """One LC3 frame per simlab frame; lost frames concealed by liblc3's PLC."""

    name = "lc3"

    def __init__(self, bitrate_bps: int = 32000, frame_ms: float = 10, sample_rate: int = 16000):
        if frame_ms not in FRAME_MS:
            raise UserError(f"lc3 frame_ms {frame_ms!r} is not one of 7.5, 10")
        if sample_rate not in RATES:
            raise UserError(f"lc3 sample_rate {sample_rate!r} is not one of {', '.join(map(str, RATES))}")
        lo, hi = bitrate_range(frame_ms)
        if not (isinstance(bitrate_bps, (int, np.integer)) and lo <= bitrate_bps <= hi):
            raise UserError(f"lc3 bitrate_bps {bitrate_bps!r} is outside {lo}..{hi} for frame_ms {frame_ms:g} "
                            f"({MIN_FRAME_BYTES}..{MAX_FRAME_BYTES} bytes per frame)")
        lc3 = load()
        us = int(round(frame_ms * 1000))
        self.bitrate_bps, self.frame_ms, self.sample_rate = int(bitrate_bps), frame_ms, int(sample_rate)
        self._enc = lc3.Encoder(us, self.sample_rate)
        self._dec = lc3.Decoder(us, self.sample_rate)
        self.frame_samples: int = self._enc.get_frame_samples()
        self.frame_bytes: int = self._enc.get_frame_bytes(self.bitrate_bps)
        if self.frame_bytes != frame_bytes(self.bitrate_bps, frame_ms):
            raise RuntimeError(f"liblc3 codes {self.bitrate_bps} bit/s at {frame_ms} ms in {self.frame_bytes} "
                               f"bytes, not {frame_bytes(self.bitrate_bps, frame_ms)}")
        #: liblc3's algorithmic delay (lc3_delay_samples): 2.5 ms at 10 ms frames, 4 ms at 7.5 ms.
        self.algorithmic_delay_samples: int = self._enc.get_delay_samples()
        self._plc = _plc_call(self._dec, self.frame_samples)
        self._lib_version = _version()

    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: Timer) -> Encoded:
        """Encode one frame of 16-bit PCM into ``frame_bytes`` bytes."""
        if audio is None or np.shape(audio) != (self.frame_samples,):
            raise ValueError(f"lc3 transmit: audio must have shape ({self.frame_samples},), "
                             f"got {None if audio is None else np.shape(audio)}")
        pcm = to_int16(audio).tobytes()
        payload = timer.run("encoder", self._enc.encode, pcm, self.frame_bytes, 16)
        return Encoded(frame, unit_bits=np.array([8 * len(payload)]), copies=np.array([1], np.int8),
                       side_bits=0, payload=payload)

    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        """Decode an arrived frame; run LC3's PLC for a lost one."""
        r = window.get(frame)
        if _arrived(r):
            pcm = timer.run("decoder", self._dec.decode, r.payload, 16)
            return Decoded(from_int16(np.frombuffer(pcm, np.int16)), concealed=0, info={"recovery": "none"})
        return Decoded(timer.run("decoder", self._plc), concealed=1, info={"recovery": "plc"})

    def describe(self) -> dict:
        """Settings, the bitrate really coded, and library versions."""
        return {"system": self.name, "library": self._lib_version, "bitrate_bps_requested": self.bitrate_bps,
                "bitrate_bps_coded": 8 * self.frame_bytes * self.sample_rate / self.frame_samples,
                "frame_bytes": self.frame_bytes, "frame_ms": self.frame_ms, "sample_rate": self.sample_rate,
                "frame_samples": self.frame_samples, "lookahead_frames": self.lookahead_frames,
                "algorithmic_delay_samples": self.algorithmic_delay_samples,
                "concealment": "liblc3 PLC (decode with no data)"}


def _plc_call(dec, frame_samples: int):
    """A function running liblc3's PLC on lc3py's decoder: one frame of float audio."""
    handles = getattr(dec, "_Decoder__decoders", None)
    if not handles or len(handles) != 1:
        raise UserError("lc3: this lc3py version hides its decoder; LC3's PLC needs lc3py 1.1 "
                        "(pip install 'lc3py>=1.1,<2')")
    lib, handle = dec.lib, handles[0]
    pcm = (ctypes.c_int16 * frame_samples)()

    def plc() -> np.ndarray:
        if lib.lc3_decode(handle, None, 0, _S16, pcm, 1) < 0:
            raise RuntimeError("liblc3 refused to run its PLC")
        return from_int16(np.frombuffer(pcm, np.int16).copy())

    return plc


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"liblc3 through lc3py {version('lc3py')}"
    except PackageNotFoundError:
        return "liblc3 through lc3py (version unknown)"


def _arrived(r: Received | None) -> bool:
    """A one-unit frame is usable when its unit arrived."""
    return r is not None and bool(np.asarray(r.arrived)[0])
