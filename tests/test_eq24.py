"""Eq. (24): R_total = R_payload + N_pkt R_header + R_ctrl, as the link carried it."""
import math

import pytest

from helpers import run, tables


def test_eq24_ipv4_payload_accounting(tmp_path):
    out, s = run(tmp_path)
    pk, fr, summ = tables(out)
    assert s["header_bps"] == pytest.approx(2000, rel=0.005)
    assert s["ctrl_bps"] == pytest.approx(80, rel=0.005)
    assert s["total_bps"] == pytest.approx(s["payload_bps"] + s["header_bps"] + s["ctrl_bps"])
    assert s["eq24_total_bps"] == pytest.approx(s["total_bps"], rel=0.005)
    media = pk[pk.kind != "feedback"]
    # What the link carried, recounted from packets.csv.
    assert s["payload_bps"] == pytest.approx(media.payload_bytes.sum() * 8 / 60)
    assert s["header_bps"] == pytest.approx(media.header_bytes.sum() * 8 / 60)
    # Payload bits become whole bytes; 2 frames x 8 tokens x 11 bits + 2 x 8 bits of mask.
    assert (media.payload_bits == 2 * 8 * 11 + 16).all() and (media.payload_bytes == 24).all()
    assert summ["packets_sent"] == len(media) == 375


@pytest.mark.parametrize("headers,bps", [("ipv4", 2000), ("ipv6", 3000)])
def test_header_profiles(tmp_path, headers, bps):
    _, s = run(tmp_path, overrides=[f"network.headers={headers}", "duration_s=20"])
    assert s["header_bps"] == pytest.approx(bps, rel=0.005)


def test_rohc_refresh(tmp_path):
    _, s = run(tmp_path, overrides=["network.headers=rohc", "network.rohc={steady_bytes: 3, refresh_bytes: 44, "
                                                            "refresh_every: 25}", "duration_s=40"])
    per_packet = (44 + 24 * 3) / 25
    assert s["header_bps"] == pytest.approx(per_packet * 8 * 6.25, rel=0.005)


@pytest.mark.parametrize("accounting,rtcp_bytes", [("rtcp", 32 + 28), ("rtcp_reduced", 32)])
def test_rtcp_accounting(tmp_path, accounting, rtcp_bytes):
    out, s = run(tmp_path, overrides=[f"feedback.accounting={accounting}", "duration_s=20"])
    # A receiver report (RR 32 B; + SDES/CNAME 28 B in a compound, RFC 3550; alone, RFC 5506) in
    # UDP/IPv4 (28 B) every 100 ms: 88 B -> 7040 bit/s, 60 B -> 4800 bit/s (1 B of payload: 80 bit/s).
    assert s["ctrl_bps"] == pytest.approx((rtcp_bytes + 28) * 8 * 10)
    assert s["eq24_total_bps"] == pytest.approx(s["total_bps"], rel=0.005)
    pk, _, _ = tables(out)
    reports = pk[pk.kind == "feedback"]
    assert (reports.header_bytes == 28).all() and (reports.payload_bytes == rtcp_bytes).all()
    assert (reports.payload_bits == 8 * rtcp_bytes).all()


def test_redundancy_costs(tmp_path):
    base = ["system.redundant=2", "duration_s=20", "network.forward.loss.p=0"]
    _, same = run(tmp_path, overrides=base + ["packetization.redundancy=same"], name="same")
    _, nxt = run(tmp_path, overrides=base + ["packetization.redundancy=next"], name="next")
    _, own = run(tmp_path, overrides=base + ["packetization.redundancy=own"], name="own")
    # Same bits of tokens either way; 'own' pays a header per extra packet, 'next' pays latency.
    assert own["header_bps"] == pytest.approx(2 * same["header_bps"], rel=0.01)
    assert nxt["latency_mean_s"] == pytest.approx(same["latency_mean_s"] + 0.16, abs=1e-9)
    assert own["latency_mean_s"] == pytest.approx(same["latency_mean_s"], abs=1e-9)
    # Per packet: 2 frames x (8 + 2 doubled) tokens x 11 bits + 2 masks x 8 bits, in whole bytes.
    assert same["payload_bps"] == pytest.approx(math.ceil((2 * 10 * 11 + 16) / 8) * 8 * 6.25)


def test_no_wait_for_copies_that_are_never_sent(tmp_path):
    """`redundancy: next` makes the receiver wait a packet group for second copies, but only when
    the system sends any: without them the wait would be pure delay."""
    base = ["system.redundant=0", "duration_s=10", "network.forward.loss.p=0"]
    _, same = run(tmp_path, overrides=base + ["packetization.redundancy=same"], name="same0")
    _, nxt = run(tmp_path, overrides=base + ["packetization.redundancy=next"], name="next0")
    assert nxt["latency_mean_s"] == pytest.approx(same["latency_mean_s"], abs=1e-9)


def test_own_packets_are_outside_eq24(tmp_path):
    """eq. (24) counts one packet per frames_per_packet frames; `own` sends one more per packet
    with second copies, whose headers the carried total has and the prediction does not."""
    _, own = run(tmp_path, overrides=["system.redundant=2", "duration_s=20", "network.forward.loss.p=0",
                                      "packetization.redundancy=own"], name="own2")
    assert own["total_bps"] - own["eq24_total_bps"] == pytest.approx(own["header_bps"] / 2, rel=0.01)
