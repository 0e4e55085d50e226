"""A PyAV (FFmpeg) encoder and decoder pair working one frame at a time, for the ``ffmpeg`` system.

Samples cross as 16-bit PCM (`simlab.actors.pcm16`): a 16-bit input file reaches the encoder
as its own integers, and the decoder's integers k come back as k / 32768, which received.wav
holds as k again, so the testbed compares sample by sample with the ``ffmpeg`` command line run
on the same file.

FFmpeg's G.726 encoder fixes its frame at 1640..4096 samples (about 1 kB of output) and PyAV
buffers input up to it, which would hold a 20 ms frame back for a quarter of a second. G.726 is
sample-by-sample ADPCM, so its bytes do not depend on how the input is cut: `_set_frame_size`
sets the open context's ``frame_size`` to simlab's frame through libavutil's ``av_opt_set_int``
(the context pointer read from PyAV's object and checked to be an ``AVCodecContext`` first; a
PyAV whose layout differs is refused with a message, never written to). The tests check the
bytes against a whole-clip encode.
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

from simlab.actors.ffmpeg_codecs import Setting
from simlab.errors import UserError


def _av():
    try:
        import av
    except ModuleNotFoundError:
        raise UserError("Python package av (PyAV) is not installed: pip install av "
                        "(or pip install 'simlab[codecs]')") from None
    return av


def library() -> str:
    av = _av()
    ver = ".".join(map(str, av.library_versions.get("libavcodec", ())))
    return f"FFmpeg libavcodec {ver}, PyAV {av.__version__}"


def missing(setting: Setting) -> str | None:
    """What the installed FFmpeg lacks to run ``setting`` (its encoder or decoder), as the one line
    to show, or None."""
    av = _av()
    need = [(setting.info.encoder, "w", "encoder"), (setting.info.decoder, "r", "decoder")]
    for name, mode, what in need:
        try:
            codec = av.Codec(name, mode)
        except Exception:
            codec = None
        if codec is None or codec.name != name:
            return (f"codec: {name}: this FFmpeg ({library()}) has no {name} {what}: install a PyAV built "
                    f"with it (the PyPI wheels are: pip install --force-reinstall 'av>=14')")
    return None


def _set_frame_size(ctx, n: int) -> None:
    """``ctx.frame_size = n`` on an open encoder (PyAV only reads it): see the module's docstring."""
    libdir = os.path.join(os.path.dirname(os.path.dirname(_av().__file__)), "av.libs")
    found = glob.glob(os.path.join(libdir, "libavutil-*.so*")) or glob.glob(os.path.join(libdir, "libavutil*.dylib"))
    if not found:
        raise UserError(f"codec: {ctx.name}: cannot find PyAV's libavutil to set its frame size (in {libdir})")
    avutil = ctypes.CDLL(found[0])
    avutil.av_opt_set_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]
    avutil.av_opt_set_int.restype = ctypes.c_int
    # A Cython cdef class: the object header (refcount, type), its vtable, then `ptr`, the context.
    ptr = ctypes.c_void_p.from_address(id(ctx) + 3 * ctypes.sizeof(ctypes.c_void_p)).value
    av_class = ctypes.c_void_p.from_address(ptr).value if ptr else None
    name = ctypes.c_char_p.from_address(av_class).value if av_class else None
    if name != b"AVCodecContext":
        raise UserError(f"codec: {ctx.name}: this PyAV's codec context is not laid out as simlab expects: "
                        f"{ctx.name} cannot work in {n}-sample frames")
    if avutil.av_opt_set_int(ptr, b"frame_size", n, 0) < 0 or ctx.frame_size != n:
        raise UserError(f"codec: {ctx.name}: FFmpeg refused a frame of {n} samples")


class AvCodec:
    """The encoder and decoder of one setting; ``encode`` takes one frame of int16 samples and
    returns the one packet it makes, ``decode`` one packet's int16 samples."""

    def __init__(self, setting: Setting):
        av = _av()
        self._av = av
        self.setting = setting
        info, n = setting.info, setting.frame_samples
        self.frame_samples = n
        enc = av.CodecContext.create(info.encoder, "w")
        enc.sample_rate = info.sample_rate
        enc.layout = "mono"
        enc.format = "s16"
        enc.bit_rate = setting.bitrate_bps
        if info.encoder == "g722":
            enc.options = {"frame_size": str(n)}  # G.722 takes the context's frame size at open
        enc.open()
        if info.encoder in ("g726", "g726le"):
            _set_frame_size(enc, n)
        if enc.frame_size not in (0, n):
            raise UserError(f"codec: {info.encoder} works in frames of {enc.frame_size} samples, not {n}")
        dec = av.CodecContext.create(info.decoder, "r")
        dec.sample_rate = info.sample_rate
        dec.layout = "mono"
        if info.decoder in ("g726", "g726le"):  # its bitstream does not say the code size
            dec.options = {"bits_per_coded_sample": str(setting.bitrate_bps // info.sample_rate)}
        dec.open()
        self.enc, self.dec = enc, dec
        self._pts = 0

    def encode(self, pcm: np.ndarray) -> bytes:
        fr = self._av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, np.int16)[None, :], format="s16",
                                              layout="mono")
        fr.sample_rate = self.setting.info.sample_rate
        fr.pts = self._pts
        self._pts += len(pcm)
        packets = self.enc.encode(fr)
        if len(packets) != 1:
            raise RuntimeError(f"{self.setting.info.encoder} made {len(packets)} packets of one frame")
        return bytes(packets[0])

    def decode(self, payload: bytes) -> np.ndarray:
        frames = self.dec.decode(self._av.Packet(payload))
        out = np.concatenate([f.to_ndarray()[0] for f in frames]) if frames else np.zeros(0, np.int16)
        if out.shape[0] != self.frame_samples:
            raise RuntimeError(f"{self.setting.info.decoder} decoded {out.shape[0]} samples, "
                               f"expected {self.frame_samples}")
        return out.astype(np.int16, copy=False)
