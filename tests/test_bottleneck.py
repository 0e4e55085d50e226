"""network.bottleneck: flows crossing one shared link (a FIFO, a bandwidth, a loss process)
against flows with links of their own."""
import filecmp

import numpy as np
import pytest

from helpers import run, tables

# eq24's packets: 24 B payload + 40 B IPv4/UDP/RTP every 160 ms = 3,200 bit/s per flow
TWO_CALLS = ["flows=2", "duration_s=40", "network.forward.loss.p=0", "network.forward.bandwidth_bps=5000",
             "network.forward.queue_packets=5"]


def test_one_flow_on_a_shared_lossless_link_is_the_same_run(tmp_path):
    base = ["duration_s=10", "network.forward.loss.p=0"]
    a, _ = run(tmp_path, overrides=base, name="own")
    b, _ = run(tmp_path, overrides=base + ["network.bottleneck=shared"], name="shared")
    for f in ("packets.csv", "frames.csv"):
        assert filecmp.cmp(a / f, b / f, shallow=False), f


def test_calls_through_one_bottleneck_queue_and_drop_together(tmp_path):
    _, own = run(tmp_path, overrides=TWO_CALLS, name="own")
    out, shared = run(tmp_path, overrides=TWO_CALLS + ["network.bottleneck=shared"], name="shared")
    # each call alone fits its own 5 kbit/s link; together they offer 6.4 kbit/s to one
    assert own["packets_dropped"] == 0
    assert shared["packets_dropped"] / shared["packets_sent"] == pytest.approx(1 - 5000 / 6400, abs=0.03)
    pk, _, _ = tables(out)
    media = pk[(pk.kind == "media") & (pk.dropped == 0)].sort_values("send_s")
    assert set(media.flow) == {0, 1}
    # FIFO at the bottleneck: once it is busy, departures (arrival - delay) are one packet time apart
    # whichever flow they belong to, and never overlap
    departures = np.sort(media.arrival_s.to_numpy() - 0.02)
    gaps = np.diff(departures[len(departures) // 2:])
    assert gaps.min() >= 64 * 8 / 5000 - 1e-9
    assert np.median(gaps) == pytest.approx(64 * 8 / 5000)
    # the calls start together and send in lockstep, flow 0 first at each instant: the drop-tail
    # queue drops the later one's packets (a phase effect, documented)
    dropped = pk[(pk.kind == "media") & (pk.dropped == 1)]
    assert set(dropped.flow) == {1}


def test_a_shared_lossy_link_draws_one_loss_process(tmp_path):
    out, s = run(tmp_path, overrides=["flows=3", "duration_s=60", "network.bottleneck=shared",
                                      "network.forward.loss={model: uniform, p: 0.2}"])
    pk, _, _ = tables(out)
    media = pk[pk.kind == "media"]
    assert media.lost.mean() == pytest.approx(0.2, abs=0.03)
    assert s["packets_sent"] == len(media) == 3 * 375
