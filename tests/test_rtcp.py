"""RTCP receiver reports (feedback.accounting: rtcp | rtcp_reduced): their sizes against RFC 3550
and RFC 5506, what they cost, and the two captures (forward.pcap at the sender, receiver.pcap at
the receiver) that tshark decodes, with the reports' fields as the receiver saw them."""
import bisect
import shutil
import struct
import subprocess

import dpkt
import pandas as pd
import pytest

from helpers import run, tables
from simlab.report.pcap import EPOCH
from simlab.rtcp import RR_BYTES, SDES_BYTES, ReceptionReport, app_bytes, cname, compound, rtcp_bytes

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (install.sh installs it)")

LOSSY = ["duration_s=20", "outputs.pcap=true", "network.forward.loss={model: gilbert_elliott, loss: 0.2, burst: 3}",
         "network.forward.jitter_s=0.01", "network.reverse.loss.p=0.1"]


def test_sizes_against_the_rfcs():
    # RFC 3550 6.4.2: RR header 4 + reporter SSRC 4 + one report block 24.
    assert RR_BYTES == 32
    # 6.5: SDES header 4 + chunk (SSRC 4 + CNAME type 1, length 1, 16 characters + a null octet, padded to 32 bits).
    assert SDES_BYTES == 4 + 4 + 20 == 28
    assert all(len(cname(k)) == 16 for k in range(100)) and len({cname(k) for k in range(100)}) == 100
    assert rtcp_bytes(1) == 60 and rtcp_bytes(1, reduced=True) == 32
    assert app_bytes(2) == 16 and rtcp_bytes(2) == 76 and rtcp_bytes(5, reduced=True) == 32 + 20
    for n, reduced in [(1, False), (1, True), (2, False), (3, True), (8, False)]:
        app = bytes(n) if n > 1 else None
        assert len(compound(3, ReceptionReport(7, 5, 99, app, reduced), 12)) == rtcp_bytes(n, reduced)


def test_the_report_block_fields():
    raw = compound(2, ReceptionReport(200, -3, 70000, None, True), 44)
    v, pt, length, ssrc, media, word, ext, jitter, lsr, dlsr = struct.unpack("!BBHIIIIIII", raw)
    assert (v, pt, length) == (0x81, 201, 7) and (ssrc, media) == (0x5EC00002, 0x51A2)
    assert word >> 24 == 200 and word & 0xFFFFFF == (-3) & 0xFFFFFF
    assert (ext, jitter, lsr, dlsr) == (70000, 44, 0, 0)


@pytest.mark.parametrize("overrides,per_report", [
    (["feedback.accounting=rtcp"], 28 + 60),
    (["feedback.accounting=rtcp_reduced"], 28 + 32),
    (["feedback.accounting=rtcp", "feedback.report_bytes=2"], 28 + 76),
    (["feedback.accounting=rtcp_reduced", "network.headers=ipv6"], 48 + 32),
])
def test_control_rate(tmp_path, overrides, per_report):
    """A report every 100 ms: 1 B of payload is 80 bit/s; as RTCP in UDP/IPv4 7040 (compound) or 4800
    bit/s (reduced-size)."""
    _, s = run(tmp_path, overrides=["duration_s=10", *overrides])
    assert s["ctrl_bps"] == pytest.approx(per_report * 8 * 10)
    assert s["eq24_total_bps"] == pytest.approx(s["total_bps"], rel=0.005)


def _rtp_and_rtcp(path):
    """(RTP rows: time, seq, timestamp), (RTCP rows: time, raw RTCP bytes) of a capture, in file order."""
    rtp, rtcp = [], []
    with open(path, "rb") as fh:
        for ts, buf in dpkt.pcap.Reader(fh):
            udp = dpkt.ethernet.Ethernet(buf).data.data
            data = bytes(udp.data)
            if udp.dport % 2 == 0:
                seq, rts = struct.unpack("!HI", data[2:8])
                rtp.append((ts - EPOCH, seq, rts))
            else:
                rtcp.append((ts - EPOCH, data))
    return rtp, rtcp


def _rfc3550_jitter(arrivals, clock):
    """RFC 3550 A.8 over (arrival time, RTP timestamp) pairs, in arrival order."""
    j, last = 0, None
    out = []
    for t, rts in arrivals:
        transit = round(t * clock) - rts
        if last is not None:
            d = abs(transit - last)
            j += d - ((j + 8) >> 4)
        last = transit
        out.append(j >> 4)
    return out


def test_receiver_capture_and_report_fields(tmp_path):
    out, s = run(tmp_path, overrides=[*LOSSY, "feedback.accounting=rtcp"])
    pk, fr, _ = tables(out)
    media = pk[pk.kind != "feedback"]
    delivered = media[(media.lost == 0) & (media.dropped == 0)].sort_values("arrival_s", kind="stable")
    reports = pk[pk.kind == "feedback"].sort_values("seq")
    rtp, rtcp = _rtp_and_rtcp(out / "receiver.pcap")
    # Exactly the delivered packets, at their arrival times; every report, at its sending time.
    assert sorted(r[1] for r in rtp) == sorted(delivered.seq) and len(delivered) < len(media)
    assert [r[0] for r in rtp] == pytest.approx(delivered.arrival_s.tolist(), abs=1e-6)
    assert [r[0] for r in rtcp] == pytest.approx(reports.send_s.tolist(), abs=1e-6)
    with open(out / "receiver.pcap", "rb") as fh:
        times = [ts for ts, _ in dpkt.pcap.Reader(fh)]
    assert times == sorted(times) and len(times) == len(delivered) + len(reports)
    # Each report's block, from the media that had arrived before it was sent.
    arr_t = [r[0] for r in rtp]
    jitter = _rfc3550_jitter([(t, rts) for t, _, rts in rtp], 24000)
    for t, raw in rtcp:
        n = bisect.bisect_left(arr_t, t - 1e-7)
        word, ext, jit = struct.unpack("!III", raw[12:24])
        seqs = [r[1] for r in rtp[:n]]
        assert ext == (max(seqs) if seqs else 0)
        assert word & 0xFFFFFF == ((max(seqs) + 1 - len(seqs)) if seqs else 0)
        assert abs(jit - (jitter[n - 1] if n else 0)) <= 1
    # The sender's side: every media packet as sent, the reports that reached it as they arrived,
    # and p-hat at each frame is the fraction lost of the newest report there by then.
    rtp_s, rtcp_s = _rtp_and_rtcp(out / "forward.pcap")
    assert [r[1] for r in rtp_s] == media.seq.tolist()
    back = reports[(reports.lost == 0) & (reports.dropped == 0)]
    assert [r[0] for r in rtcp_s] == pytest.approx(sorted(back.arrival_s), abs=1e-6)
    arrived = sorted(back.arrival_s)
    values = [(raw[12] / 256) for _, raw in rtcp_s]
    for cap, p in zip(fr.capture_s + 0.08, fr.p_hat):
        i = bisect.bisect_right(arrived, cap + 1e-9)
        assert p == (values[i - 1] if i else 0.0)
    assert max(values) > 0.05


@needs_tshark
@pytest.mark.parametrize("accounting,sdes", [("rtcp", True), ("rtcp_reduced", False)])
def test_tshark_decodes_the_reports(tmp_path, accounting, sdes):
    out, _ = run(tmp_path, overrides=[*LOSSY, f"feedback.accounting={accounting}"])
    pk, _, _ = tables(out)
    media = pk[pk.kind != "feedback"]
    delivered = media[(media.lost == 0) & (media.dropped == 0)]
    _, raw = _rtp_and_rtcp(out / "receiver.pcap")
    r = subprocess.run(["tshark", "-r", str(out / "receiver.pcap"), "-d", "udp.port==5005,rtcp", "-d",
                        "udp.port==5004,rtp", "-Y", "rtcp", "-T", "fields", "-E", "separator=;", "-e", "rtcp.pt",
                        "-e", "rtcp.ssrc.identifier", "-e", "rtcp.ssrc.fraction", "-e", "rtcp.ssrc.cum_nr",
                        "-e", "rtcp.ssrc.high_seq", "-e", "rtcp.ssrc.jitter", "-e", "rtcp.sdes.text",
                        "-e", "rtcp.length_check"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [line.split(";") for line in r.stdout.splitlines() if line]
    assert len(rows) == len(raw) == (pk.kind == "feedback").sum()
    for (pt, ident, frac, cum, high, jit, text, ok), (_, b) in zip(rows, raw):
        assert pt == ("201,202" if sdes else "201") and ok == "1"
        assert ident.split(",") == (["0x000051a0", "0x5ec00000"] if sdes else ["0x000051a0"])
        assert int(frac) == b[12] and int(high) == struct.unpack("!I", b[16:20])[0]
        assert int(cum) == struct.unpack("!I", b[12:16])[0] & 0xFFFFFF and int(jit) == struct.unpack("!I", b[20:24])[0]
        assert (len(text) == 16) == sdes
    highs = [int(r[4]) for r in rows]
    assert highs == sorted(highs) and delivered.seq.max() - 2 <= highs[-1] <= delivered.seq.max()
    assert len({int(f) for _, _, f, *_ in rows}) > 3  # p-hat moved


@needs_tshark
def test_app_carries_a_longer_report(tmp_path):
    out, _ = run(tmp_path, overrides=[*LOSSY, "duration_s=5", "feedback.accounting=rtcp", "feedback.report_bytes=2"])
    r = subprocess.run(["tshark", "-r", str(out / "receiver.pcap"), "-d", "udp.port==5005,rtcp", "-Y", "rtcp",
                        "-T", "fields", "-e", "rtcp.pt", "-e", "rtcp.app.name", "-e", "rtcp.ssrc.fraction",
                        "-e", "rtcp.app.data"], capture_output=True, text=True, timeout=120)
    rows = [line.split("\t") for line in r.stdout.splitlines() if line]
    assert rows and all(pt == "201,202,204" and name == "SLAB" for pt, name, _, _ in rows)
    for _, _, frac, data in rows:  # 16-bit p-hat, then padding to 32 bits
        v = int(data[:4], 16)
        assert len(data) == 8 and data[4:] == "0000" and int(frac) == min(255, round(v / 65535 * 256))


def test_many_flows_in_time_order_and_reproducible(tmp_path):
    over = [*LOSSY, "duration_s=8", "flows=3", "feedback.accounting=rtcp", "network.reverse.jitter_s=0.03",
            "network.start_offsets={model: even, max_s: 1.5}"]
    a, _ = run(tmp_path, overrides=over, name="a")
    b, _ = run(tmp_path, overrides=over, name="b")
    pk, _, _ = tables(a)
    for name in ("forward.pcap", "receiver.pcap"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
        with open(a / name, "rb") as fh:
            ts = [t for t, _ in dpkt.pcap.Reader(fh)]
        assert ts == sorted(ts)
    rtp, rtcp = _rtp_and_rtcp(a / "receiver.pcap")
    assert len(rtcp) == (pk.kind == "feedback").sum()
    assert len(rtp) == ((pk.kind != "feedback") & (pk.lost == 0) & (pk.dropped == 0)).sum()


@pytest.mark.parametrize("which,files", [("sender", {"forward.pcap"}), ("receiver", {"receiver.pcap"}),
                                         ("both", {"forward.pcap", "receiver.pcap"})])
def test_pcap_sides(tmp_path, which, files):
    out, _ = run(tmp_path, overrides=["duration_s=3", f"outputs.pcap={which}"])
    assert {p.name for p in out.glob("*.pcap")} == files


def test_payload_accounting_sends_no_rtcp(tmp_path):
    out, _ = run(tmp_path, overrides=["duration_s=3", "outputs.pcap=true"])
    for name in ("forward.pcap", "receiver.pcap"):
        assert not _rtp_and_rtcp(out / name)[1]


def test_capture_memory_stays_flat(tmp_path, monkeypatch):
    """The capture's heaps hold what can still be preceded (a report interval, the reverse delay),
    not the run."""
    from simlab.report import pcap

    most = [0]
    push = pcap._Writer.push

    def counting(self, t, frame):
        push(self, t, frame)
        most[0] = max(most[0], len(self))

    monkeypatch.setattr(pcap._Writer, "push", counting)
    run(tmp_path, overrides=[*LOSSY, "duration_s=120", "flows=2", "feedback.accounting=rtcp"])
    assert most[0] < 20


def test_the_two_captures_give_the_calls_fates(tmp_path):
    """forward.pcap and receiver.pcap are the pair `simlab trace from-pcap` reads: every packet's
    delay and loss as packets.csv has them (RTCP in both files is left out by the reader)."""
    from simlab.pcap_fates import fates_from_pcaps

    out, _ = run(tmp_path, overrides=[*LOSSY, "feedback.accounting=rtcp"])
    pk, _, _ = tables(out)
    media = pk[pk.kind != "feedback"]
    f = fates_from_pcaps(out / "forward.pcap", out / "receiver.pcap")
    assert f.seqs == media.seq.tolist() and f.lost == int((media.lost | media.dropped).sum()) > 0
    want = (media.arrival_s - media.send_s).tolist()
    assert [d if d is not None else float("nan") for d in f.delays] == pytest.approx(want, abs=2e-6, nan_ok=True)


def test_rfc3550_interval_rule():
    """RFC 3550 A.7: 5 % of the session bandwidth, receivers' share, 5 s minimum (halved at first),
    reduced minimum 360 / kbit/s, randomised by [0.5, 1.5] / (e - 3/2); with reconsideration the
    intervals average the deterministic one."""
    import math

    import numpy as np

    from simlab.sim.rtcp_interval import Rfc3550Interval

    rng = np.random.default_rng(3)
    assert Rfc3550Interval(64000, 88, rng).deterministic_s() == 5.0  # 2 x 88 B / 400 B/s = 0.44 s < 5 s
    assert Rfc3550Interval(64000, 88, rng).deterministic_s(initial=True) == 2.5
    assert Rfc3550Interval(2000, 88, rng).deterministic_s() == pytest.approx(2 * 88 / (0.05 * 2000 / 8))  # 14.08 s
    assert Rfc3550Interval(144000, 88, rng, reduced_minimum=True).deterministic_s() == pytest.approx(2.5)
    # Ten members, one sender: the nine receivers share 75 % of the RTCP bandwidth.
    assert Rfc3550Interval(8000, 100, rng, members=10).deterministic_s() == pytest.approx(9 * 100 / (0.75 * 50))
    rule = Rfc3550Interval(64000, 88, rng)
    gaps, tp = [], 0.0
    for _ in range(50000):
        tn = rule.next_due(tp)
        gaps.append(tn - tp)
        tp = tn
    assert np.mean(gaps) == pytest.approx(5.0, rel=0.01)
    assert 5 * 0.5 / (math.e - 1.5) <= min(gaps) and max(gaps) <= 5 * 1.5 / (math.e - 1.5)


def test_rfc3550_interval_in_a_run(tmp_path):
    over = ["duration_s=1200", "feedback.accounting=rtcp", "feedback.interval=rfc3550", "feedback.session_bps=2000"]
    out, s = run(tmp_path, overrides=over)
    pk, _, _ = tables(out)
    sent = pk[pk.kind == "feedback"].send_s.to_numpy()
    assert (sent[1:] - sent[:-1]).mean() == pytest.approx(14.08, rel=0.1)
    assert s["ctrl_bps"] == pytest.approx(88 * 8 / 14.08, rel=0.1)
    assert s["eq24_total_bps"] - s["total_bps"] == pytest.approx(88 * 8 / 14.08 - s["ctrl_bps"], abs=0.5)
    _, again = run(tmp_path, overrides=over, name="again")
    assert (out / "packets.csv").read_bytes() == (tmp_path / "again" / "packets.csv").read_bytes()


def test_new_feedback_keys_are_neutral_in_run_keys():
    from helpers import scenario
    from simlab.batch.expand import run_key

    resolved = scenario("eq24").resolved()
    plain = {**resolved, "feedback": {k: v for k, v in resolved["feedback"].items()
                                      if k not in ("interval", "session_bps", "reduced_minimum")}}
    assert run_key(resolved) == run_key(plain)
