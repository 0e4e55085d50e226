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
    "negative_delay": ("network: {reverse: {delay_s: -0.5}}\n", "network.reverse.delay_s: -0.5 is not in [0, 60]"),
    "empty": ("", "scenario is empty"),
    "not_yaml": ("name: [unclosed\n  x: {\n", "not valid YAML"),
    "not_mapping": ("- a\n- b\n", "a scenario is a mapping"),
    "bad_model": ("network: {forward: {loss: {model: gilbert, p: 0.1}}}\n", "network.forward.loss.model: 'gilbert' is not one of"),
    "missing_trace": ("network: {forward: {loss: {model: trace, file: nope.txt}}}\nduration_s: 1\n", "nope.txt"),
    "missing_audio": ("audio: nope.wav\nsystem: {kind: synthetic}\n", "nope.wav"),
    "confidence_out_of_range": ("system: {kind: largesc, min_confidence: 1.5}\n",
                                "system.min_confidence: 1.5 is not in [0, 1]"),
    # Non-finite and absurd times and rates: tracebacks, or runs that never ended, before.
    "infinite_duration": ("duration_s: .inf\n", "duration_s: inf is not a finite number"),
    "nan_duration": ("duration_s: .nan\n", "duration_s: nan is not a finite number"),
    "day_long_duration": ("duration_s: 1.0e+6\n", "duration_s: 1000000.0 is not in (0, 86400]"),
    "infinite_playout": ("receiver: {playout_delay_s: .inf}\n", "receiver.playout_delay_s: inf is not a finite"),
    "infinite_delay": ("network: {forward: {delay_s: .inf}}\n", "network.forward.delay_s: inf is not a finite"),
    "infinite_jitter": ("network: {forward: {jitter_s: .inf}}\n", "network.forward.jitter_s: inf is not a finite"),
    "hour_long_delay": ("network: {forward: {delay_s: 3600}}\n", "network.forward.delay_s: 3600.0 is not in [0, 60]"),
    "tiny_report_interval": ("feedback: {interval_s: 1.0e-300}\n", "feedback.interval_s: 1e-300 is not in [0.001, 60]"),
    "tiny_bandwidth": ("network: {forward: {bandwidth_bps: 1.0e-300}}\n",
                       "network.forward.bandwidth_bps: 1e-300 is not in [1000, 1e+12]"),
    "empty_name": ("name: ''\n", "name: must not be empty"),
    "name_with_slash": ("name: a/b\n", "name: 'a/b' must be a plain folder name"),
    "name_dotdot": ("name: '..'\n", "name: '..' must not start with '.'"),
    "duplicate_key": ("seed: 1\nseed: 2\n", "duplicate key 'seed' at line 2"),
    # A misspelt required key: its did-you-mean, not the required key missing.
    "misspelt_required_key": ("network: {forward: {loss: {model: trace, fiel: x.txt}}}\n",
                              "network.forward.loss.fiel: unknown key; did you mean 'file'?"),
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


def test_schema_states_the_validators_bounds(tmp_path):
    import json

    schema = json.loads(simlab("schema", cwd=tmp_path).stdout)
    link = schema["$defs"]["Link"]["properties"]
    assert link["bandwidth_bps"]["minimum"] == 1000 and link["delay_s"]["maximum"] == 60
    assert schema["$defs"]["Feedback"]["properties"]["interval_s"]["minimum"] == 0.001
    duration = schema["properties"]["duration_s"]["anyOf"][0]
    assert duration["exclusiveMinimum"] == 0 and duration["maximum"] == 86400


# -- `check` refuses what `run` refuses, and `run` refuses it before simulating ----------------------
SLOW = "duration_s: 86400\nflows: 50\n"  # hours of simulation: a check after it would time the test out
INPUT_CASES = {
    "burst_needs_p_over_1": (SLOW + "network: {forward: {loss: {model: gilbert_elliott, loss: 0.9, burst: 1}}}\n",
                             "network.forward.loss: loss 0.9 with burst 1 needs p = 9 > 1"),
    "missing_trace": (SLOW + "network: {forward: {loss: {model: trace, file: nope.txt}}}\n",
                      "network.forward.loss: nope.txt: loss trace not found"),
    "bad_trace": (SLOW + "network: {reverse: {loss: {model: trace, file: bad.txt}}}\n",
                  "network.reverse.loss: bad.txt:1: '2' is not 0 or 1"),
    "trace_in_a_phase": (SLOW + "network: {forward: {schedule: [{until_s: 1, loss: {model: trace, file: no.txt}}]}}\n",
                         "no.txt: loss trace not found"),
    "missing_audio": ("audio: [nope.wav, nope2.wav]\nsystem: {kind: opus}\n",
                      "audio: none of nope.wav, nope2.wav exists"),
    "audio_not_wav": ("audio: [nope.wav, notwav.wav]\nsystem: {kind: opus}\n",
                      "audio: notwav.wav: cannot read audio"),
    "no_audio_for_opus": ("system: {kind: opus}\n", "audio: system opus needs an audio file"),
    "missing_profile": (SLOW + "compute: {profile: nope.yaml}\n", "compute.profile: nope.yaml is neither a file"),
    "profile_without_system": (SLOW + "compute: {profile: a100-paper}\nsystem: {kind: aac}\naudio: package:clip.wav\n",
                               "latency profile has no system 'aac'"),
    "unknown_metric": (SLOW + "metrics: [foo]\n", "metrics: unknown metric(s) 'foo'"),
    "unknown_recognizer": (SLOW + "audio: package:clip.wav\nsystem: {kind: opus}\nmetrics: [wer]\n"
                           "recognizer: nosuch\n", "recognizer: unknown recognizer 'nosuch'"),
    "fixed_controller_12_quantizers": ("system: {kind: largesc, quantizers: 12, controller: fixed}\n",
                                       "system: quantizers: 12 is not in [1, 8] with controller: fixed"),
}


@pytest.mark.parametrize("case", sorted(INPUT_CASES))
def test_check_refuses_what_run_refuses_before_simulating(tmp_path, case):
    text, expected = INPUT_CASES[case]
    (tmp_path / "s.yaml").write_text(text)
    (tmp_path / "bad.txt").write_text("0 1 2\n")
    (tmp_path / "notwav.wav").write_text("not audio\n")
    for command in (["check", "s.yaml"], ["run", "s.yaml", "--out", "np1/np2/out"], ["run", "s.yaml"]):
        r = simlab(*command, cwd=tmp_path)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (command, r.stderr)
    # nothing created: neither the --out parents nor the default results/
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.txt", "notwav.wav", "s.yaml"]


def test_check_accepts_an_audio_list_whose_first_existing_file_is_audio(tmp_path):
    (tmp_path / "s.yaml").write_text("audio: [nope.wav, package:clip.wav]\nsystem: {kind: opus}\n")
    r = simlab("check", "s.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


# -- output folders ---------------------------------------------------------------------------------
BASE = "name: base\nduration_s: 1\nsystem: {kind: synthetic}\n"


def _one_line_error(r, expected):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("out", [".", "..", "work", "work/sub/.."])
def test_force_never_replaces_the_working_folder_or_the_scenarios(tmp_path, out):
    work = tmp_path / "work"
    work.mkdir()
    (work / "base.yaml").write_text(BASE)
    (work / "keep.txt").write_text("mine\n")
    cwd = work if out in (".", "..") else tmp_path
    r = simlab("run", str(work / "base.yaml"), "--out", out, "--force", cwd=cwd)
    _one_line_error(r, "refusing to replace")
    assert sorted(p.name for p in work.iterdir()) == ["base.yaml", "keep.txt"]


def test_an_empty_working_folder_is_not_renamed_over_either(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "empty").mkdir()
    r = simlab("run", str(tmp_path / "base.yaml"), "--out", ".", cwd=tmp_path / "empty")
    _one_line_error(r, "refusing to replace the working folder")
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())


@pytest.mark.parametrize("out,expected", [
    ("afile", "afile: output folder is a file"),
    ("afile/sub", "afile/sub: cannot create the output folder: afile is a file"),
    ("/proc/simlab-x", "/proc/simlab-x: cannot write the output"),
])
def test_bad_run_output_paths_are_one_line(tmp_path, out, expected):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "afile").write_text("")
    _one_line_error(simlab("run", "base.yaml", "--out", out, cwd=tmp_path), expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "base.yaml"]


def test_sigterm_cleans_up_and_stale_partials_are_removed(tmp_path):
    import signal
    import time

    (tmp_path / "slow.yaml").write_text("name: slow\nduration_s: 86400\nflows: 50\n")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".o.partial-{int(dead.stdout)}"  # left by a run killed with SIGKILL
    stale.mkdir()
    p = subprocess.Popen([sys.executable, "-m", "simlab.cli", "run", "slow.yaml", "--out", "o"], cwd=tmp_path,
                         stderr=subprocess.PIPE, text=True)
    mine = tmp_path / f".o.partial-{p.pid}"
    deadline = time.monotonic() + 60
    while not (mine / "packets.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert mine.exists() and not stale.exists()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM and err.strip() == "simlab: interrupted"
    assert sorted(q.name for q in tmp_path.iterdir()) == ["slow.yaml"]


# -- calibrate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("args,expected", [
    (["--out", "adir"], "adir: output file is a folder"),
    (["--out", "other.yaml"], "other.yaml: not a latency profile"),
    (["--out", "afile/p.yaml"], "afile: cannot create the output file's folder"),
    (["--out", "p.yaml", "--frames", "0"], "--frames: 0 is not in [1, 100000]"),
    (["--out", "p.yaml", "--frames", "-5"], "--frames: -5 is not in [1, 100000]"),
    (["--out", "p.yaml", "--threads", "0"], "--threads: 0 is not in [1, 256]"),
])
def test_calibrate_refuses_bad_arguments_in_one_line(tmp_path, args, expected):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    (tmp_path / "other.yaml").write_text("a: 1\n")
    r = simlab("calibrate", "--system", "{kind: synthetic}", *args, cwd=tmp_path)
    _one_line_error(r, expected)
    assert (tmp_path / "other.yaml").read_text() == "a: 1\n" and not (tmp_path / "p.yaml").exists()


def test_calibrate_on_cuda_without_cuda_is_one_line(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = simlab("calibrate", "--system", "{kind: synthetic}", "--device", "cuda", "--out", "p.yaml", cwd=tmp_path)
    _one_line_error(r, "--device cuda: CUDA is not available")


def test_train_refuses_a_file_as_out_dir_and_names_a_missing_data_path(tmp_path):
    (tmp_path / "afile").write_text("")
    r = simlab("train", "lora", "--set", "out_dir=afile", cwd=tmp_path)
    _one_line_error(r, "afile: output folder is a file")
    # profile: the shipped one (the default, `train lm`'s stage folder in /tmp, exists only after training)
    r = simlab("train", "lora", "--set", "profile=small", "--set", "data=/nonexistent",
               "--set", f"out_dir={tmp_path / 'o'}", "--set", f"cache_dir={tmp_path / 'c'}", cwd=tmp_path)
    _one_line_error(r, "data: /nonexistent: no speech folder there")
    assert "shared/speech" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # out_dir and cache_dir removed again


def test_an_error_during_the_run_removes_the_folders_it_created(tmp_path):
    # an unknown model profile is found only when the models load, after the folders are made
    (tmp_path / "s.yaml").write_text("duration_s: 1\naudio: package:clip.wav\n"
                                     "system: {kind: largesc, profile: nosuch}\n")
    (tmp_path / "np1").mkdir()  # not this run's: stays
    r = simlab("run", "s.yaml", "--out", "np1/np2/np3/out", cwd=tmp_path)
    _one_line_error(r, "model profile 'nosuch'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["np1", "s.yaml"] and not any((tmp_path / "np1").iterdir())


def test_calibrate_creates_the_profiles_folder_and_adds_to_an_existing_profile(tmp_path):
    import yaml

    for _ in range(2):
        r = simlab("calibrate", "--system", "{kind: synthetic}", "--frames", "3", "--out", "new/p.yaml", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert "synthetic" in yaml.safe_load((tmp_path / "new/p.yaml").read_text())["systems"]
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["p.yaml"]  # no .tmp left


def test_yaml_repeated_keys_are_refused_but_merges_may_override():
    from simlab.errors import UserError
    from simlab.scenario import apply_overrides
    from simlab.yaml_file import load_yaml

    assert load_yaml("a: &x {p: 1, q: 2}\nb: {<<: *x, p: 3}\n", "t.yaml")["b"] == {"p": 3, "q": 2}
    # an anchor defined inside a merge, used again by alias: valid YAML (it was refused)
    nested = load_yaml("base: &base {x: 1}\ntop: {<<: &m {<<: *base, x: 2}, y: 3}\nother: *m\n", "t.yaml")
    assert nested["top"] == {"x": 2, "y": 3} and nested["other"] == {"x": 2}
    with pytest.raises(UserError, match=r"^t.yaml: duplicate key 'p' at line 4$"):
        load_yaml("a: 1\nb:\n  p: 1\n  p: 2\n", "t.yaml")
    with pytest.raises(UserError, match=r"--set system=\{kind: opus, kind: aac\}: duplicate key 'kind'"):
        apply_overrides({}, ["system={kind: opus, kind: aac}"])


def test_calibrating_an_ablation_keeps_the_models_entries(tmp_path):
    """`drop` and `fixed` are stand-ins for the LM and the controller network: calibrating them
    must not file their microseconds under the models' stages of largesc/small."""
    import yaml

    profile = {"systems": {"largesc/small": {s: {"median_s": t, "p95_s": t, "calls": 1} for s, t in
                                             (("encoder", 1.0), ("controller", 2.0), ("concealer", 3.0),
                                              ("decoder", 4.0))}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(profile))
    r = simlab("calibrate", "--system", "{kind: largesc, controller: fixed, quantizers: 8, concealer: drop}",
               "--frames", "3", "--out", "p.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    entry = yaml.safe_load((tmp_path / "p.yaml").read_text())["systems"]["largesc/small"]
    assert entry["controller"]["median_s"] == 2.0 and entry["concealer"]["median_s"] == 3.0
    assert entry["encoder"]["median_s"] < 1.0 and entry["decoder"]["median_s"] < 4.0  # measured anew


def test_a_pcap_refuses_more_flows_than_udp_ports():
    from simlab.errors import UserError
    from simlab.scenario import MAX_PCAP_FLOWS, apply_overrides, parse_scenario

    assert 5004 + 2 * (MAX_PCAP_FLOWS - 1) <= 65535 < 5004 + 2 * MAX_PCAP_FLOWS
    parse_scenario(apply_overrides({}, [f"flows={MAX_PCAP_FLOWS}", "outputs.pcap=true"]))
    with pytest.raises(UserError, match=r"^scenario: outputs.pcap: a pcap holds at most"):
        parse_scenario(apply_overrides({}, [f"flows={MAX_PCAP_FLOWS + 1}", "outputs.pcap=true"]))


def test_calibrate_into_an_empty_file_writes_a_new_profile(tmp_path):
    import yaml

    (tmp_path / "p.yaml").write_text("")  # as `mktemp` or `touch` leave it
    r = simlab("calibrate", "--system", "{kind: synthetic}", "--frames", "3", "--out", "p.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "synthetic" in yaml.safe_load((tmp_path / "p.yaml").read_text())["systems"]
