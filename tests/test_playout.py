"""The jitter buffer: a fixed deadline, or an adaptive (NetEq-like) one whose delay follows a
high quantile of what recent packets needed, moving at most a bounded step per frame."""
import numpy as np
import pytest

import simlab
from simlab.errors import UserError
from simlab.sim.playout import AdaptivePlayout, FixedPlayout

JITTERY = {"duration_s": 60, "seed": 3, "receiver": {"playout_delay_s": 0.4},
           "network": {"forward": {"delay_s": 0.05, "jitter_s": 0.04}}}


def _adaptive(**kw):
    return {**JITTERY, "receiver": {"playout_delay_s": 0.4, "jitter_buffer": {"kind": "adaptive", **kw}}}


def test_adaptive_delay_converges_to_the_quantile_plus_margin_at_the_stretch_rate():
    p = AdaptivePlayout(0.4, frame_s=0.08, quantile=0.9, window_s=1.0, margin_s=0.01, stretch=0.25)
    delays = []
    for n in range(40):
        p.observe(n * 0.08, 0.2)  # every packet needed 200 ms
        delays.append(p.next_delay(n * 0.08 + 1e-9))
    steps = np.abs(np.diff([0.4] + delays))
    assert steps.max() <= 0.25 * 0.08 + 1e-12
    assert delays[-1] == pytest.approx(0.21)
    assert FixedPlayout(0.3).next_delay(5.0) == 0.3


def test_adaptive_buffer_holds_what_jitter_needs_not_the_fixed_deadline():
    fixed = simlab.run(JITTERY)
    adaptive = simlab.run(_adaptive())
    s, a = fixed.summary, adaptive.summary
    assert s["latency_mean_s"] == pytest.approx(0.4) and s["packets_late"] == 0
    # Packets leave 160 ms after their first frame's capture and cross in 50 ± 40 ms: the 95 %
    # quantile of what they need is under 250 ms, plus the 10 ms margin.
    assert 0.2 < a["latency_mean_s"] < 0.27 < s["latency_mean_s"]
    assert a["latency_p95_s"] > a["latency_mean_s"]  # mean and p95 now mean what they say
    assert a["packets_late"] / a["packets_sent"] < 0.05
    d = adaptive.frames["playout_delay_s"].astype(float).to_numpy()
    assert d[0] == pytest.approx(0.4) and np.abs(np.diff(d)).max() <= 0.1 * 0.08 + 1e-12
    late_frames = adaptive.frames["tokens_late"].astype(int).sum()
    assert late_frames > 0  # the price of a shorter buffer, counted


def test_adaptive_runs_are_reproducible_and_fixed_runs_have_no_delay_column():
    a, b = simlab.run(_adaptive()), simlab.run(_adaptive())
    assert a.frames.equals(b.frames) and a.packets.equals(b.packets)
    assert "playout_delay_s" not in simlab.run(JITTERY).frames


def test_bad_adaptive_settings_are_one_line_errors():
    with pytest.raises(UserError, match="receiver.jitter_buffer: min_s: 0.5 is above max_s"):
        simlab.load_scenario(_adaptive(min_s=0.5, max_s=0.1))
    with pytest.raises(UserError, match=r"receiver.jitter_buffer.stretch: 0.9 is not in \[0.01, 0.5\]"):
        simlab.load_scenario(_adaptive(stretch=0.9))
