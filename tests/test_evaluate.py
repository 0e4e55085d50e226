"""`simlab train evaluate`, the model card's command: the whole command on one dev utterance
against its tables' invariants, its statistics (paired differences) and the controller
diagnostic against the streaming controller."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from simlab.errors import UserError
from simlab.train import data as train_data
from simlab.train.config import load_config

SMALL = Path(__file__).resolve().parents[1] / "simlab" / "models" / "small"


# -- the whole command -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.skipif(not train_data.speech_available("dev"), reason="real speech ../shared/speech/dev is absent")
@pytest.mark.skipif(not (SMALL / "profile.yaml").is_file(), reason="no shipped small weights")
def test_evaluate_runs_end_to_end_and_its_tables_hold_their_invariants(tmp_path):
    from simlab.train.evaluate import evaluate

    config = load_config("evaluate", overrides={
        "utterances": 1, "uniform_losses": [0.2], "compare_losses": [0.3], "p_hats": [0.0, 0.3],
        "quantizers": [2, 8], "compare_draws": 2, "out_dir": str(tmp_path)})
    md = evaluate(config)
    assert torch.is_grad_enabled()  # the caller's autograd mode is left as it was
    r = json.loads((tmp_path / "evaluation.json").read_text())
    assert md.read_text().startswith("Dev utterances: 1 ")
    assert [x["K"] for x in r["codec"]["rows"]] == list(range(1, 9))
    assert [x["bitrate_bps"] for x in r["codec"]["rows"]] == [k * 11 * 12.5 for k in range(1, 9)]
    assert all(1.0 <= x["visqol"] <= 5.0 for x in r["codec"]["rows"])
    rows = r["concealment"]
    assert {x["concealer"] for x in rows} == {"lm", "lm p>=0.3", "repeat", "drop"}
    for channel in {(x["channel"], x["loss"]) for x in rows}:
        same = [x for x in rows if (x["channel"], x["loss"]) == channel]
        assert len({x["lost_tokens"] for x in same}) == 1 and same[0]["lost_tokens"] > 0  # one loss draw
        drop = next(x for x in same if x["concealer"] == "drop")
        # every token sent once and whole packets lost: leaving out loses the whole latent
        assert drop["token_accuracy"] == 0.0 and drop["latent_nmse"] == pytest.approx(1.0)
        assert all(0.0 <= x["token_accuracy"] <= 1.0 and x["latent_nmse"] >= 0.0 for x in same)
    assert all(len(x["visqol_per_utterance"]) == 1 for x in rows + r["controller"]["compare"])
    assert "| Δ ViSQOL | Δ PLCMOS |" in md.read_text()
    c = r["controller"]
    learned, *fixed = c["compare"]
    assert learned["controller"] == "learned" and fixed
    for x in fixed:  # "equal copies": the fixed controller sends the learned one's mean, rounded
        assert abs(x["payload_bps"] - learned["payload_bps"]) <= 0.5 * 11 * 12.5 + 1e-6


def test_evaluate_refuses_bad_counts_before_loading_anything(tmp_path):
    from simlab.train.evaluate import evaluate

    for key, value in (("compare_draws", 0), ("utterances", 2.5), ("min_confidence", 1.5)):
        with pytest.raises(UserError, match=f"config {key}={value!r}: must be"):
            evaluate(load_config("evaluate", overrides={key: value, "out_dir": str(tmp_path / "out")}))
    assert not (tmp_path / "out").exists()


def test_paired_difference_is_the_mean_difference_and_its_standard_error_over_finite_pairs():
    from simlab.train.evaluate_markdown import paired_difference

    mean, se = paired_difference([2.0, 2.5, 3.0, float("nan")], [1.0, 2.0, 2.0, 1.0])
    assert mean == pytest.approx(5 / 6)
    assert se == pytest.approx(np.std([1.0, 0.5, 1.0], ddof=1) / math.sqrt(3))
    assert paired_difference([1.0, 2.0], [1.0, 2.0]) == (0.0, 0.0)
    assert math.isnan(paired_difference([1.0], [0.0])[1])


# -- the controller diagnostic (`simlab.train.evaluate.controller_stats`) --------------------
def test_frame_classes_split_by_level_below_the_loudest_frame():
    from simlab.models.mimi_config import FRAME_SAMPLES
    from simlab.train.evaluate import frame_classes

    amp = np.array([1.0, 1e-3, 0.1, 1.0, 0.02])  # 0, -60, -20, 0, -34 dB
    audio = np.repeat(amp, FRAME_SAMPLES) * np.tile([1.0, -1.0], 5 * FRAME_SAMPLES // 2)
    silence, speech = frame_classes(audio, silence_db=40, speech_db=25)
    assert silence.tolist() == [False, True, False, False, False]
    assert speech.tolist() == [True, False, True, True, False]


def test_controller_stats_count_what_the_streaming_controller_sends():
    from simlab.actors.controller import AdaptiveController
    from simlab.models.mimi_config import FRAME_SAMPLES
    from simlab.train import simulate as sim
    from simlab.train.evaluate import controller_stats

    rng = np.random.default_rng(0)
    ctrl = AdaptiveController(seed=1).eval()
    with torch.no_grad():  # spread the importances over (0, 1) so masks vary across frames and L
        ctrl.adapter[2].weight.mul_(20)
    utts = []
    for T in (30, 17):
        amp = np.where(rng.random(T) < 0.3, 1e-4, 1.0)
        utts.append({"audio": np.repeat(amp, FRAME_SAMPLES) * rng.standard_normal(T * FRAME_SAMPLES),
                     "latents": rng.standard_normal((T, 512)).astype(np.float32)})
    config = {"silence_db": 40, "speech_db": 25, "quantizers": [1, 8, 16], "p_hats": [0.0, 0.4]}
    stats = controller_stats(ctrl, utts, config)
    for row in stats["rates"]:
        m = np.concatenate([sim.controller_masks(ctrl, u["latents"], row["p_hat"], row["L"]) for u in utts])
        assert row["tokens_sent"] == pytest.approx((m >= 1).sum(1).mean())
        assert row["doubled"] == pytest.approx((m == 2).sum(1).mean())
        assert row["copies"] == pytest.approx(row["tokens_sent"] + row["doubled"])
        assert row["payload_bps"] == pytest.approx(row["copies"] * 11 * 12.5)
        assert row["tokens_sent"] <= min(row["L"], 8)
    bps = [r["payload_bps"] for r in stats["rates"]]
    assert stats["payload_range_bps"] == [min(bps), max(bps)] and min(bps) < max(bps)
    s0 = stats["silence_speech_p0.0"]
    silent = sum(int((np.abs(u["audio"].reshape(-1, FRAME_SAMPLES)).max(1) < 0.01).sum()) for u in utts)
    assert s0["silence_frames"] == silent and s0["silence_frames"] + s0["speech_frames"] == 47
    assert [r["p_hat"] for r in stats["importances"]] == [0.0, 0.4]
    assert all(0 < r[k] < 1 for r in stats["importances"] for k in ("I_s_silence", "I_c_speech"))
