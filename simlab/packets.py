"""Packets on the wire: headers, payload bit accounting, redundancy placement, interleaving.

Sizes are bits in accounting (``payload_bits``) and whole bytes on the wire
(``payload_bytes``, ``header_bytes``). A packet's payload holds the units it carries plus the
side information the receiver needs to parse each frame it touches: nothing crosses for free.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

RTP_BYTES, UDP_BYTES, IPV4_BYTES, IPV6_BYTES = 12, 8, 20, 40
#: RTCP receiver-report framing around a feedback report, before UDP/IP: RTCP header (4) +
#: SSRC (4), the report body being an APP-style payload of ``report_bytes``.
RTCP_BYTES = 8


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
    """One packet. ``contents`` lists (frame, unit indices) for every copy of units it holds."""

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


def payload_bits(contents: Sequence[tuple[int, np.ndarray]], encoded) -> int:
    """Bits of the units carried plus each touched frame's side information, once per frame.
    ``encoded[frame]`` has ``unit_bits`` and ``side_bits`` (an `Encoded`)."""
    bits = 0
    frames = set()
    for frame, idx in contents:
        bits += int(encoded[frame].unit_bits[idx].sum())
        frames.add(frame)
    return bits + sum(encoded[f].side_bits for f in frames)


def swap_even(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's interleaver: the even-index units of two adjacent chunks trade places.

    ``a`` and ``b`` are [frames, units] arrays (tokens, or frame labels); the result keeps each
    chunk's odd units and takes the other's even ones. It is its own inverse.
    """
    a2, b2 = np.array(a, copy=True), np.array(b, copy=True)
    a2[..., 0::2], b2[..., 0::2] = b[..., 0::2], a[..., 0::2]
    return a2, b2


def interleaved_contents(frames_a: Sequence[int], frames_b: Sequence[int],
                         copies: dict) -> tuple[list, list]:
    """(frame, unit indices) carried by two paired packets after ``swap_even``, first copies
    only; units not sent (copies 0) are skipped."""
    n_units = len(copies[frames_a[0]])
    labels_a = np.repeat(np.asarray(frames_a)[:, None], n_units, axis=1)
    labels_b = np.repeat(np.asarray(frames_b)[:, None], n_units, axis=1)
    out = []
    for labels in swap_even(labels_a, labels_b):
        contents = []
        for row in labels:
            for frame in np.unique(row):
                idx = np.flatnonzero((row == frame) & (copies[int(frame)] > 0))
                if idx.size:
                    contents.append((int(frame), idx))
        out.append(contents)
    return out[0], out[1]


def plain_contents(frames: Sequence[int], copies: dict) -> list:
    """(frame, unit indices) of the first copies of ``frames``, in order."""
    out = []
    for f in frames:
        idx = np.flatnonzero(copies[f] > 0)
        if idx.size:
            out.append((f, idx))
    return out


def redundant_contents(frames: Sequence[int], copies: dict) -> list:
    """(frame, unit indices) of the second copies (units with copies == 2)."""
    out = []
    for f in frames:
        idx = np.flatnonzero(copies[f] > 1)
        if idx.size:
            out.append((f, idx))
    return out
