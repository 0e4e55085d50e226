"""Byte-identical outputs across the registry redesign: every shipped scenario and a small run
per system of each shipped experiment give the files recorded before it (tests/golden/)."""
import json

import pytest

from tests.golden.cases import HASHES, ROOT, SHARED_SPEECH, experiment_cases, run_case, scenario_cases

TRACES = SHARED_SPEECH.parent / "traces"

GOLDEN = json.loads(HASHES.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("case", scenario_cases() + experiment_cases())
def test_outputs_match_the_recorded_hashes(case):
    if not SHARED_SPEECH.is_dir():
        pytest.skip(f"{SHARED_SPEECH} is absent: the hashes were recorded with LibriSpeech from it")
    kind, name = case.split(":", 1)
    if kind == "scenario" and "traces:" in (ROOT / "scenarios" / f"{name}.yaml").read_text() and not TRACES.is_dir():
        pytest.skip(f"{TRACES} is absent: the scenario replays a link trace from it")
    assert case in GOLDEN, f"{case}: no recorded hashes (python -m tests.golden.cases --record {case})"
    assert run_case(case) == GOLDEN[case]
