"""A fate trace from two captures of one RTP stream: a sender-side pcap and a receiver-side one.

Each RTP packet of the stream (one SSRC) in the sender's capture is one row, in the order it
was sent: matched by SSRC and sequence number in the receiver's capture, its delay is the
receiver's timestamp minus the sender's (minus a known clock offset); missing there, it is lost.
Sequence numbers are extended past their 16-bit wrap in each capture; the receiver's are put in
the sender's cycle by the sender packet nearest in time to the receiver's first one (so the two
clocks must agree to well within 65536 packet intervals). A packet received twice counts once,
at its first arrival. Reads pcap and pcapng (Ethernet, Linux cooked, raw IP, BSD loopback).
"""
from __future__ import annotations

import bisect
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import dpkt

from simlab.errors import UserError


@dataclass
class RtpPacket:
    ts: float
    ssrc: int
    seq: int  # 16-bit
    port: int  # UDP destination port


def _ip_of(linktype: int, buf: bytes):
    """The IP (v4 or v6) packet of a captured frame, or None."""
    try:
        if linktype == dpkt.pcap.DLT_EN10MB:
            data = dpkt.ethernet.Ethernet(buf).data
        elif linktype == dpkt.pcap.DLT_LINUX_SLL:
            data = dpkt.sll.SLL(buf).data
        elif linktype == 276:  # DLT_LINUX_SLL2: a 20-byte header
            data = _raw_ip(buf[20:])
        elif linktype in (dpkt.pcap.DLT_RAW, 12, 14, 228, 229):
            data = _raw_ip(buf)
        elif linktype in (dpkt.pcap.DLT_NULL, dpkt.pcap.DLT_LOOP):
            data = _raw_ip(buf[4:])
        else:
            raise UserError(f"link type {linktype} is not one this reader knows (Ethernet, Linux cooked, raw IP, "
                            "loopback)")
    except (dpkt.UnpackError, struct.error, IndexError):
        return None
    return data if isinstance(data, (dpkt.ip.IP, dpkt.ip6.IP6)) else None


def _raw_ip(buf: bytes):
    if not buf:
        return None
    version = buf[0] >> 4
    return dpkt.ip.IP(buf) if version == 4 else dpkt.ip6.IP6(buf) if version == 6 else None


def read_rtp(path: str | Path) -> list[RtpPacket]:
    """The RTP packets (version 2, not RTCP) in a capture, in capture order."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such capture file")
    out: list[RtpPacket] = []
    with open(path, "rb") as fh:
        magic = fh.read(4)
        fh.seek(0)
        try:
            reader = dpkt.pcapng.Reader(fh) if magic == b"\x0a\x0d\x0d\x0a" else dpkt.pcap.Reader(fh)
        except (ValueError, dpkt.NeedData, dpkt.UnpackError) as exc:
            raise UserError(f"{path}: not a pcap or pcapng capture ({exc})") from None
        linktype = reader.datalink()
        for ts, buf in reader:
            ip = _ip_of(linktype, buf)
            if ip is None or not isinstance(ip.data, dpkt.udp.UDP):
                continue
            payload = bytes(ip.data.data)
            if len(payload) < 12 or payload[0] >> 6 != 2 or 72 <= (payload[1] & 0x7F) <= 76:  # RTCP: 200-204
                continue
            seq, = struct.unpack("!H", payload[2:4])
            ssrc, = struct.unpack("!I", payload[8:12])
            out.append(RtpPacket(float(ts), ssrc, seq, ip.data.dport))
    return out


def _extended(seqs: list[int]) -> list[int]:
    """16-bit sequence numbers extended across their wrap, in the order given (a step back of
    more than half the range is a wrap forward; a small step back, reordering)."""
    out, cycles, prev = [], 0, None
    for s in seqs:
        if prev is not None:
            if s - prev < -32768:
                cycles += 1
            elif s - prev > 32768 and cycles > 0:
                cycles -= 1
        ext = s + 65536 * cycles
        out.append(ext)
        prev = s
    return out


def _one_stream(pkts: list[RtpPacket], ssrc: Optional[int], port: Optional[int], where: str) -> int:
    if port is not None:
        pkts = [p for p in pkts if p.port == port]
    counts = Counter(p.ssrc for p in pkts)
    if ssrc is not None:
        if ssrc not in counts:
            raise UserError(f"{where}: no RTP packets with SSRC {ssrc:#010x}")
        return ssrc
    if not counts:
        raise UserError(f"{where}: no RTP packets" + (f" to UDP port {port}" if port is not None else ""))
    if len(counts) > 1:
        listed = ", ".join(f"{s:#010x} ({n} packets)" for s, n in counts.most_common())
        raise UserError(f"{where}: several RTP streams ({listed}): choose one with --ssrc")
    return next(iter(counts))


@dataclass
class Fates:
    ssrc: int
    seqs: list[int]  # extended RTP sequence numbers, in sending order
    delays: list[Optional[float]]  # seconds; None: lost
    duplicates: int  # receiver packets that were copies of one already counted
    unmatched: int  # receiver packets of the stream the sender never sent (in its capture)

    @property
    def lost(self) -> int:
        return sum(d is None for d in self.delays)


def fates_from_pcaps(sender: str | Path, receiver: str | Path, ssrc: Optional[int] = None,
                     port: Optional[int] = None, clock_offset_s: float = 0.0) -> Fates:
    """Each sent packet's one-way delay (receiver time - sender time - ``clock_offset_s``) or
    loss. ``UserError`` when a capture holds no such stream, or a packet seems to arrive
    before it was sent (clocks apart: give the offset)."""
    sent_all, recv_all = read_rtp(sender), read_rtp(receiver)
    ssrc = _one_stream(sent_all, ssrc, port, str(sender))
    sent = [p for p in sent_all if p.ssrc == ssrc and (port is None or p.port == port)]
    recv = [p for p in recv_all if p.ssrc == ssrc and (port is None or p.port == port)]
    s_ext = _extended([p.seq for p in sent])
    index = {e: i for i, e in enumerate(s_ext)}
    delays: list[Optional[float]] = [None] * len(sent)
    dup = unmatched = 0
    if recv:
        r_ext = _extended([p.seq for p in recv])
        times = [p.ts for p in sent]
        near = min(max(bisect.bisect_left(times, recv[0].ts - clock_offset_s), 0), len(sent) - 1)
        shift = round((s_ext[near] - r_ext[0]) / 65536) * 65536  # the receiver's cycle in the sender's count
        for p, e in zip(recv, r_ext):
            i = index.get(e + shift)
            if i is None:
                unmatched += 1
                continue
            d = p.ts - sent[i].ts - clock_offset_s
            if delays[i] is None:
                delays[i] = d
            else:
                dup += 1
                delays[i] = min(delays[i], d)
    early = [d for d in delays if d is not None and d < 0]
    if early:
        raise UserError(f"{len(early)} packets arrived before they were sent (down to {min(early):.6f} s): the "
                        "captures' clocks are apart; give --clock-offset-s (the receiver's clock minus the sender's)")
    return Fates(ssrc, s_ext, delays, dup, unmatched)


def write_fates(fates: Fates, out: str | Path, note: str = "") -> None:
    """The fate trace CSV (`simlab.sim.fate_trace`): ``seq,delay_s``, ``lost`` for a lost packet."""
    lines = [f"# {note}"] if note else []
    lines.append("seq,delay_s")
    lines += [f"{s},{'lost' if d is None else f'{d:.9f}'}" for s, d in zip(fates.seqs, fates.delays)]
    Path(out).write_text("\n".join(lines) + "\n")
