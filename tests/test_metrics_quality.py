"""The real scorers on real speech: clean scores near the top, degraded copies lower,
repeatable numbers, alignment, sliding windows and the recognisers. All slow (models)."""
from __future__ import annotations

import numpy as np
import pytest

from simlab.audio import SHIPPED_CLIP, read_audio, shared_speech
from simlab.metrics import compute_metrics, window_metrics

pytestmark = pytest.mark.slow

SR = 16_000
AUDIO = ["visqol", "plcmos", "dnsmos", "logf0_rmse"]
#: (column, higher is better) for every value the audio metrics produce
COLUMNS = [("visqol", True), ("plcmos", True), ("dnsmos_ovrl", True), ("dnsmos_sig", True),
           ("dnsmos_p808", True), ("logf0_rmse_cents", False), ("vuv_error", False)]


def zero_frames(x: np.ndarray, share: float, seed: int, frame: int = 1280) -> np.ndarray:
    """A copy with a random ``share`` of its 80 ms frames zeroed (lost, no concealment)."""
    y = x.copy()
    rng = np.random.default_rng(seed)
    for f in range(len(x) // frame):
        if rng.random() < share:
            y[f * frame:(f + 1) * frame] = 0.0
    return y


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return read_audio(SHIPPED_CLIP, SR)[: 10 * SR]


@pytest.fixture(scope="module")
def clean_scores(clip):
    return compute_metrics(AUDIO, clip, clip, SR, workers=1)


def librispeech_utterance() -> tuple[np.ndarray, str]:
    dev = shared_speech("dev")
    if dev is None:
        pytest.skip("real speech absent: ../shared/speech/dev (LibriSpeech) is not beside this checkout")
    flac = dev / "1089" / "134686" / "1089-134686-0000.flac"
    lines = dict(l.split(" ", 1) for l in (flac.parent / "1089-134686.trans.txt").read_text().splitlines())
    return read_audio(flac, SR), lines[flac.stem].strip()


def test_clean_shipped_clip_scores_at_the_top_of_the_intrusive_scales(clean_scores):
    assert clean_scores["visqol"] > 4.4
    assert clean_scores["logf0_rmse_cents"] == 0.0 and clean_scores["vuv_error"] == 0.0
    assert not any(k.endswith("_status") for k in clean_scores)


def test_degraded_copy_scores_lower_on_every_metric(clip, clean_scores):
    bad = compute_metrics(AUDIO, clip, zero_frames(clip, 0.2, seed=1), SR, workers=1)
    for col, higher in COLUMNS:
        assert (bad[col] < clean_scores[col]) if higher else (bad[col] > clean_scores[col]), col
    assert clean_scores["visqol"] - bad["visqol"] > 0.5


def test_same_input_and_seed_give_the_same_numbers_and_global_state_is_restored(clip):
    x, y = clip[: 5 * SR], zero_frames(clip[: 5 * SR], 0.2, seed=2)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a = compute_metrics(["plcmos", "logf0_rmse"], x, y, SR, seed=7, workers=1)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    b = compute_metrics(["plcmos", "logf0_rmse"], x, y, SR, seed=7, workers=2)  # process pool
    assert a == b
    c = compute_metrics(["plcmos"], x, y, SR, seed=8, workers=1)
    assert c["plcmos"] != a["plcmos"]  # the seed really drives the rater draws


def test_a_lagging_received_signal_still_gets_the_clean_score(clip, clean_scores):
    lag = int(0.25 * SR)
    shifted = np.concatenate([np.zeros(lag, np.float32), clip])[: len(clip)]
    out = compute_metrics(["visqol", "logf0_rmse"], clip, shifted, SR, workers=1)
    assert out["align_lag_s"] == pytest.approx(0.25)
    assert out["visqol"] == pytest.approx(clean_scores["visqol"], abs=0.1)
    assert out["logf0_rmse_cents"] == 0.0 and out["vuv_error"] == 0.0


def test_sliding_windows_follow_the_damage(clip):
    x = clip[: 6 * SR]
    y = x.copy()
    y[3 * SR:] = zero_frames(x[3 * SR:], 0.4, seed=3)  # only the second half is damaged
    df = window_metrics(["visqol", "logf0_rmse", "wer"], x, y, SR, window_s=2.5, hop_s=1.0, workers=1)
    assert list(df.columns[:2]) == ["t_start_s", "t_end_s"] and "wer" not in df.columns
    np.testing.assert_allclose(df["t_start_s"], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(df["t_end_s"] - df["t_start_s"], 2.5)
    assert df["visqol"].iloc[0] > 4.0 > df["visqol"].iloc[-1]
    assert df["vuv_error"].iloc[0] == 0.0 < df["vuv_error"].iloc[-1]


def test_librispeech_clean_scores_high_on_every_scale():
    x, _ = librispeech_utterance()
    out = compute_metrics(AUDIO, x, x, SR, workers=1)
    assert out["visqol"] > 4.4 and out["plcmos"] > 4.0 and out["dnsmos_ovrl"] > 3.3


@pytest.mark.parametrize("recognizer, clean_max", [("faster-whisper", 0.15), ("pocketsphinx", 0.5)])
def test_wer_with_each_recognizer(recognizer, clean_max):
    x, text = librispeech_utterance()
    clean = compute_metrics(["wer"], x, x, SR, transcript=text, recognizer=recognizer, workers=1)
    bad = compute_metrics(["wer"], x, zero_frames(x, 0.3, seed=4), SR, transcript=text,
                          recognizer=recognizer, workers=1)
    assert clean["wer"] <= clean_max < 1.0
    assert bad["wer"] > clean["wer"]
    assert clean["wer_recognizer"].startswith(recognizer)
