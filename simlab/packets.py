"""Packets on the wire: headers, payload bit accounting, redundancy placement, interleaving.

Sizes are bits in accounting (``payload_bits``) and whole bytes on the wire
(``payload_bytes``, ``header_bytes``). A packet's payload holds the units it carries plus the
side information the receiver needs to parse each frame it touches: nothing crosses for free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RTP_BYTES, UDP_BYTES, IPV4_BYTES, IPV6_BYTES = 12, 8, 20, 40


@dataclass(frozen=True)
class HeaderProfile:
    """Per-packet header bytes: fixed RTP/UDP/IP, or ROHC with periodic refresh (IR) headers."""

    name: str
    steady_bytes: int
    refresh_bytes: int = 0
    refresh_every: int = 0  # packets; 0 = never refresh

    def header_bytes(self, index: int) -> int:
        """Header size of the ``index``-th packet of a flow (0-based)."""
        if self.refresh_every and index % self.refresh_every == 0:
            return self.refresh_bytes
        return self.steady_bytes

    def mean_bytes(self) -> float:
        if not self.refresh_every:
            return float(self.steady_bytes)
        return (self.refresh_bytes + (self.refresh_every - 1) * self.steady_bytes) / self.refresh_every

    def ip_udp_bytes(self) -> int:
        """The IP+UDP part alone (what an RTCP report pays under this profile)."""
        if self.name == "ipv6":
            return IPV6_BYTES + UDP_BYTES
        if self.name == "ipv4":
            return IPV4_BYTES + UDP_BYTES
        return self.steady_bytes  # compressed: the report shares the compressed context


def header_profile(name: str, steady_bytes: int = 3, refresh_bytes: int = 44,
                   refresh_every: int = 32) -> HeaderProfile:
    """``ipv4`` (40 B), ``ipv6`` (60 B) or ``rohc`` (``steady_bytes`` in steady state, a
    ``refresh_bytes`` IR header every ``refresh_every`` packets, the first one included)."""
    if name == "ipv4":
        return HeaderProfile("ipv4", RTP_BYTES + UDP_BYTES + IPV4_BYTES)
    if name == "ipv6":
        return HeaderProfile("ipv6", RTP_BYTES + UDP_BYTES + IPV6_BYTES)
    if name == "rohc":
        return HeaderProfile("rohc", steady_bytes, refresh_bytes, refresh_every)
    raise ValueError(f"headers: {name!r} is not one of ipv4, ipv6, rohc")


class Packet:
    """One packet. ``contents`` lists (frame, unit mask, units, bits) for every copy of units it
    holds (see `Layout`)."""

    __slots__ = ("flow", "seq", "kind", "send_s", "arrival_s", "header_bytes", "payload_bits",
                 "contents", "lost", "late", "dropped", "first_frame")

    def __init__(self, flow: int, seq: int, kind: str, header_bytes: int, payload_bits: int,
                 contents: list, first_frame: int = -1):
        self.flow = flow
        self.seq = seq
        self.kind = kind
        self.header_bytes = header_bytes
        self.payload_bits = payload_bits
        self.contents = contents
        self.first_frame = first_frame
        self.send_s = float("nan")
        self.arrival_s = float("nan")
        self.lost = False
        self.late = False
        self.dropped = False

    @property
    def payload_bytes(self) -> int:
        return (self.payload_bits + 7) // 8

    @property
    def size_bytes(self) -> int:
        return self.header_bytes + self.payload_bytes


class Layout:
    """Which units of a frame are sent once or twice, as bit masks, and their sizes.

    Masks make a packet's bookkeeping integer arithmetic: a content entry is
    (frame, mask, units, bits). Layouts are shared between frames with the same copies and
    unit sizes (a fixed controller makes one layout for a whole call).
    """

    __slots__ = ("n_units", "sent", "double", "unit_bits", "_bits")

    def __init__(self, copies: np.ndarray, unit_bits: np.ndarray):
        c = np.asarray(copies)
        self.n_units = len(c)
        self.sent = _mask(np.flatnonzero(c > 0))
        self.double = _mask(np.flatnonzero(c > 1))
        self.unit_bits = [int(b) for b in unit_bits]
        self._bits: dict[int, int] = {}

    def entry(self, frame: int, mask: int) -> tuple[int, int, int, int]:
        bits = self._bits.get(mask)
        if bits is None:
            bits = self._bits[mask] = sum(b for i, b in enumerate(self.unit_bits) if mask >> i & 1)
        return (frame, mask, mask.bit_count(), bits)


_LAYOUTS: dict[tuple, Layout] = {}


def layout_of(copies: np.ndarray, unit_bits: np.ndarray) -> Layout:
    key = (copies.tobytes(), unit_bits.tobytes())
    lay = _LAYOUTS.get(key)
    if lay is None:
        if len(_LAYOUTS) > 4096:
            _LAYOUTS.clear()
        lay = _LAYOUTS[key] = Layout(copies, unit_bits)
    return lay


def _mask(idx) -> int:
    m = 0
    for i in idx:
        m |= 1 << int(i)
    return m


def mask_indices(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


def mask_array(mask: int, n: int) -> np.ndarray:
    """A bit mask as a bool array of n units."""
    return ((mask >> np.arange(n)) & 1).astype(bool)


def payload_bits(contents, side_bits) -> int:
    """Bits of the units carried plus each touched frame's side information, once per frame
    (``side_bits[frame]``)."""
    bits = 0
    frames = set()
    for frame, _mask_, _n, b in contents:
        bits += b
        frames.add(frame)
    return bits + sum(side_bits[f] for f in frames)


def swap_even(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's interleaver: the even-index units of two adjacent chunks trade places.

    ``a`` and ``b`` are [frames, units] arrays (tokens, or frame labels); the result keeps each
    chunk's odd units and takes the other's even ones. It is its own inverse.
    """
    a2, b2 = np.array(a, copy=True), np.array(b, copy=True)
    a2[..., 0::2], b2[..., 0::2] = b[..., 0::2], a[..., 0::2]
    return a2, b2


EVEN = int("01" * 32, 2)  # bits 0, 2, 4, ...
ODD = EVEN << 1


def interleaved_contents(frames_a, frames_b, layouts) -> tuple[list, list]:
    """Content entries of two paired packets after ``swap_even`` (first copies only): packet a
    keeps its frames' odd units and takes the even units of b's frames, and vice versa."""
    ca, cb = [], []
    for fa, fb in zip(frames_a, frames_b):
        la, lb = layouts[fa], layouts[fb]
        for out, (f, lay, m) in ((ca, (fa, la, la.sent & ODD)), (ca, (fb, lb, lb.sent & EVEN)),
                                 (cb, (fb, lb, lb.sent & ODD)), (cb, (fa, la, la.sent & EVEN))):
            if m:
                out.append(lay.entry(f, m))
    return ca, cb


def plain_contents(frames, layouts) -> list:
    """Content entries of the first copies of ``frames``, in order."""
    return [layouts[f].entry(f, layouts[f].sent) for f in frames if layouts[f].sent]


def second_copies(contents, layouts) -> list:
    """Content entries of the second copies of what ``contents`` carries (units with m = 2)."""
    out = []
    for f, m, _n, _b in contents:
        lay = layouts[f]
        d = m & lay.double
        if d:
            out.append(lay.entry(f, d))
    return out
