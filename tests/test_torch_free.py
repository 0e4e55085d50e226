"""simlab without the ``models`` extra (issue 14): torch, moshi and peft are LargeSC's alone.

Slow: ``pip install "simlab[codecs,plots,batch]"`` (a regular install from a copy of this
checkout) into a fresh virtual environment without the system's packages, where ``import torch``
fails; there the synthetic, Opus and AAC systems run, a batch runs, its table and run folders
plot, ``schema`` and ``check`` work, and a LargeSC scenario is refused in one line that says what
to install. Fast: in this environment (torch installed or not) a synthetic run, ``check`` and
``schema`` never import torch, moshi or peft. The start-up time is measured by
``simlab bench startup``, never asserted here."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import soundfile

ROOT = Path(__file__).resolve().parents[1]
EQ24 = ROOT / "scenarios" / "eq24.yaml"
HEAVY = ("torch", "moshi", "peft")


# --- fast: this environment ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "check", "schema"])
def test_synthetic_paths_never_import_torch(tmp_path, command):
    args = {"run": ["run", str(EQ24), "--set", "duration_s=5", "--out", str(tmp_path / "out")],
            "check": ["check", str(EQ24)], "schema": ["schema"]}[command]
    code = ("import json, sys\n"
            "from simlab.cli import main\n"
            f"rc = main({args!r})\n"
            f"print(json.dumps({{'rc': rc, 'heavy': [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]}}),"
            " file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stderr.strip().splitlines()[-1])
    assert got == {"rc": 0, "heavy": []}, r.stderr
    if command == "run":
        assert (tmp_path / "out" / "summary.csv").is_file()


def test_bench_startup_rows():
    """`simlab bench startup` runs whole processes and reports their times (no time is asserted)."""
    from simlab.bench.startup import TARGET_S, bench_startup

    rows = bench_startup(repeats=1)
    assert [r["case"] for r in rows] == ["python -c pass", "python -c 'import simlab.cli'",
                                         "simlab run (synthetic, 10 s)"]
    assert all(0 < r["min_s"] <= r["median_s"] <= r["max_s"] for r in rows)
    assert rows[-1]["target_s"] == f"< {TARGET_S}" and rows[-1]["ok"] in ("yes", "NO")


# --- slow: a virtual environment without torch -----------------------------------------------

_OFFLINE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
            "Network is unreachable", "ConnectTimeoutError", "ReadTimeoutError", "ProxyError")


def _env() -> dict:
    env = dict(os.environ)
    for var in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"):  # only the venv's own packages
        env.pop(var, None)
    env["NO_TORCH_COMPILE"] = "1"
    return env


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv without the system's site packages, simlab installed into it with the codecs, plots
    and batch extras from a copy of the checkout (pip's build writes build/ and *.egg-info beside
    setup.cfg: not in the checkout others work in)."""
    root = tmp_path_factory.mktemp("torch_free")
    src = root / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", "results", "tests", "examples",
        "experiments", "*.pyc"))
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True, timeout=600)
    py = env / "bin" / "python"
    # Generous: in CI HOME is fresh, so pip's cache is empty and every wheel comes from the index.
    r = subprocess.run([str(py), "-m", "pip", "install", "--prefer-binary", f"{src}[codecs,plots,batch]"],
                       capture_output=True, text=True, timeout=1800, env=_env(), cwd=root)
    if r.returncode != 0 and any(s in r.stdout + r.stderr for s in _OFFLINE):
        pytest.skip("the package index is not reachable: " + (r.stdout + r.stderr).strip().splitlines()[-1])
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    work = root / "work"
    work.mkdir()
    return env, work


def _py(env: Path, *args, cwd: Path):
    return subprocess.run([str(env / "bin" / "python"), *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=600)


def simlab(env: Path, *args, cwd: Path):
    return subprocess.run([str(env / "bin" / "simlab"), *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=600)


def _scenario(folder: Path, name: str, system: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nseed: 1\nduration_s: 3\naudio: package:clip.wav\nsystem: {system}\n"
                    "network: {forward: {loss: {model: uniform, p: 0.1}}}\nmetrics: []\n")
    return path


@pytest.mark.slow
def test_venv_has_simlab_and_no_torch(venv):
    env, work = venv
    for name in HEAVY:
        r = _py(env, "-c", f"import {name}", cwd=work)
        assert r.returncode != 0 and f"No module named '{name}'" in r.stderr, r.stderr
    r = _py(env, "-c", "import simlab, channels; print(simlab.__file__); print(channels.__file__)", cwd=work)
    assert r.returncode == 0, r.stderr
    for line in r.stdout.split():
        assert Path(line).resolve().is_relative_to(env.resolve()), line  # installed, not this checkout
    r = _py(env, "-m", "pip", "list", "--format=json", cwd=work)
    installed = {p["name"].lower() for p in json.loads(r.stdout)}
    assert not installed & {"torch", "moshi", "peft", "einops", "safetensors", "sentencepiece"}, installed


@pytest.mark.slow
def test_schema_lists_every_system(venv):
    env, work = venv
    r = simlab(env, "schema", cwd=work)
    assert r.returncode == 0, r.stderr
    text = json.dumps(json.loads(r.stdout))
    for kind in ("synthetic", "opus", "aac", "largesc"):  # largesc's spec needs no torch
        assert f'"{kind}"' in text, kind
    assert "min_confidence" in text  # LargeSC's own keys


@pytest.mark.slow
def test_check_resolves_the_eq24_scenario(venv):
    env, work = venv
    r = simlab(env, "check", str(EQ24), cwd=work)
    assert r.returncode == 0, r.stderr
    resolved = json.loads(r.stdout)
    assert resolved["system"]["kind"] == "synthetic" and resolved["network"]["headers"] == "ipv4"


@pytest.mark.slow
def test_synthetic_run(venv):
    env, work = venv
    out = work / "synthetic"
    r = simlab(env, "run", str(EQ24), "--set", "duration_s=10", "--out", str(out), cwd=work)
    assert r.returncode == 0, r.stderr
    assert {p.name for p in out.iterdir()} == {"packets.csv", "frames.csv", "summary.csv", "manifest.json"}
    row = pd.read_csv(out / "summary.csv").iloc[0]
    assert row.system == "synthetic" and row.packets_sent > 0
    # eq. 24's example: 40 B of headers every 160 ms, a 1-byte report every 100 ms (10 s: 63 packets)
    assert row.header_bps == pytest.approx(2000, rel=0.01) and row.ctrl_bps == pytest.approx(80, rel=0.01)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not set(manifest["versions"]) & set(HEAVY)


@pytest.mark.slow
@pytest.mark.parametrize("kind, system", [("opus", "{kind: opus, bitrate_bps: 16000, frame_ms: 20, fec: true}"),
                                          ("aac", "{kind: aac, bitrate_bps: 16000}")])
def test_codec_run_on_the_shipped_clip(venv, kind, system):
    env, work = venv
    scenario = _scenario(work, f"tf-{kind}", system)
    out = work / kind
    r = simlab(env, "run", str(scenario), "--out", str(out), cwd=work)
    assert r.returncode == 0, r.stderr
    names = {p.name for p in out.iterdir()}
    assert names == {"packets.csv", "frames.csv", "summary.csv", "manifest.json", "received.wav", "reference.wav"}
    row = pd.read_csv(out / "summary.csv").iloc[0]
    assert row.system == kind and row.packets_sent > 0 and row.payload_bps > 0
    for wav in ("received.wav", "reference.wav"):
        info = soundfile.info(out / wav)
        assert info.samplerate == 24000 and 2.5 < info.duration <= 3.0, (wav, info)

    r = simlab(env, "plot", str(out), cwd=work)  # a run folder with audio: fig. 9 with a spectrogram
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (out / "plots").iterdir()} == {"fig9.png", "fig9.pdf"}


@pytest.mark.slow
def test_batch_and_its_plots(venv):
    env, work = venv
    experiment = work / "tiny.yaml"
    experiment.write_text("name: tiny\nseed: 3\n"
                          "base:\n  name: tiny\n  duration_s: 5\n  system: {kind: synthetic, quantizers: 8}\n"
                          "  network: {forward: {loss: {model: uniform, p: 0.1}}}\n"
                          "grid:\n  network.forward.loss.p: [0.0, 0.2]\n")
    out = work / "batch"
    r = simlab(env, "batch", str(experiment), "--out", str(out), "-j", "1", "--no-progress", cwd=work)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(out / "runs.csv")
    assert len(table) == 2 and (table.status == "ok").all(), table
    assert sorted(table["network.forward.loss.p"]) == [0.0, 0.2]
    runs = sorted((out / "runs").iterdir())
    assert len(runs) == 2 and all((run / "summary.csv").is_file() for run in runs)

    # The synthetic system has no quality column: plot what it has.
    r = simlab(env, "plot", str(out / "runs.csv"), "--y", "total_bps,loss_rate", cwd=work)
    assert r.returncode == 0, r.stderr
    figures = {p.suffix for p in out.glob("runs_*vs_network-forward-loss-p.*")}
    assert figures == {".png", ".pdf"}, sorted(p.name for p in out.iterdir())

    r = simlab(env, "plot", *map(str, runs), "--out", str(work / "overlay"), cwd=work)  # run folders, no audio
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (work / "overlay").iterdir()} == {"fig9_overlay.png", "fig9_overlay.pdf"}


@pytest.mark.slow
def test_largesc_is_refused_in_one_line(venv):
    env, work = venv
    scenario = _scenario(work, "tf-largesc", "{kind: largesc, concealer: repeat}")
    r = simlab(env, "check", str(scenario), cwd=work)  # validating needs no torch
    assert r.returncode == 0, r.stderr
    out = work / "largesc"
    r = simlab(env, "run", str(scenario), "--out", str(out), cwd=work)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "torch" in lines[0] and "simlab[models]" in lines[0] and "moshi" in lines[0], lines[0]
    assert not out.exists()
