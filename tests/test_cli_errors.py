"""Every malformed scenario: one line on stderr naming the problem, exit 2, no traceback, no
output folder left behind."""
import subprocess
import sys

import pytest

from helpers import ROOT

CASES = {
    "missing_file": (None, "file not found"),
    "unknown_key": ("name: x\nnetwork: {forwrd: {delay_s: 0.1}}\n", "network.forwrd: unknown key; did you mean 'forward'?"),
    "wrong_type": ("system: {kind: synthetic, quantizers: eight}\n", "system.quantizers: expected an integer, got 'eight'"),
    "p_out_of_range": ("network: {forward: {loss: {model: uniform, p: 1.7}}}\n",
                       "network.forward.loss.p: 1.7 is not in [0, 1]"),
    "negative_delay": ("network: {reverse: {delay_s: -0.5}}\n", "network.reverse.delay_s: -0.5 is not >= 0"),
    "empty": ("", "scenario is empty"),
    "not_yaml": ("name: [unclosed\n  x: {\n", "not valid YAML"),
    "not_mapping": ("- a\n- b\n", "a scenario is a mapping"),
    "bad_model": ("network: {forward: {loss: {model: gilbert, p: 0.1}}}\n", "network.forward.loss.model: 'gilbert' is not one of"),
    "missing_trace": ("network: {forward: {loss: {model: trace, file: nope.txt}}}\nduration_s: 1\n", "nope.txt"),
    "missing_audio": ("audio: nope.wav\nsystem: {kind: synthetic}\n", "nope.wav"),
    "confidence_out_of_range": ("system: {kind: largesc, min_confidence: 1.5}\n",
                                "system.min_confidence: 1.5 is not in [0, 1]"),
}


def simlab(*args, cwd):
    return subprocess.run([sys.executable, "-m", "simlab.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_scenario(tmp_path, case):
    text, expected = CASES[case]
    path = tmp_path / "s.yaml"
    if text is not None:
        path.write_text(text)
    out = tmp_path / "out"
    r = simlab("run", str(path), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert expected in lines[0]
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_set_override_and_bad_set(tmp_path):
    r = simlab("check", str(ROOT / "scenarios/eq24.yaml"), "--set", "network.forward.loss.p=0.25", cwd=tmp_path)
    assert r.returncode == 0 and '"p": 0.25' in r.stdout
    r = simlab("check", str(ROOT / "scenarios/eq24.yaml"), "--set", "network.forward.loss.p=2", cwd=tmp_path)
    assert r.returncode == 2 and "network.forward.loss.p: 2" in r.stderr


def test_schema_is_json_schema(tmp_path):
    import json

    r = simlab("schema", cwd=tmp_path)
    schema = json.loads(r.stdout)
    assert schema["type"] == "object" and "network" in schema["properties"]
    assert "base_dir" not in schema["properties"]
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema)
