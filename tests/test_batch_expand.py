"""Experiment expansion: run counts, seeds from coordinates (not positions), keys, validation."""
from __future__ import annotations

import copy
import hashlib
import json

import numpy as np
import pytest
import soundfile as sf

from simlab.batch import expand, parse_experiment, run_key, run_seed
from simlab.batch.audio_set import AudioMissing, expand_audio
from simlab.batch.expand import NEUTRAL_DEFAULTS, canonical_json
from simlab.errors import UserError
from tests.helpers import ROOT

BASE = {"duration_s": 5, "system": {"kind": "synthetic"}}


def exp(**kw):
    return parse_experiment({"base": BASE, **kw}, ROOT, "test")


def seeds(experiment) -> dict[str, int]:
    return {canonical_json(r.coords): r.seed for r in expand(experiment)}


def test_count_and_coordinates():
    e = exp(grid={"network.forward.loss.p": [0, 0.1, 0.2], "packetization.frames_per_packet": [1, 2]},
            systems=[{"label": "a", "spec": {"kind": "synthetic"}, "grid": {"system.quantizers": [2, 4]}},
                     {"label": "b", "spec": {"kind": "synthetic", "redundant": 1}}],
            repeats=3, seed=7)
    runs = expand(e)
    assert len(runs) == 3 * 2 * (2 + 1) * 3
    assert len({r.seed for r in runs}) == len(runs)
    assert len({r.key for r in runs}) == len(runs)
    for r in runs:
        assert r.seed == run_seed(7, r.coords)
        assert r.scenario["seed"] == r.seed
        assert r.scenario["network"]["forward"]["loss"]["p"] == r.coords["network.forward.loss.p"]
        assert r.scenario["system"]["redundant"] == (1 if r.coords["label"] == "b" else 0)
        if r.coords["label"] == "a":
            assert r.scenario["system"]["quantizers"] == r.coords["system.quantizers"]
        else:
            assert "system.quantizers" not in r.coords


def test_seed_is_a_hash_of_coordinates_and_experiment_seed():
    coords = {"network.forward.loss.p": 0.1, "repeat": 2}
    digest = hashlib.sha256(canonical_json(coords).encode()).digest()
    words = tuple(int(w) for w in np.frombuffer(digest[:16], dtype="<u4"))
    want = int(np.random.SeedSequence(5, spawn_key=words).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    assert run_seed(5, coords) == want
    assert run_seed(5, dict(reversed(coords.items()))) == want  # key order is not a coordinate
    assert run_seed(6, coords) != want
    assert run_seed(5, {**coords, "network.forward.loss.p": 0.1000001}) != want
    assert run_seed(5, {"p": 0, "repeat": 0}) == run_seed(5, {"p": 0.0, "repeat": 0})  # 0 and 0.0 are one value
    assert 0 <= want < 2 ** 63


def test_reordering_the_grid_changes_no_seed():
    a = exp(grid={"network.forward.loss.p": [0, 0.1, 0.2], "packetization.frames_per_packet": [1, 2]}, repeats=2)
    b = exp(grid={"packetization.frames_per_packet": [2, 1], "network.forward.loss.p": [0.2, 0, 0.1]}, repeats=2)
    assert seeds(a) == seeds(b)
    assert {r.key for r in expand(a)} == {r.key for r in expand(b)}


def test_adding_a_grid_value_or_system_changes_no_existing_seed():
    a = exp(grid={"network.forward.loss.p": [0, 0.1]}, repeats=2,
            systems=[{"label": "x", "spec": {"kind": "synthetic"}}])
    b = exp(grid={"network.forward.loss.p": [0, 0.05, 0.1]}, repeats=3,
            systems=[{"label": "w", "spec": {"kind": "synthetic", "quantizers": 3}},
                     {"label": "x", "spec": {"kind": "synthetic"}}])
    old, new = seeds(a), seeds(b)
    assert len(new) == 3 * 3 * 2
    assert {k: new[k] for k in old} == old
    keys_a = {r.key for r in expand(a)}
    assert keys_a <= {r.key for r in expand(b)}


def test_same_seed_across_systems_pairs_the_runs():
    e = exp(grid={"network.forward.loss.p": [0.1, 0.2]}, same_seed_across=["label"],
            systems=[{"label": "x", "spec": {"kind": "synthetic"}},
                     {"label": "y", "spec": {"kind": "synthetic", "redundant": 2}}])
    runs = expand(e)
    by = {}
    for r in runs:
        by.setdefault(r.coords["network.forward.loss.p"], set()).add(r.seed)
    assert all(len(s) == 1 for s in by.values()) and len({next(iter(s)) for s in by.values()}) == 2
    assert len({r.key for r in runs}) == 4


def test_key_is_the_hash_of_the_resolved_scenario_and_round_trips():
    (r,) = expand(exp())
    sc = r.parse()
    assert sc.resolved() == r.scenario
    # Keys added after batch folders existed are left out at their defaults (NEUTRAL_DEFAULTS;
    # tests/golden pins the keys of runs of every shipped experiment, as older code wrote them).
    keyed = copy.deepcopy(r.scenario)
    for path, value in NEUTRAL_DEFAULTS.items():
        node = keyed
        for k in path[:-1]:
            node = node[k]
        assert node.pop(path[-1]) == value
    assert keyed["recognizer"] == "faster-whisper" and "wer" not in keyed["metrics"]
    keyed["recognizer"] = "pocketsphinx"  # keyed as before faster-whisper became the default: no wer here
    want = hashlib.sha256(json.dumps(keyed, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert r.key == run_key(sc.resolved()) == want
    shared = {**r.scenario, "network": {**r.scenario["network"], "bottleneck": "shared"}}
    assert run_key(shared) != r.key  # any other value is part of the key


def test_recognizer_is_part_of_the_key_only_with_wer():
    """The default recognizer changed (pocketsphinx -> faster-whisper): runs that do not score WER
    keep their keys (folders made before still resume), runs that do get new ones."""
    (r,) = expand(exp())
    assert r.scenario["recognizer"] == "faster-whisper"
    for rec in ("pocketsphinx", "faster-whisper"):
        assert run_key({**r.scenario, "recognizer": rec}) == r.key
    wer = {**r.scenario, "metrics": ["wer", "visqol"]}
    assert run_key({**wer, "recognizer": "pocketsphinx"}) != run_key({**wer, "recognizer": "faster-whisper"})
    (w,) = expand(exp(base={**BASE, "metrics": ["wer"], "transcript": "hello"}))
    assert w.key == run_key(w.scenario) != run_key({**w.scenario, "recognizer": "pocketsphinx"})


def test_base_file_relative_to_experiment(tmp_path):
    (tmp_path / "base.yaml").write_text("duration_s: 3\nsystem: {kind: synthetic, quantizers: 5}\n")
    e = parse_experiment({"base": "base.yaml", "grid": {"network.forward.delay_s": [0.01, 0.05]}}, tmp_path)
    runs = expand(e)
    assert [r.scenario["network"]["forward"]["delay_s"] for r in runs] == [0.01, 0.05]
    assert all(r.scenario["system"]["quantizers"] == 5 and r.scenario["duration_s"] == 3 for r in runs)


def _fake_librispeech(root):
    d = root / "speech" / "19" / "198"
    d.mkdir(parents=True)
    for utt in ("0000", "0001"):
        sf.write(d / f"19-198-{utt}.flac", np.zeros(1600, dtype=np.float32), 16000)
    sf.write(root / "speech" / "other.wav", np.zeros(1600, dtype=np.float32), 16000)
    (d / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 THIS LITTLE WORK\n")


def test_audio_folder_is_a_coordinate_with_transcripts(tmp_path):
    _fake_librispeech(tmp_path)
    e = parse_experiment({"base": BASE, "audio": "speech", "repeats": 2}, tmp_path)
    runs = expand(e)
    assert len(runs) == 3 * 2
    names = sorted({r.coords["audio"] for r in runs})
    assert names == ["speech/19/198/19-198-0000.flac", "speech/19/198/19-198-0001.flac", "speech/other.wav"]
    text = {r.coords["audio"]: r.scenario["transcript"] for r in runs}
    assert text["speech/19/198/19-198-0000.flac"] == "NORTHANGER ABBEY"
    assert text["speech/19/198/19-198-0001.flac"] == "THIS LITTLE WORK"
    assert text["speech/other.wav"] is None
    assert all(r.parse().audio_path().is_file() for r in runs)
    # a glob and a limit; no transcripts when asked not to
    e2 = parse_experiment({"base": BASE, "audio": "speech/**/*-0001.flac", "transcripts": False}, tmp_path)
    (r,) = expand(e2)
    assert r.coords["audio"] == "speech/19/198/19-198-0001.flac" and r.scenario["transcript"] is None
    assert expand_audio(["speech"], tmp_path, limit=1) == ["speech/19/198/19-198-0000.flac"]


def test_shared_audio_keeps_its_prefix():
    try:
        names = expand_audio("shared:dev", ROOT, limit=2)
    except AudioMissing as exc:
        pytest.skip(f"shared speech absent: {exc}")
    assert all(n.startswith("shared:dev/") and n.endswith(".flac") for n in names)
    runs = expand(exp(audio="shared:dev", audio_limit=2))
    assert all(r.scenario["audio"].startswith("shared:dev/") and r.scenario["transcript"] for r in runs)


@pytest.mark.parametrize("data, message", [
    ({"grid": {"network.forward.loss.p": []}}, "grid: network.forward.loss.p: needs at least one value"),
    ({"grid": {"network.forward.loss.p": [0.1, 0.1]}}, "value 0.1 is listed twice"),
    ({"grid": {"seed": [1, 2]}}, "grid: seed: cannot be swept"),
    ({"grid": {"network.forward.loss.p": 0.1}}, "grid.network.forward.loss.p: expected a list"),
    ({"repeat": 3}, "repeat: unknown key; did you mean 'repeats'?"),
    ({"repeats": 0}, "repeats: 0 is not >= 1"),
    ({"systems": [{"label": "a", "spec": {"kind": "opus"}}, {"label": "a", "spec": {"kind": "aac"}}]},
     "systems: label 'a' is used twice"),
    ({"systems": [{"label": "a", "spec": {"bitrate_bps": 8000}}]}, "systems.0: spec: needs kind"),
    ({"same_seed_across": ["repeat"]}, "same_seed_across: repeat cannot be shared"),
    ({"same_seed_across": ["lable"], "systems": [{"label": "a", "spec": {"kind": "synthetic"}}]},
     "same_seed_across: 'lable' is not a coordinate; did you mean 'label'?"),
    ({"base": 3}, "base: expected a scenario file or a mapping"),
    ({"systems": [{"label": "", "spec": {"kind": "opus"}}]}, "systems.0.label: must not be empty"),
])
def test_validation_messages_name_the_key(data, message):
    with pytest.raises(UserError) as info:
        parse_experiment({"base": BASE, **data}, ROOT, "e.yaml")
    text = str(info.value)
    assert "\n" not in text and text.startswith("e.yaml: ")
    assert message in text, text


def test_invalid_run_names_the_run_and_key_path():
    with pytest.raises(UserError, match=r"run network.forward.loss.p=1.5, repeat=0: network.forward.loss.p: "
                                        r"1.5 is not in \[0, 1\]"):
        expand(exp(grid={"network.forward.loss.p": [0.1, 1.5]}))
    with pytest.raises(UserError, match=r"network.forwrd: unknown key; did you mean 'forward'"):
        expand(exp(grid={"network.forwrd.delay_s": [0.1]}))


def test_missing_audio_and_base_are_clear(tmp_path):
    with pytest.raises(AudioMissing, match=r"audio: nothing/ matches no audio file"):
        expand(parse_experiment({"base": BASE, "audio": "nothing/"}, tmp_path))
    with pytest.raises(UserError, match=r"nope.yaml: file not found"):
        expand(parse_experiment({"base": "nope.yaml"}, tmp_path))


def test_run_keys_of_unchanged_experiments_stay_as_they_were():
    """A scenario key added later (network.bottleneck) at its default must not change run keys:
    folders made before it would otherwise be refused as holding another experiment's runs.
    The keys below were written by simlab before network.bottleneck existed."""
    from simlab.batch.expand import expand
    from simlab.batch.experiment import load_experiment

    runs = expand(load_experiment(ROOT / "experiments" / "eq24_overhead.yaml"))
    keys = {r.key for r in runs}
    assert {"21548d3fa9c670f7", "45cbeaaf3db31bd3"} <= keys
