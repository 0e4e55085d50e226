"""The fate_trace link model and ``simlab trace from-pcap``: a per-packet record of delay or loss,
replayed in order; built from a sender-side and a receiver-side capture of one RTP stream
(matched by SSRC and sequence number), so that replaying it over simlab reproduces the
captured call's delays and losses packet by packet."""
import socket
import struct

import dpkt
import numpy as np
import pandas as pd
import pytest
import simpy

import simlab
from channels.uniform import Uniform
from simlab.cli import main
from simlab.errors import UserError
from simlab.packets import Packet
from simlab.pcap_fates import fates_from_pcaps
from simlab.sim.fate_trace import FateTraceLink, read_fates
from simlab.sim.link import LinkParams


def _link(delays, **kw):
    params = LinkParams(1e6, 0.5, Uniform(0.0, np.random.default_rng(0)), 0.3, None, np.random.default_rng(1))
    return FateTraceLink(simpy.Environment(), params, np.array(delays, dtype=float), **kw)


def _fates(link, n):
    out = []
    for i in range(n):
        p = Packet(0, i, "media", 40, 80, [])
        out.append(round(p.arrival_s - p.send_s, 9) if link.transmit(p, i * 0.02) else "lost")
    return out


def test_read_fates(tmp_path):
    f = tmp_path / "f.csv"
    f.write_text("# captured somewhere\nseq,delay_s\n7,0.031\n8,lost\n9,\n10,0.5\n")
    d = read_fates(f)
    assert d[0] == 0.031 and np.isnan(d[1]) and np.isnan(d[2]) and d[3] == 0.5
    for text, message in [("a,b\n1,2\n", "header seq,delay_s"), ("seq,delay_s\n1,-0.1\n", "row 2: delay_s '-0.1'"),
                          ("seq,delay_s\n", "no packets"), ("seq,delay_s\n1,soon\n", "row 2")]:
        f.write_text(text)
        with pytest.raises(ValueError, match=message):
            read_fates(f)


def test_replay_in_order_loop_and_after_end():
    # The link section's bandwidth, delay (0.5 s) and jitter are not used: the record holds them.
    assert _fates(_link([0.01, np.nan, 0.03]), 7) == [0.01, "lost", 0.03, 0.01, "lost", 0.03, 0.01]
    assert _fates(_link([0.01, 0.02], loop=False, after_end="lost"), 4) == [0.01, 0.02, "lost", "lost"]
    assert _fates(_link([0.01, 0.02, np.nan], loop=False, after_end="last_delay"), 5) == [0.01, 0.02, "lost",
                                                                                          0.02, 0.02]


def test_spec_needs_after_end_without_loop(tmp_path):
    f = tmp_path / "f.csv"
    f.write_text("seq,delay_s\n0,0.01\n")
    with pytest.raises(UserError, match="loop: false needs after_end"):
        simlab.load_scenario({"network": {"forward": {"link": {"model": "fate_trace", "file": str(f),
                                                               "loop": False}}}})


def _rtp_frame(ssrc, seq, udp_port=5004):
    rtp = struct.pack("!BBHII", 0x80, 96, seq & 0xFFFF, 0, ssrc) + b"x" * 20
    udp = dpkt.udp.UDP(sport=udp_port, dport=udp_port, data=rtp)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=socket.inet_aton("192.0.2.1"), dst=socket.inet_aton("192.0.2.2"), p=17, data=udp)
    ip.len = len(ip)
    return bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip))


def _write(path, records):
    with open(path, "wb") as fh:
        w = dpkt.pcap.Writer(fh, linktype=dpkt.pcap.DLT_EN10MB)
        for ts, frame in records:
            w.writepkt(frame, ts=ts)


def test_from_pcap_matches_by_ssrc_and_sequence_across_the_wrap(tmp_path):
    t0 = 1_767_225_600.0
    seqs = [(65530 + i) & 0xFFFF for i in range(12)]  # wraps after 65535
    sent = [(t0 + 0.02 * i, _rtp_frame(0xABC, s)) for i, s in enumerate(seqs)]
    sent += [(t0 + 0.02 * i + 0.001, _rtp_frame(0xDEF, i)) for i in range(3)]  # another stream
    delays = {i: 0.05 + 0.001 * i for i in range(12) if i not in (3, 7)}
    recv = sorted([(t0 + 0.02 * i + d, _rtp_frame(0xABC, seqs[i])) for i, d in delays.items()])
    recv.append((t0 + 1.0, _rtp_frame(0xABC, seqs[5])))  # a duplicate, later
    _write(tmp_path / "s.pcap", sent)
    _write(tmp_path / "r.pcap", recv)
    with pytest.raises(UserError, match="several RTP streams.*--ssrc"):
        fates_from_pcaps(tmp_path / "s.pcap", tmp_path / "r.pcap")
    f = fates_from_pcaps(tmp_path / "s.pcap", tmp_path / "r.pcap", ssrc=0xABC)
    assert f.seqs == list(range(65530, 65542)) and f.duplicates == 1 and f.unmatched == 0
    assert [d is None for d in f.delays] == [i in (3, 7) for i in range(12)]
    assert [round(d, 6) for d in f.delays if d is not None] == [round(d, 6) for d in delays.values()]
    with pytest.raises(UserError, match="before they were sent.*--clock-offset-s"):
        fates_from_pcaps(tmp_path / "s.pcap", tmp_path / "r.pcap", ssrc=0xABC, clock_offset_s=0.2)
    assert main(["trace", "from-pcap", str(tmp_path / "s.pcap"), str(tmp_path / "r.pcap"), "--ssrc", "0xabc",
                 "--clock-offset-s", "0.01", "--out", str(tmp_path / "f.csv")]) == 0
    d = read_fates(tmp_path / "f.csv")
    assert d[0] == pytest.approx(0.04, abs=1e-6) and np.isnan(d[3])


CALL = {"seed": 5, "duration_s": 20, "outputs": {"pcap": True}, "packetization": {"frames_per_packet": 1},
        "network": {"forward": {"bandwidth_bps": 5000, "delay_s": 0.04, "jitter_s": 0.1, "queue_packets": 1,
                                "loss": {"model": "gilbert_elliott", "loss": 0.1, "burst": 3}}}}


def test_a_capture_replays_packet_by_packet(tmp_path):
    """Run a call (jitter that reorders, bursty loss, a queue that drops), capture it at the sender
    (simlab's forward.pcap) and at the receiver (the same frames at their arrival times, the lost
    and dropped left out), build the fate trace and replay it: every packet's delay within the
    captures' microsecond timestamps, every loss, in place."""
    first = simlab.run(CALL, out=tmp_path / "first")
    pk = pd.read_csv(tmp_path / "first" / "packets.csv")
    media = pk[pk["kind"] != "feedback"].set_index("seq").sort_index()
    assert media["lost"].sum() > 5 and media["dropped"].sum() > 5
    assert (np.diff(media["arrival_s"].dropna().to_numpy()) < 0).sum() > 10  # reordered by jitter
    recv = []
    with open(tmp_path / "first" / "forward.pcap", "rb") as fh:
        for ts, frame in dpkt.pcap.Reader(fh):
            seq = struct.unpack("!H", bytes(dpkt.ethernet.Ethernet(frame).data.data.data)[2:4])[0]
            row = media.loc[seq]
            if not (row["lost"] or row["dropped"]):
                recv.append((ts + row["arrival_s"] - row["send_s"], frame))
    _write(tmp_path / "receiver.pcap", sorted(recv, key=lambda r: r[0]))
    assert main(["trace", "from-pcap", str(tmp_path / "first" / "forward.pcap"), str(tmp_path / "receiver.pcap"),
                 "--out", str(tmp_path / "fates.csv")]) == 0
    replay = {**CALL, "network": {"forward": {"link": {"model": "fate_trace", "file": str(tmp_path / "fates.csv"),
                                                       "loop": False, "after_end": "lost"}}}}
    again = simlab.run(replay, out=tmp_path / "replay")
    pk2 = pd.read_csv(tmp_path / "replay" / "packets.csv")
    m2 = pk2[pk2["kind"] != "feedback"].set_index("seq").sort_index()
    assert (m2.index == media.index).all()
    gone = (media["lost"] | media["dropped"]).astype(bool)
    assert (m2["lost"].astype(bool) == gone).all()
    d1 = (media["arrival_s"] - media["send_s"])[~gone]
    d2 = (m2["arrival_s"] - m2["send_s"])[~gone]
    assert np.abs(d1 - d2).max() < 2e-6
    assert again.summary["packets_lost"] == first.summary["packets_lost"] + first.summary["packets_dropped"]
    assert (m2["late"] == media["late"]).all()
