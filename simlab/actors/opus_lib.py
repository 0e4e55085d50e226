"""Access to the system libopus through opuslib's ctypes bindings.

opuslib (3.0.1) is imported lazily so that a machine without libopus can still run every
other system; when the library is missing, the user gets one line naming the Debian package
instead of a ctypes traceback. This module also holds the few libopus calls opuslib's
high-level classes get wrong or lack (DESIGN.md §3): the FEC ctl, PLC through a NULL packet,
and whether a packet carries LBRR (in-band FEC) data.
"""
from __future__ import annotations

import ctypes
from types import SimpleNamespace

import numpy as np

from simlab.errors import UserError

#: Sample rates libopus encodes and decodes at.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Largest packet libopus ever produces (RFC 6716 §3.4 bounds a frame at 1275 bytes; a
#: 60 ms packet holds up to three).
MAX_PACKET_BYTES = 4000

_MISSING_LIB = ("libopus not found (opuslib cannot load it): install the Debian package "
                "libopus0 (apt-get install libopus0)")


def load() -> SimpleNamespace:
    """opuslib's low-level modules (``encoder``, ``decoder``, ``ctl``, ``info``, ``lib``,
    ``constants``), or a one-line `UserError` when opuslib or libopus is missing."""
    try:
        import opuslib
        import opuslib.api
        import opuslib.api.ctl
        import opuslib.api.decoder
        import opuslib.api.encoder
        import opuslib.api.info
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "opuslib":
            raise UserError("Python package opuslib is not installed: pip install opuslib==3.0.1") from None
        raise
    except Exception:  # opuslib raises a bare Exception (or ctypes an OSError) without libopus
        raise UserError(_MISSING_LIB) from None
    return SimpleNamespace(encoder=opuslib.api.encoder, decoder=opuslib.api.decoder,
                           ctl=opuslib.api.ctl, info=opuslib.api.info, lib=opuslib.api.libopus,
                           constants=opuslib)


def version_string(op: SimpleNamespace) -> str:
    """libopus's own version string, e.g. ``'libopus 1.3.1'``."""
    return op.info.get_version_string().decode()


def set_ctl(op: SimpleNamespace, state, request: int, value: int) -> None:
    """An encoder ctl with an int argument, called directly: opuslib's ``inband_fec``
    property setter drops its argument (DESIGN.md §3)."""
    rc = op.lib.opus_encoder_ctl(state, ctypes.c_int(request), ctypes.c_int(int(value)))
    if rc != 0:
        raise RuntimeError(f"opus_encoder_ctl({request}, {value}) failed with code {rc}")


def get_ctl(op: SimpleNamespace, state, request: int) -> int:
    """An encoder ctl that reads one int."""
    out = ctypes.c_int()
    rc = op.lib.opus_encoder_ctl(state, ctypes.c_int(request), ctypes.byref(out))
    if rc != 0:
        raise RuntimeError(f"opus_encoder_ctl({request}) failed with code {rc}")
    return out.value


def encode(op: SimpleNamespace, state, audio: np.ndarray) -> bytes:
    """One Opus packet from one frame of mono float32 audio."""
    pcm = np.ascontiguousarray(audio, dtype=np.float32)
    return op.encoder.encode_float(state, pcm.tobytes(), pcm.shape[0], MAX_PACKET_BYTES)


def decode(op: SimpleNamespace, state, packet: bytes | None, frame_samples: int,
           fec: bool = False) -> np.ndarray:
    """``frame_samples`` of mono float32 audio.

    ``packet=None`` runs libopus's packet-loss concealment (a NULL buffer; opuslib's
    high-level ``decode`` cannot express it). ``fec=True`` decodes the LBRR copy of the
    *previous* frame carried in ``packet``; ``frame_samples`` must then be the exact
    missing duration.
    """
    data = op.decoder.decode_float(state, packet, 0 if packet is None else len(packet),
                                   frame_samples, bool(fec), channels=1)
    out = np.frombuffer(data, dtype=np.float32)
    if out.shape[0] != frame_samples:
        raise RuntimeError(f"libopus decoded {out.shape[0]} samples, expected {frame_samples}")
    return out.copy()


def packet_has_lbrr(op: SimpleNamespace, packet: bytes) -> bool:
    """Whether ``packet`` carries LBRR (in-band FEC) data for the previous frame.

    libopus >= 1.5 answers this itself (``opus_packet_has_lbrr``). Older versions (Debian
    12 ships 1.3.1) lack it, so this ports that function: the LBRR flag of a SILK or hybrid
    packet is the bit after the per-20-ms VAD flags at the top of the first frame's first
    byte (RFC 6716 §4.2.3); CELT-only packets never carry LBRR. The frames are located by
    libopus's own ``opus_packet_parse``.
    """
    if len(packet) == 0:
        return False
    fn = getattr(op.lib, "opus_packet_has_lbrr", None)
    buf = ctypes.create_string_buffer(bytes(packet), len(packet))
    if fn is not None:
        fn.restype = ctypes.c_int
        rc = fn(buf, ctypes.c_int32(len(packet)))
        if rc < 0:
            raise RuntimeError(f"opus_packet_has_lbrr failed with code {rc}")
        return bool(rc)
    config = packet[0] >> 3
    if config >= 16:  # CELT-only configurations 16..31
        return False
    per_frame_48k = op.lib.opus_packet_get_samples_per_frame(buf, ctypes.c_int32(48000))
    silk_frames = max(1, per_frame_48k // 960)  # SILK frames of 20 ms inside one Opus frame
    stereo = (packet[0] >> 2) & 1
    frames = (ctypes.c_void_p * 48)()
    sizes = (ctypes.c_int16 * 48)()
    toc = ctypes.c_ubyte()
    n = op.lib.opus_packet_parse(buf, ctypes.c_int32(len(packet)), ctypes.byref(toc), frames,
                                 sizes, None)
    if n < 0:
        raise RuntimeError(f"opus_packet_parse failed with code {n}")
    if n == 0 or sizes[0] == 0:
        return False
    first = packet[frames[0] - ctypes.addressof(buf)]
    lbrr = (first >> (7 - silk_frames)) & 1
    if stereo:
        lbrr |= (first >> (6 - 2 * silk_frames)) & 1
    return bool(lbrr)
