"""Byte-identical outputs across the registry redesign: every shipped scenario and a small run
per system of each shipped experiment give the files recorded before it (tests/golden/)."""
import json

import pytest

from tests.golden.cases import HASHES, SHARED_SPEECH, experiment_cases, run_case, scenario_cases

GOLDEN = json.loads(HASHES.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("case", scenario_cases() + experiment_cases())
def test_outputs_match_the_recorded_hashes(case):
    if not SHARED_SPEECH.is_dir():
        pytest.skip(f"{SHARED_SPEECH} is absent: the hashes were recorded with LibriSpeech from it")
    assert case in GOLDEN, f"{case}: no recorded hashes (python -m tests.golden.cases --record {case})"
    assert run_case(case) == GOLDEN[case]
