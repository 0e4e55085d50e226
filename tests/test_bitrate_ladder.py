"""experiments/bitrate_ladder.yaml (issue 15): every system's ladder, packetized as a VoIP engineer
sends it, lossless and at 10 and 20 % Gilbert-Elliott loss (burst 3), scored with ViSQOL, PLCMOS and
WER against the LibriSpeech transcripts."""
from __future__ import annotations

from collections import defaultdict

import pytest

from simlab.batch import expand, load_experiment
from simlab.batch.audio_set import AudioMissing
from tests.helpers import ROOT

PATH = ROOT / "experiments" / "bitrate_ladder.yaml"
#: Milliseconds of speech per packet, by label.
PACKET_MS = {"largesc-lm": 160, "largesc-drop": 160, "codec2": 40, "codec2-20ms": 40, "amr-nb": 20, "g723.1": 30,
             "lc3": 20, "opus-fec": 20, "aac": 1024 / 24, "g726": 20, "g722": 20, "g711": 20}
#: The settings each label sweeps (its points on the ladder).
SETTINGS = {"largesc-lm": list(range(1, 17)), "largesc-drop": list(range(1, 17)),
            "codec2": ["700C", 1200, 1300, 1400, 1600], "codec2-20ms": [2400, 3200],
            "amr-nb": [4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200], "g723.1": [6300],
            "lc3": [16000, 24000, 32000], "opus-fec": [6000, 8000, 12000, 16000, 24000],
            "aac": [16000, 24000, 32000], "g726": [16000, 24000, 32000, 40000], "g722": [64000], "g711": [64000]}


def _frame_ms(system: dict) -> float:
    kind = system["kind"]
    if kind == "largesc":
        return 80
    if kind == "codec2":
        return 20 if str(system["mode"]) in ("3200", "2400") else 40
    if kind == "aac":
        return 1024 / 24
    return system["frame_ms"]


def _setting(system: dict):
    for key in ("quantizers", "mode", "bitrate_bps"):
        if key in system:
            return system[key]


@pytest.fixture(scope="module")
def runs():
    try:
        return expand(load_experiment(PATH))
    except AudioMissing as exc:
        pytest.skip(f"shared speech absent: {exc}")


def test_every_system_on_its_ladder_at_three_losses(runs):
    settings, losses, audio = defaultdict(set), set(), set()
    for r in runs:
        sc = r.scenario
        settings[r.coords["label"]].add(_setting(sc["system"]))
        loss = sc["network"]["forward"]["loss"]
        assert (loss["model"], loss["burst"]) == ("gilbert_elliott", 3)
        losses.add(loss["loss"])
        audio.add(r.coords["audio"])
    assert {k: sorted(v, key=str) for k, v in settings.items()} == {k: sorted(v, key=str) for k, v in SETTINGS.items()}
    assert losses == {0.0, 0.1, 0.2} and len(audio) == 2
    assert len(runs) == sum(map(len, SETTINGS.values())) * 3 * 2 == 390


def test_packetization_and_scoring_per_system(runs):
    for r in runs:
        sc, label = r.scenario, r.coords["label"]
        packet_ms = _frame_ms(sc["system"]) * sc["packetization"]["frames_per_packet"]
        assert packet_ms == pytest.approx(PACKET_MS[label]), label
        assert sc["packetization"]["interleave"] == label.startswith("largesc")
        assert sc["network"]["headers"] == "ipv4"
        assert set(sc["metrics"]) == {"visqol", "plcmos", "wer"} and sc["recognizer"] == "faster-whisper"
    for r in runs[:: len(runs) // 7]:
        assert r.parse().transcript  # from the LibriSpeech .trans.txt beside the file
    # both concealers of LargeSC at every L, the rest of the spec equal
    lm = {(r.coords["system.quantizers"], r.coords["audio"], r.scenario["network"]["forward"]["loss"]["loss"]): r
          for r in runs if r.coords["label"] == "largesc-lm"}
    for r in (r for r in runs if r.coords["label"] == "largesc-drop"):
        twin = lm[(r.coords["system.quantizers"], r.coords["audio"], r.scenario["network"]["forward"]["loss"]["loss"])]
        assert {**r.scenario["system"], "concealer": "lm"} == twin.scenario["system"]
        assert r.seed == twin.seed  # same_seed_across: label
