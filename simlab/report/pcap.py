"""The calls' packets as captured at each end, in pcap files (dpkt) with simulated timestamps, so
Wireshark and tshark decode them: forward.pcap, the sender's side (media as sent, RTCP reports as
they arrive), and receiver.pcap, the receiver's side (media as they arrive, lost ones absent, RTCP
reports as sent). Media are RTP/UDP/IP on UDP port 5004 + 2k for flow k; the reports, under
``feedback.accounting: rtcp`` or ``rtcp_reduced`` only (otherwise they have no wire form), RTCP on
port 5005 + 2k (`simlab.rtcp`: RR with the RFC 3550 interarrival jitter computed here from the
arrivals, SDES/CNAME unless reduced). Payload bytes are the real ones: the units each
packet carries, bit-packed after each frame's side information (token systems), or the codec's
own packet bytes (Opus, AAC), joined by the system's ``rtp_payload`` where it has one (AMR's
RFC 4867 framing). With ROHC the file shows the decompressed headers.

RTP payload type and clock are the system's (optional attributes ``rtp_payload_type``, default
96, dynamic; ``rtp_clock_rate``, default its ``sample_rate``): a packet's timestamp is its first
frame's first sample on that clock (Opus: 48 kHz whatever it codes at, RFC 7587; G.722: 8 kHz
although it samples at 16, RFC 3551). A payload shorter than the bytes simlab counts is padded
with RTP padding (RFC 3550 §5.1), so the file's sizes are packets.csv's."""
from __future__ import annotations

import heapq
import math
import socket
import struct

import dpkt

from simlab.packets import mask_indices
from simlab.rtcp import MEDIA_SSRC, ReceptionReport, compound

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


class _Writer:
    """A pcap file fed a little out of time order: frames wait in a heap and are written, in
    timestamp order, once nothing later can precede them (`flush`)."""

    def __init__(self, path):
        self._fh = open(path, "wb")
        self._w = dpkt.pcap.Writer(self._fh, linktype=dpkt.pcap.DLT_EN10MB)
        self._heap: list = []
        self._n = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, t: float, frame: bytes) -> None:
        heapq.heappush(self._heap, (t, self._n, frame))
        self._n += 1

    def flush(self, until: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= until:
            t, _, frame = heapq.heappop(heap)
            self._w.writepkt(frame, ts=EPOCH + t)

    def close(self) -> None:
        self.flush(math.inf)
        self._w.close()


#: What a timestamp may be ahead of the event it was written at (float rounding): far below a pcap's microsecond.
_SLACK_S = 1e-9


class Capture:
    """The captures at both ends: ``sender`` (forward.pcap) and ``receiver`` (receiver.pcap)
    paths, either None. Wired by assignment: ``sent`` is each flow's sender tap, ``fate`` its
    flow's (every forward packet's fate), ``report`` its feedback's (RTCP accounting); ``watch(flow)``
    each flow, so that a report still to be made (reports are made lazily, shortly after they are
    due) is never preceded in a file by a later packet. Memory: the packets in flight (their bytes,
    built at sending, wait for their arrival) and those within a report's lag and the reverse delay."""

    def __init__(self, env, system, ipv6: bool = False, sender=None, receiver=None):
        self.env = env
        self.payload_type, self.ts_step = rtp_clock(system)
        self.clock = int(getattr(system, "rtp_clock_rate", system.sample_rate))
        self._join = getattr(system, "rtp_payload", None)
        self.ipv6 = ipv6
        self.sender = _Writer(sender) if sender is not None else None
        self.receiver = _Writer(receiver) if receiver is not None else None
        self._flows: list = []
        self._in_flight: dict = {}  # (flow, seq) -> (frame bytes, RTP timestamp), until its fate
        self._early: dict = {}  # (flow, seq) -> arrival_s of a packet that arrived before its tap
        self._jitter: dict = {}  # flow -> [last transit, jitter x 16] (RFC 3550 A.8)
        self._check = 0

    def watch(self, flow) -> None:
        """Make ``flow``'s reports still to come hold back what would precede them."""
        self._flows.append(flow)

    def sent(self, pkt, encoded) -> None:
        """A media packet as the sender hands it to the link (the sender's tap)."""
        rtp_ts = max(pkt.first_frame, 0) * self.ts_step
        frame = self._media(pkt, encoded, rtp_ts)
        if self.sender is not None:
            self.sender.push(pkt.send_s, frame)
        key = (pkt.flow, pkt.seq)
        if self.receiver is not None and not (pkt.lost or pkt.dropped):
            if key in self._early:
                self._arrive(pkt.flow, self._early.pop(key), frame, rtp_ts)
            else:
                self._in_flight[key] = (frame, rtp_ts)
        self._flush()

    def fate(self, pkt) -> None:
        """A forward packet's fate (the flow's tap): at its arrival, or when it is lost or dropped."""
        if self.receiver is None:
            return
        got = self._in_flight.pop((pkt.flow, pkt.seq), None)
        if pkt.lost or pkt.dropped or math.isnan(pkt.arrival_s):
            return
        if got is None:  # its sender's tap has not seen it yet
            self._early[(pkt.flow, pkt.seq)] = pkt.arrival_s
            return
        self._arrive(pkt.flow, pkt.arrival_s, *got)
        self._flush()

    def report(self, pkt, rr: ReceptionReport) -> None:
        """An RTCP report as the receiver sends it (the feedback's tap)."""
        st = self._jitter.get(pkt.flow)
        port = RTP_PORT + 1 + 2 * pkt.flow
        frame = self._frame(compound(pkt.flow, rr, st[1] >> 4 if st else 0), port, to_sender=True)
        if self.receiver is not None:
            self.receiver.push(pkt.send_s, frame)
        if self.sender is not None and not (pkt.lost or pkt.dropped) and not math.isnan(pkt.arrival_s):
            self.sender.push(pkt.arrival_s, frame)
        self._flush()

    def close(self) -> None:
        for w in (self.sender, self.receiver):
            if w is not None:
                w.close()

    def _arrive(self, flow: int, arrival_s: float, frame: bytes, rtp_ts: int) -> None:
        self.receiver.push(arrival_s, frame)
        transit = round(arrival_s * self.clock) - rtp_ts
        st = self._jitter.get(flow)
        if st is None:
            self._jitter[flow] = [transit, 0]
            return
        d = abs(transit - st[0])
        st[0] = transit
        st[1] += d - ((st[1] + 8) >> 4)

    def _flush(self) -> None:
        """Write what nothing to come can precede (checked every so many packets: the bound looks at every flow)."""
        self._check += 1
        if self._check < max(1, len(self._flows) // 8):
            return
        self._check = 0
        until = self.env.now
        for f in self._flows:
            fb = f.feedback
            if fb.tap is not None and fb.next_report_s <= f.start_s + f.duration_s:
                until = min(until, fb.next_report_s)
        until -= _SLACK_S
        for w in (self.sender, self.receiver):
            if w is not None:
                w.flush(until)

    def _media(self, pkt, encoded, rtp_ts: int) -> bytes:
        payload = pack_units(pkt.contents, encoded, self._join)
        flags, pad = 0x80, pkt.payload_bytes - len(payload)
        if pad > 255:
            raise ValueError(f"pcap: packet {pkt.seq}'s payload is {pad} bytes shorter than counted")
        if pad > 0:  # RTP padding: its last byte says how many bytes it is
            flags |= 0x20
            payload += bytes(pad - 1) + bytes([pad])
        rtp = struct.pack("!BBHII", flags, self.payload_type, pkt.seq & 0xFFFF, rtp_ts & 0xFFFFFFFF,
                          MEDIA_SSRC + pkt.flow) + payload
        return self._frame(rtp, RTP_PORT + 2 * pkt.flow)

    def _frame(self, data: bytes, port: int, to_sender: bool = False) -> bytes:
        """Ethernet/IP/UDP around ``data``, from the sender (192.0.2.1, fd00::1) to the receiver
        (192.0.2.2, fd00::2), or back."""
        udp = dpkt.udp.UDP(sport=port, dport=port, data=data)
        udp.ulen = len(udp)
        a, b = (2, 1) if to_sender else (1, 2)
        if self.ipv6:
            ip = dpkt.ip6.IP6(src=socket.inet_pton(socket.AF_INET6, f"fd00::{a}"),
                              dst=socket.inet_pton(socket.AF_INET6, f"fd00::{b}"), nxt=dpkt.ip.IP_PROTO_UDP,
                              hlim=64, data=udp, plen=len(udp))
            etype = dpkt.ethernet.ETH_TYPE_IP6
        else:
            ip = dpkt.ip.IP(src=socket.inet_aton(f"192.0.2.{a}"), dst=socket.inet_aton(f"192.0.2.{b}"),
                            p=dpkt.ip.IP_PROTO_UDP, ttl=64, data=udp)
            ip.len = len(ip)
            etype = dpkt.ethernet.ETH_TYPE_IP
        eth = dpkt.ethernet.Ethernet(src=bytes([2, 0, 0, 0, 0, a]), dst=bytes([2, 0, 0, 0, 0, b]),
                                     type=etype, data=ip)
        return bytes(eth)
