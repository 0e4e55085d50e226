"""Determinism and token bookkeeping: no token counted twice, none lost silently."""
import filecmp

import numpy as np
import pytest

from helpers import run, tables

GE = ["network.forward.loss={model: gilbert_elliott, loss: 0.2, burst: 3}", "duration_s=30"]


def test_same_seed_same_bytes(tmp_path):
    a, _ = run(tmp_path, overrides=GE + ["network.forward.jitter_s=0.03"], name="a")
    b, _ = run(tmp_path, overrides=GE + ["network.forward.jitter_s=0.03"], name="b")
    for f in ("packets.csv", "frames.csv", "summary.csv"):
        assert filecmp.cmp(a / f, b / f, shallow=False), f
    c, _ = run(tmp_path, overrides=GE + ["network.forward.jitter_s=0.03", "seed=2"], name="c")
    assert not filecmp.cmp(a / "packets.csv", c / "packets.csv", shallow=False)


@pytest.mark.parametrize("extra", [
    [],
    ["system.redundant=3", "packetization.redundancy=next"],
    ["system.redundant=3", "packetization.redundancy=own", "packetization.interleave=true"],
    ["system.quantizers=5", "system.redundant=2", "packetization.redundancy=same", "packetization.interleave=true"],
    ["network.forward.jitter_s=0.05", "receiver.playout_delay_s=0.2"],
    ["network.forward.bandwidth_bps=2500", "network.forward.queue_packets=2"],
    ["system.quantizers=0"],  # nothing to send: no packets, and the decomposition still adds up
])
def test_tokens_balance(tmp_path, extra):
    out, s = run(tmp_path, overrides=GE + extra)
    pk, fr, _ = tables(out)
    assert (fr.tokens_sent == fr.tokens_received + fr.tokens_lost + fr.tokens_late).all()
    assert (fr.tokens_lost >= 0).all() and (fr.tokens_late >= 0).all()
    assert fr.frame.tolist() == list(range(len(fr)))  # every frame once, in order
    assert s["tokens_sent"] == fr.tokens_sent.sum()
    media = pk[pk.kind != "feedback"]
    assert s["packets_sent"] == len(media)
    assert s["packets_late"] == media.late.sum()
    assert (media.payload_bytes > 0).all()  # no header-only packets
    # Latency decomposition adds up: the components are the whole mouth-to-ear time.
    parts = fr[["t_context_s", "t_encoder_s", "t_ra_s", "t_wait_s", "t_lm_s", "t_decoder_s"]].sum(axis=1)
    parts += fr.t_transmit_s.fillna(0)
    assert np.allclose(parts, fr.latency_s, atol=1e-9)


def test_lost_tokens_match_lost_packets(tmp_path):
    """With one copy per token and no interleaving, a frame's tokens are lost exactly when
    its packet is: tokens_lost = 8 x frames_per_packet x packets lost."""
    out, s = run(tmp_path, overrides=GE)
    pk, fr, _ = tables(out)
    media = pk[pk.kind == "media"]
    assert fr.tokens_lost.sum() == 8 * 2 * media.lost.sum()
    assert fr.tokens_late.sum() == 0
    lost_frames = set()
    for f0 in media[media.lost == 1].first_frame:
        lost_frames |= {f0, f0 + 1}
    assert set(fr.frame[fr.tokens_lost > 0]) == lost_frames


def test_late_packets(tmp_path):
    """A playout deadline shorter than the path: every packet is late, none received."""
    out, s = run(tmp_path, overrides=["duration_s=5", "receiver.playout_delay_s=0.05", "packetization.redundancy=same",
                                      "network.forward.loss.p=0"])
    pk, fr, _ = tables(out)
    assert s["packets_late"] == s["packets_sent"]
    assert (fr.tokens_late == fr.tokens_sent).all() and fr.tokens_received.sum() == 0


def test_feedback_tracks_loss_and_only_what_arrived(tmp_path):
    out, s = run(tmp_path, overrides=["network.forward.loss.p=0.2", "duration_s=120",
                                      "feedback.estimator={kind: window, window_s: 5}"])
    _, fr, _ = tables(out)
    assert fr.p_hat.iloc[len(fr) // 2:].mean() == pytest.approx(0.2, abs=0.04)
    # Every report lost on the way back: the sender never learns anything.
    out2, _ = run(tmp_path, name="deaf", overrides=["network.forward.loss.p=0.2", "duration_s=20",
                                                   "network.reverse.loss.p=1", "feedback.initial_p=0.05"])
    _, fr2, _ = tables(out2)
    assert (fr2.p_hat == 0.05).all()


def test_feedback_delay(tmp_path):
    """p-hat changes only after the first report could have come back."""
    out, _ = run(tmp_path, overrides=["network.forward.loss.p=0.5", "duration_s=10", "network.reverse.delay_s=2.0"])
    _, fr, _ = tables(out)
    ready = fr.capture_s + 0.08
    assert (fr.p_hat[ready < 2.1] == 0).all()
    assert (fr.p_hat[ready > 3] > 0).all()


def test_feedback_never_reads_a_report_still_in_flight(tmp_path):
    """With thousands of reports on the way back (1 ms interval, 2 s reverse delay) the sender
    still sees only what has arrived: before the first report lands, nothing."""
    out, _ = run(tmp_path, overrides=["network.forward.loss.p=0.3", "duration_s=6", "feedback.interval_s=0.001",
                                      "network.reverse.delay_s=2.0"])
    _, fr, _ = tables(out)
    ready = fr.capture_s + 0.08
    assert (fr.p_hat[ready < 2.0] == 0).all()
    assert (fr.p_hat[ready > 3] > 0).all()  # and once they land, it hears of the loss
