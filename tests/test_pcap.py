"""forward.pcap: the simulated packets as RTP/UDP/IP that tshark decodes as an RTP stream."""
import shutil
import subprocess

import pytest

from helpers import run, tables

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (.ci/run installs it)")


def tshark(path, *args):
    r = subprocess.run(["tshark", "-r", str(path), "-d", "udp.port==5004,rtp", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("headers", ["ipv4", "ipv6"])
def test_pcap_rtp_stream(tmp_path, headers):
    out, s = run(tmp_path, overrides=["outputs.pcap=true", "duration_s=20", f"network.headers={headers}",
                                      "system.redundant=2", "packetization.redundancy=own"])
    pk, _, _ = tables(out)
    media = pk[pk.kind != "feedback"]
    fields = tshark(out / "forward.pcap", "-Y", "rtp", "-T", "fields", "-e", "rtp.seq", "-e", "udp.length",
                    "-e", "frame.time_epoch").split("\n")
    rows = [f.split("\t") for f in fields if f.strip()]
    assert len(rows) == len(media) == s["packets_sent"]
    seqs = sorted(int(r[0]) for r in rows)
    assert seqs == sorted(media.seq.tolist())
    # UDP length = UDP header 8 + RTP 12 + payload bytes as accounted.
    by_seq = dict(zip(media.seq, media.payload_bytes))
    assert all(int(r[1]) == 8 + 12 + by_seq[int(r[0])] for r in rows)
    streams = tshark(out / "forward.pcap", "-q", "-z", "rtp,streams")
    assert f" {len(media)} " in streams or str(len(media)) in streams


def test_pcap_holds_every_flow(tmp_path):
    """Each call is its own RTP stream (UDP port 5004 + 2·flow, SSRC 0x51A0 + flow); it held flow 0 only."""
    out, s = run(tmp_path, overrides=["outputs.pcap=true", "duration_s=6", "flows=2"])
    pk, _, _ = tables(out)
    fields = tshark(out / "forward.pcap", "-T", "fields", "-e", "udp.dstport").split()
    media = pk[pk.kind != "feedback"]
    assert sorted(fields) == sorted(str(5004 + 2 * f) for f in media.flow)
