"""Fast checks of the metrics package: alignment, token accuracy, WER arithmetic, log-F0,
the registry's handling of bad names, missing packages and skipped inputs."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from simlab.errors import UserError
from simlab.metrics import (metric_names, align, bench_metrics, compute_metrics, estimate_lag,
                            token_accuracy, word_error_rate)
from simlab.metrics.base import METRIC_RATE, MetricInput
from simlab.metrics.registry import run_metric

SR = METRIC_RATE


def harmonic_tone(f0: float, seconds: float = 1.0, sr: int = SR) -> np.ndarray:
    """A voiced, speech-like tone: ten harmonics of f0 with falling amplitude."""
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 11))).astype(np.float32)


# --- alignment -----------------------------------------------------------------------------
@pytest.mark.parametrize("lag", [0, 1, 4000, -1234])
def test_estimate_lag_finds_the_shift(lag):
    x = np.random.default_rng(1).standard_normal(3 * SR).astype(np.float32)
    y = np.roll(x, lag)
    assert estimate_lag(x, y, SR, max_lag_s=1.0) == lag


def test_lag_search_is_bounded():
    x = np.random.default_rng(2).standard_normal(3 * SR).astype(np.float32)
    y = np.roll(x, int(1.5 * SR))
    assert abs(estimate_lag(x, y, SR, max_lag_s=1.0)) <= SR


def test_silence_has_no_lag_and_align_cuts_to_the_overlap():
    x = np.random.default_rng(3).standard_normal(SR).astype(np.float32)
    assert estimate_lag(x, np.zeros_like(x), SR) == 0
    y = np.concatenate([np.zeros(800, np.float32), x])[:SR]
    ref, rec, lag = align(x, y, SR)
    assert lag == 800 and len(ref) == len(rec) == SR - 800
    np.testing.assert_array_equal(ref, rec)


# --- token accuracy ------------------------------------------------------------------------
def hand_table() -> pd.DataFrame:
    # depth 0: 2 concealed, 1 right; depth 1: 2 concealed, 2 right; depth 7: 1 concealed, 0 right
    return pd.DataFrame({
        "frame": [0, 1, 2, 3],
        "concealed_mask": ["00000000", "11000000", "10000001", "01000000"],
        "conceal_hit_mask": ["00000000", "11000000", "00000000", "01000000"],
    })


def test_token_accuracy_on_a_hand_made_table():
    out = token_accuracy(hand_table())
    assert out["token_accuracy_n"] == 5
    assert out["token_accuracy"] == pytest.approx(3 / 5)
    assert out["token_accuracy_d0"] == pytest.approx(1 / 2)
    assert out["token_accuracy_d1"] == pytest.approx(1.0)
    assert out["token_accuracy_d7"] == 0.0
    assert all(np.isnan(out[f"token_accuracy_d{k}"]) for k in range(2, 7))


def test_token_accuracy_survives_a_csv_round_trip(tmp_path):
    hand_table().to_csv(tmp_path / "frames.csv", index=False)
    back = pd.read_csv(tmp_path / "frames.csv")  # "01000000" comes back as 1000000
    assert back["concealed_mask"].dtype.kind == "i"
    assert token_accuracy(back) == pytest.approx(token_accuracy(hand_table()), nan_ok=True)


def test_token_accuracy_empty_when_nothing_concealed_and_bad_masks_raise():
    t = hand_table().iloc[:1]
    assert token_accuracy(t) == {}
    out = compute_metrics(["token_accuracy"], np.ones(SR), np.ones(SR), SR, frames=t, workers=1)
    assert np.isnan(out["token_accuracy"]) and out["token_accuracy_status"] == "no tokens were concealed"
    bad = hand_table().assign(conceal_hit_mask=["00000000", "11000000", "00000010", "01000000"])
    with pytest.raises(UserError, match="row 2"):
        token_accuracy(bad)
    with pytest.raises(UserError, match="8 characters"):
        token_accuracy(hand_table().assign(concealed_mask=["0", "1", "2", "3"]))
    with pytest.raises(UserError, match="conceal_hit_mask"):
        token_accuracy(hand_table().drop(columns="conceal_hit_mask"))


# --- WER arithmetic ------------------------------------------------------------------------
def test_word_error_rate_normalises_and_counts_edits():
    assert word_error_rate("HELLO WORLD", "Hello, world!") == 0.0
    assert word_error_rate("A WELL KNOWN MAN", "a well-known man") == 0.0
    assert word_error_rate("ONE TWO THREE FOUR", "one too three four") == pytest.approx(0.25)
    assert word_error_rate("ONE TWO", "one two three four") == pytest.approx(1.0)  # 2 insertions
    assert word_error_rate("ONE TWO", "") == 1.0
    with pytest.raises(UserError, match="transcript"):
        word_error_rate(" ,. ", "anything")


# --- log-F0 --------------------------------------------------------------------------------
def test_logf0_rmse_matches_the_cents_formula():
    ref, rec = harmonic_tone(150.0), harmonic_tone(155.0)
    out = run_metric("logf0_rmse", MetricInput(ref, rec))
    assert out["logf0_rmse_cents"] == pytest.approx(1200 * np.log2(155 / 150), abs=3.0)
    assert out["vuv_error"] < 0.05 and "praat" in out["logf0_tracker"]
    same = run_metric("logf0_rmse", MetricInput(ref, ref))
    assert same["logf0_rmse_cents"] == 0.0 and same["vuv_error"] == 0.0


def test_logf0_zeroed_frames_count_as_voicing_errors():
    ref = harmonic_tone(120.0, 2.0)
    rec = ref.copy()
    rec[SR // 2:SR] = 0.0  # a quarter of the frames lost
    out = run_metric("logf0_rmse", MetricInput(ref, rec))
    assert out["vuv_error"] == pytest.approx(0.25, abs=0.05)


# --- registry, statuses, bad input ---------------------------------------------------------
def test_unknown_metric_and_recognizer_raise_user_errors():
    x = np.zeros(SR, np.float32)
    with pytest.raises(UserError, match="known: .*visqol"):
        compute_metrics(["visqol", "pesq"], x, x, SR)
    with pytest.raises(UserError, match="known: faster-whisper, pocketsphinx"):
        compute_metrics(["wer"], x, x, SR, transcript="a", recognizer="kaldi")


def test_missing_package_is_nan_with_status_never_zero(monkeypatch):
    monkeypatch.setitem(sys.modules, "parselmouth", None)  # import now fails
    x = harmonic_tone(150.0)
    out = compute_metrics(["logf0_rmse"], x, x, SR, workers=1)
    assert np.isnan(out["logf0_rmse_cents"]) and np.isnan(out["vuv_error"])
    assert out["logf0_rmse_status"] == "missing: pip install praat-parselmouth"


def test_wer_without_transcript_is_skipped():
    x = harmonic_tone(150.0)
    out = compute_metrics(["wer"], x, x, SR, workers=1)
    assert np.isnan(out["wer"]) and out["wer_status"].startswith("skipped")


@pytest.mark.parametrize("ref, rec, sr, match", [
    (np.zeros((2, 100)), np.zeros(100), SR, "1-D"),
    (np.zeros(0), np.zeros(100), SR, "empty"),
    (np.full(100, np.nan), np.zeros(100), SR, "NaN"),
    (np.zeros(100), np.zeros(100), 0, "sample_rate"),
])
def test_bad_audio_input_raises(ref, rec, sr, match):
    with pytest.raises(UserError, match=match):
        compute_metrics(["logf0_rmse"], ref, rec, sr)


def test_metric_names_and_bench_rows():
    assert set(metric_names()) == {"visqol", "plcmos", "dnsmos", "logf0_rmse", "wer", "token_accuracy", "emodel"}
    (row,) = bench_metrics(("logf0_rmse",))
    assert row["metric"] == "logf0_rmse" and row["status"] == "ok"
    assert row["wall_s"] > 0 and row["s_per_audio_min"] == pytest.approx(row["wall_s"] * 60 / row["audio_s"], rel=0.01)
