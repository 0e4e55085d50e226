"""The forward packets as RTP/UDP/IP in a pcap file (dpkt), with simulated timestamps, so
Wireshark and tshark decode the stream as RTP. Payload bytes are the real ones: the units each
packet carries, bit-packed after each frame's side information (token systems), or the codec's
own packet bytes (Opus, AAC), joined by the system's ``rtp_payload`` where it has one (AMR's
RFC 4867 framing). With ROHC the file shows the decompressed headers.

RTP payload type and clock are the system's (optional attributes ``rtp_payload_type``, default
96, dynamic; ``rtp_clock_rate``, default its ``sample_rate``): a packet's timestamp is its first
frame's first sample on that clock (Opus: 48 kHz whatever it codes at, RFC 7587; G.722: 8 kHz
although it samples at 16, RFC 3551). A payload shorter than the bytes simlab counts is padded
with RTP padding (RFC 3550 §5.1), so the file's sizes are packets.csv's."""
from __future__ import annotations

import socket
import struct

import dpkt

from simlab.packets import mask_indices

#: A fixed start of the simulated clock (2026-01-01T00:00:00Z), so timestamps look like a capture.
EPOCH = 1767225600.0
RTP_PORT = 5004
PAYLOAD_TYPE = 96  # dynamic


def rtp_clock(system) -> tuple[int, int]:
    """(payload type, timestamp step per frame) of a system's RTP stream."""
    pt = int(getattr(system, "rtp_payload_type", PAYLOAD_TYPE))
    rate = int(system.sample_rate)
    clock = int(getattr(system, "rtp_clock_rate", rate))
    step, rest = divmod(system.frame_samples * clock, rate)
    if rest or not 0 <= pt <= 127:
        raise ValueError(f"{system.name}: RTP payload type {pt} or a frame of {system.frame_samples} samples at "
                         f"{rate} Hz on a {clock} Hz RTP clock is not whole")
    return pt, step


def pack_units(contents, encoded, join=None) -> bytes:
    """A packet's payload bytes; ``join(list of byte payloads)`` joins codec packets (default: end
    to end)."""
    chunks: list[bytes] = []
    acc = width = 0  # the bit string so far, as one int (MSB first), and its length
    seen = set()
    for frame, mask, _n, _b in contents:
        enc = encoded[frame]
        if isinstance(enc.payload, (bytes, bytearray)):
            chunks.append(bytes(enc.payload))
            continue
        if frame not in seen and enc.side_bits:
            seen.add(frame)
            sent = int((enc.copies > 0).sum())
            doubled = int((enc.copies > 1).sum())
            w = int(enc.side_bits)
            acc, width = acc << w | ((sent << 4 | doubled) & ((1 << w) - 1)), width + w
        for i in mask_indices(mask):
            w = int(enc.unit_bits[i])
            acc, width = acc << w | (int(enc.payload[i]) & ((1 << w) - 1)), width + w
    if width:
        pad = -width % 8  # zero bits to the byte boundary, as np.packbits would
        chunks.append((acc << pad).to_bytes((width + pad) // 8, "big"))
    return join(chunks) if join is not None and width == 0 else b"".join(chunks)


class PcapTap:
    def __init__(self, path, system, ipv6: bool = False):
        self.payload_type, self.ts_step = rtp_clock(system)
        self._join = getattr(system, "rtp_payload", None)
        self._fh = open(path, "wb")
        self._w = dpkt.pcap.Writer(self._fh, linktype=dpkt.pcap.DLT_EN10MB)
        self.ipv6 = ipv6
        self.count = 0

    def packet(self, pkt, encoded) -> None:
        payload = pack_units(pkt.contents, encoded, self._join)
        flags, pad = 0x80, pkt.payload_bytes - len(payload)
        if pad > 255:
            raise ValueError(f"pcap: packet {pkt.seq}'s payload is {pad} bytes shorter than counted")
        if pad > 0:  # RTP padding: its last byte says how many bytes it is
            flags |= 0x20
            payload += bytes(pad - 1) + bytes([pad])
        rtp = struct.pack("!BBHII", flags, self.payload_type, pkt.seq & 0xFFFF,
                          (max(pkt.first_frame, 0) * self.ts_step) & 0xFFFFFFFF,
                          0x51A0 + pkt.flow) + payload
        udp = dpkt.udp.UDP(sport=RTP_PORT + 2 * pkt.flow, dport=RTP_PORT + 2 * pkt.flow, data=rtp)
        udp.ulen = len(udp)
        if self.ipv6:
            ip = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, "fd00::1"),
                              dst=socket.inet_pton(socket.AF_INET6, "fd00::2"), nxt=dpkt.ip.IP_PROTO_UDP,
                              hlim=64, data=udp, plen=len(udp))
            etype = dpkt.ethernet.ETH_TYPE_IP6
        else:
            ip = dpkt.ip.IP(src=socket.inet_aton("192.0.2.1"), dst=socket.inet_aton("192.0.2.2"),
                            p=dpkt.ip.IP_PROTO_UDP, ttl=64, data=udp)
            ip.len = len(ip)
            etype = dpkt.ethernet.ETH_TYPE_IP
        eth = dpkt.ethernet.Ethernet(src=b"\x02\x00\x00\x00\x00\x01", dst=b"\x02\x00\x00\x00\x00\x02",
                                     type=etype, data=ip)
        self._w.writepkt(bytes(eth), ts=EPOCH + pkt.send_s)
        self.count += 1

    def close(self) -> None:
        self._w.close()
