"""Loss reports that see an outage: with feedback.outage_s, a silence that long counts as loss
report by report, so p-hat rises during the outage instead of after it; the gap the returning
packets reveal is not counted twice; without it, reports are RTCP's (sequence gaps only)."""
import pytest

import simlab
from simlab.errors import UserError

OUTAGE = {"duration_s": 20, "seed": 1, "network": {"forward": {"delay_s": 0.03, "loss": {"model": "uniform", "p": 0.0},
          "schedule": [{"until_s": 8, "loss": {"model": "uniform", "p": 0.0}},
                       {"until_s": 11, "loss": {"model": "uniform", "p": 1.0}}]}}}


def _p_hat_at(frames, t):
    return float(frames.p_hat[frames.capture_s > t].iloc[0])


def test_p_hat_rises_during_an_outage_only_with_outage_detection():
    plain = simlab.run(OUTAGE).frames
    seen = simlab.run({**OUTAGE, "feedback": {"outage_s": 0.3}}).frames
    assert _p_hat_at(plain, 10.9) == 0.0  # no arrival, no sequence gap: RTCP sees nothing yet
    assert _p_hat_at(seen, 9.0) > 0.5 and _p_hat_at(seen, 10.9) > 0.9
    assert _p_hat_at(seen, 16.0) < 0.1  # decays once packets are back


def test_no_false_outage_and_no_double_count():
    clean = simlab.run({"duration_s": 20, "feedback": {"outage_s": 0.3}}).frames
    assert clean.p_hat.max() == 0.0  # packets every 160 ms never leave a 300 ms silence
    # After the outage the sequence gap (about 19 packets) is not added to what was assumed lost:
    # p-hat decays from its outage value instead of jumping up again.
    seen = simlab.run({**OUTAGE, "feedback": {"outage_s": 0.3}}).frames
    after = seen[(seen.capture_s > 11.2) & (seen.capture_s < 13)].p_hat.to_numpy()
    assert (after[1:] <= after[:-1] + 1e-9).all()


def test_outage_s_is_validated():
    with pytest.raises(UserError, match="outage_s"):
        simlab.load_scenario({"feedback": {"outage_s": 0}})
