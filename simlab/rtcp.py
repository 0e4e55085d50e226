"""RTCP receiver reports (RFC 3550 §6.4.2, §6.5, §6.7; RFC 5506): their sizes, which
``feedback.accounting: rtcp`` and ``rtcp_reduced`` charge, and their bytes, which the pcaps carry.

A report is a compound RTCP packet as RFC 3550 requires: a receiver report (RR: header 4 +
reporter's SSRC 4 + one report block 24 = 32 B) and an SDES packet with the receiver's CNAME
(header 4 + chunk: SSRC 4, CNAME item 2 + 16 characters, a null octet ending the item list,
padding to 32 bits: 24 B; 28 B in all). The CNAME has RFC 7022's form: a 96-bit identifier in
base64, 16 characters, so every flow's reports have the same size (made from the flow number:
no randomness). ``rtcp_reduced`` is RFC 5506's reduced-size RTCP: the RR alone.

p-hat travels as the report block's 8-bit fraction lost (fixed point: n/256, at most 255/256).
A report of more than 1 byte (``report_bytes`` > 1) adds an APP packet (RFC 3550 §6.7: header 4,
SSRC 4, name ``SLAB`` 4, data padded to 32 bits) whose first two data bytes are p-hat on 16 bits
(n/65535, the precision a 2-byte report has without RTCP) and whose other bytes stand for the
rest of the report (zeros).
"""
from __future__ import annotations

import base64
import hashlib
import struct
from typing import NamedTuple, Optional

RR_BYTES = 32  # header 4 + reporter's SSRC 4 + one report block 24
CNAME_CHARS = 16  # RFC 7022: 96 bits in base64
SDES_BYTES = 4 + 4 + ((2 + CNAME_CHARS + 1 + 3) // 4) * 4  # header, SSRC, item + end, padded: 28
APP_NAME = b"SLAB"
PT_RR, PT_SDES, PT_APP = 201, 202, 204
#: Flow k's media SSRC (the RTP stream in forward.pcap) and its receiver's SSRC (the reports').
MEDIA_SSRC, RECEIVER_SSRC = 0x51A0, 0x5EC00000


def app_bytes(report_bytes: int) -> int:
    """An APP packet carrying ``report_bytes`` of data: header 4 + SSRC 4 + name 4 + data padded to 32 bits."""
    return 12 + 4 * ((report_bytes + 3) // 4)


def rtcp_bytes(report_bytes: int, reduced: bool = False) -> int:
    """The RTCP bytes (the UDP payload) of one report: RR + SDES/CNAME (RR alone when ``reduced``),
    plus an APP packet when the report holds more than 1 byte."""
    n = RR_BYTES + (0 if reduced else SDES_BYTES)
    return n + (app_bytes(report_bytes) if report_bytes > 1 else 0)


def cname(flow: int) -> str:
    """Flow k's receiver CNAME: 16 base64 characters of a 96-bit identifier (RFC 7022's form)."""
    return base64.b64encode(hashlib.sha256(f"simlab receiver {flow}".encode()).digest()[:12]).decode()


class ReceptionReport(NamedTuple):
    """What a report says besides the jitter (which the capture computes from the arrivals)."""

    fraction_lost: int  # p-hat as 8-bit fixed point
    cumulative_lost: int  # packets expected minus received since the start
    highest_seq: int  # the extended highest sequence number received (-1: none yet)
    app: Optional[bytes] = None  # the APP packet's data (reports of more than 1 byte)
    reduced: bool = False  # RFC 5506: the RR without SDES


def _header(count: int, pt: int, size: int) -> bytes:
    return struct.pack("!BBH", 0x80 | count, pt, size // 4 - 1)


def compound(flow: int, report: ReceptionReport, jitter: int = 0) -> bytes:
    """A report's RTCP bytes: RR (reporter SSRC, one block about the media SSRC; LSR and DLSR 0:
    no sender reports to echo; ``jitter`` in RTP timestamp units), SDES/CNAME unless
    ``report.reduced``, APP when ``report.app``."""
    ssrc, media = RECEIVER_SSRC + flow, MEDIA_SSRC + flow
    cum = max(-(1 << 23), min((1 << 23) - 1, report.cumulative_lost)) & 0xFFFFFF
    out = [_header(1, PT_RR, RR_BYTES), struct.pack("!II", ssrc, media),
           struct.pack("!I", report.fraction_lost << 24 | cum),
           struct.pack("!IIII", max(report.highest_seq, 0) & 0xFFFFFFFF, jitter & 0xFFFFFFFF, 0, 0)]
    if not report.reduced:
        name = cname(flow).encode()
        chunk = struct.pack("!IBB", ssrc, 1, len(name)) + name
        chunk += bytes(4 - len(chunk) % 4)  # the null item that ends the list, and padding
        out += [_header(1, PT_SDES, 4 + len(chunk)), chunk]
    if report.app is not None:
        data = report.app + bytes(-len(report.app) % 4)
        out += [_header(0, PT_APP, 12 + len(data)), struct.pack("!I", ssrc), APP_NAME, data]
    return b"".join(out)
