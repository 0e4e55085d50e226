"""forward.pcap's RTP as the RFCs say, read by tshark: static payload types and clocks (PCMU 0,
PCMA 8, G722 9 on its 8 kHz clock, G723 4), dynamic ones otherwise; Opus on 48 kHz (RFC 7587);
AMR in RFC 4867 octet-aligned framing; Wireshark's stream analysis finds no jitter on a link
without any. Dynamic payload types get their clock from an SDP (here a SAP announcement put in
front of a copy of the file, as a call's signalling would be)."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from helpers import run, tables
from simlab.audio import SHIPPED_CLIP

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (install.sh installs it)")


def tshark(path, *args) -> str:
    r = subprocess.run(["tshark", "-r", str(path), "-d", "udp.port==5004,rtp", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def call(tmp_path, system: str, frames_per_packet: int = 1, name: str = "out"):
    overrides = [f"system={system}", f"audio={SHIPPED_CLIP}", "duration_s=4.2", "network.forward.loss.p=0.0",
                 "network.forward.bandwidth_bps=1000000", f"packetization.frames_per_packet={frames_per_packet}",
                 "outputs.pcap=true"]
    out, _ = run(tmp_path, overrides=overrides, name=name)
    return out


def rtp_rows(pcap) -> list[tuple[int, int, int]]:
    """(payload type, timestamp, UDP length) of each RTP packet."""
    rows = tshark(pcap, "-Y", "rtp", "-T", "fields", "-e", "rtp.p_type", "-e", "rtp.timestamp", "-e", "udp.length")
    return [tuple(int(v) for v in line.split("\t")) for line in rows.splitlines() if line.strip()]


def with_sdp(pcap, dst, rtpmap: str, fmtp: str = ""):
    """A copy of ``pcap`` with an SDP (in a SAP announcement) that maps its dynamic payload type."""
    import dpkt

    pt = rtpmap.split()[0]
    sdp = ("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=simlab\r\nc=IN IP4 192.0.2.2\r\nt=0 0\r\n"
           f"m=audio 5004 RTP/AVP {pt}\r\na=rtpmap:{rtpmap}\r\n" + (f"a=fmtp:{pt} {fmtp}\r\n" if fmtp else "")).encode()
    sap = b"\x20\x00\x00\x01" + socket.inet_aton("192.0.2.1") + b"application/sdp\x00" + sdp
    udp = dpkt.udp.UDP(sport=9875, dport=9875, data=sap)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton("192.0.2.1"), dst=socket.inet_aton("224.2.127.254"), p=17, ttl=64, data=udp)
    ip.len = len(ip)
    with open(pcap, "rb") as fh:
        packets = list(dpkt.pcap.Reader(fh))
    with open(dst, "wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        w.writepkt(bytes(dpkt.ethernet.Ethernet(src=b"\x02\0\0\0\0\x01", dst=b"\x01\0\x5e\x02\x7f\xfe", type=0x0800,
                                                data=ip)), ts=packets[0][0] - 1.0)
        for ts, buf in packets:
            w.writepkt(buf, ts=ts)
    return dst


def stream_jitter_ms(pcap) -> tuple[str, int, float]:
    """(payload name, packets, max jitter in ms) of the one RTP stream tshark's analysis finds."""
    lines = [ln for ln in tshark(pcap, "-q", "-z", "rtp,streams").splitlines() if "0x000051A0" in ln]
    assert len(lines) == 1, lines
    f = lines[0].split()
    i = f.index("0x000051A0")
    return f[i + 1], int(f[i + 2]), float(f[-1] if f[-1] != "X" else f[-2])


@pytest.mark.parametrize("system, pt, step, name", [
    ("{kind: ffmpeg, codec: pcm_mulaw}", 0, 160, "g711U"),
    ("{kind: ffmpeg, codec: pcm_alaw, frame_ms: 30}", 8, 240, "g711A"),
    ("{kind: ffmpeg, codec: g722}", 9, 160, "g722"),  # 320 samples at 16 kHz, 160 ticks of its 8 kHz clock
    ("{kind: ffmpeg, codec: g723_1}", 4, 240, "g723"),
])
def test_static_payload_types_and_clocks(tmp_path, system, pt, step, name):
    out = call(tmp_path, system)
    rows = rtp_rows(out / "forward.pcap")
    pk, _, _ = tables(out)
    media = pk[pk.kind != "feedback"]
    assert len(rows) == len(media) and {r[0] for r in rows} == {pt}
    assert [r[1] for r in rows] == [step * k for k in range(len(rows))]
    assert sorted(r[2] for r in rows) == sorted(8 + 12 + b for b in media.payload_bytes)
    payload, packets, jitter = stream_jitter_ms(out / "forward.pcap")
    assert (payload, packets) == (name, len(rows)) and jitter == 0.0


def test_opus_runs_on_a_48khz_rtp_clock(tmp_path):
    """RFC 7587: 960 ticks per 20 ms frame whatever Opus codes at (simlab codes at 24 kHz); on a
    24 kHz clock, Wireshark's jitter for the same jitter-free stream climbs to ~10 ms."""
    out = call(tmp_path, "{kind: opus, bitrate_bps: 16000, frame_ms: 20}")
    rows = rtp_rows(out / "forward.pcap")
    assert {r[0] for r in rows} == {96}
    assert [r[1] for r in rows] == [960 * k for k in range(len(rows))]
    announced = with_sdp(out / "forward.pcap", tmp_path / "sdp.pcap", "96 opus/48000/2")
    assert stream_jitter_ms(announced) == ("opus", len(rows), 0.0)
    # The old clock (timestamps in 24 kHz samples) seen by the same analysis.
    import dpkt

    halved = tmp_path / "half.pcap"
    with open(out / "forward.pcap", "rb") as fh, open(halved, "wb") as oh:
        w = dpkt.pcap.Writer(oh, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, buf in dpkt.pcap.Reader(fh):
            eth = dpkt.ethernet.Ethernet(buf)
            rtp = bytearray(eth.data.data.data)
            rtp[4:8] = (int.from_bytes(rtp[4:8], "big") // 2).to_bytes(4, "big")
            eth.data.data.data = bytes(rtp)
            eth.data.data.sum = 0
            w.writepkt(bytes(eth), ts=ts)
    _, _, old_jitter = stream_jitter_ms(with_sdp(halved, tmp_path / "half_sdp.pcap", "96 opus/48000/2"))
    print(f"Wireshark max jitter, 48 kHz clock: 0 ms; 24 kHz clock: {old_jitter} ms")
    assert old_jitter > 5.0


@pytest.mark.parametrize("frames_per_packet", [1, 3])
def test_amr_is_rfc4867_octet_aligned_on_an_8khz_clock(tmp_path, frames_per_packet):
    """One CMR, a TOC per frame (F set on all but the last), the speech frames; with several
    frames simlab counts a CMR per frame, and the file pads the difference as RTP padding so its
    sizes are packets.csv's."""
    out = call(tmp_path, "{kind: ffmpeg, codec: libopencore_amrnb, bitrate_bps: 7400}", frames_per_packet)
    rows = rtp_rows(out / "forward.pcap")
    pk, _, _ = tables(out)
    media = pk[pk.kind != "feedback"]
    assert {r[0] for r in rows} == {96}
    assert [r[1] for r in rows] == [160 * frames_per_packet * k for k in range(len(rows))]
    assert sorted(r[2] for r in rows) == sorted(8 + 12 + b for b in media.payload_bytes)
    # 148 bits: 19 bytes, + CMR + TOC (the last packet may hold fewer frames)
    assert set(media.payload_bytes[:-1]) == {frames_per_packet * (2 + 19)}
    announced = with_sdp(out / "forward.pcap", tmp_path / "sdp.pcap", "96 AMR/8000", "octet-align=1")
    fields = tshark(announced, "-Y", "amr", "-T", "fields", "-E", "aggregator=;", "-e", "amr.nb.cmr", "-e", "amr.toc.f",
                    "-e", "amr.nb.toc.ft", "-e", "amr.toc.q", "-e", "rtp.padding.count").splitlines()
    assert len(fields) == len(rows)
    for i, line in enumerate(fields):
        cmr, f, ft, q, pad = line.split("\t")
        k = len(ft.split(";"))  # frames in this packet
        assert k == frames_per_packet or i == len(fields) - 1
        assert (cmr, f, ft, q) == ("15", ";".join(["1"] * (k - 1) + ["0"]), ";".join(["4"] * k), ";".join(["1"] * k))
        assert pad == ("" if k == 1 else str(k - 1))
    experts = tshark(announced, "-Y", "amr.not_enough_data_for_frames or amr.superfluous_data or _ws.malformed")
    assert experts.strip() == ""
    assert stream_jitter_ms(announced) == ("AMR", len(rows), 0.0)


def test_token_systems_keep_their_24khz_clock(tmp_path):
    """synthetic (and LargeSC) declare no RTP clock: their sample rate, 1920 per 80 ms frame."""
    out, _ = run(tmp_path, overrides=["outputs.pcap=true", "duration_s=4", "packetization.frames_per_packet=2"])
    rows = rtp_rows(out / "forward.pcap")
    assert {r[0] for r in rows} == {96} and [r[1] for r in rows] == [3840 * k for k in range(len(rows))]
