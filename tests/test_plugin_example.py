"""The third-party plugin in examples/plugin (issue 14): its G.711 codec is bit-exact to an
independent implementation (audioop), its outage model decides by send time, and, installed
into a fresh virtual environment like anyone's plugin, simlab runs it from a scenario, lists it
in the schema and refuses a typo in its keys with a did-you-mean."""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import site
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simlab import registry
from simlab.actors.base import DictWindow, Received, Timer

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "plugin"
SCENARIO = PLUGIN / "scenario.yaml"
# The plugin's modules, imported from the checkout; the folder leaves sys.path again at once, so a
# simlab_example_plugin.egg-info a `pip install examples/plugin` left there cannot register the
# plugin's entry points for the rest of the test session.
sys.path.insert(0, str(PLUGIN))
try:
    from simlab_example_plugin import g711
    from simlab_example_plugin.mulaw import ENTRY as MULAW, MulawSpec, MulawSystem
    from simlab_example_plugin.outage import ENTRY as OUTAGE, Outage, OutageSpec
finally:
    sys.path.remove(str(PLUGIN))

audioop = pytest.importorskip("audioop")  # the independent reference (gone from Python 3.13)


# --- the codec, against audioop -------------------------------------------------------------

def test_encode_is_bit_exact_to_audioop():
    every = np.arange(-32768, 32768, dtype=np.int16)
    noise = np.random.default_rng(14).integers(-32768, 32768, size=200_000).astype(np.int16)
    for x in (every, noise):
        ref = np.frombuffer(audioop.lin2ulaw(x.tobytes(), 2), dtype=np.uint8)
        assert np.array_equal(g711.encode(x), ref)


def test_decode_is_bit_exact_to_audioop():
    codes = np.arange(256, dtype=np.uint8)
    ref = np.frombuffer(audioop.ulaw2lin(codes.tobytes(), 2), dtype=np.int16)
    assert np.array_equal(g711.decode(codes), ref)
    noise = np.random.default_rng(7).integers(0, 256, size=10_000).astype(np.uint8)
    assert np.array_equal(g711.decode(noise), np.frombuffer(audioop.ulaw2lin(noise.tobytes(), 2), np.int16))
    # G.711's fixed points: 0xFF and 0x7F are +0 and -0, 0x80 and 0x00 the largest levels.
    assert g711.decode(np.array([0xFF, 0x7F, 0x80, 0x00], np.uint8)).tolist() == [0, 0, 32124, -32124]


def _frame(seed: int) -> np.ndarray:
    t = np.arange(160) / 8000
    return (0.3 * np.sin(2 * np.pi * 440 * t + seed) + 0.01 * np.random.default_rng(seed).standard_normal(160)
            ).astype(np.float32)


def test_system_transmits_160_bytes_and_conceals_by_repetition():
    sys_ = MULAW.factory(MulawSpec(kind="mulaw"), None)
    assert (sys_.name, sys_.sample_rate, sys_.frame_samples, sys_.lookahead_frames) == ("mulaw", 8000, 160, 0)
    timer = Timer("profile", None)
    frames = [_frame(k) for k in range(3)]
    enc = [sys_.transmit(k, f, 0.0, timer) for k, f in enumerate(frames)]
    for f, e in zip(frames, enc):
        pcm = np.clip(np.rint(f.astype(np.float64) * 32768), -32768, 32767).astype(np.int16)
        assert e.payload == audioop.lin2ulaw(pcm.tobytes(), 2)
        assert e.unit_bits.tolist() == [1280] and e.copies.tolist() == [1] and e.side_bits == 0
    assert set(timer.take()) == {"encoder"}

    one = np.array([True])
    window = DictWindow({0: Received(0, one, one, enc[0].payload), 1: Received(1, one, ~one, enc[1].payload)})
    d0 = sys_.receive(0, window, timer)
    ref = np.frombuffer(audioop.ulaw2lin(enc[0].payload, 2), np.int16) / 32768.0
    assert d0.concealed == 0 and np.array_equal(d0.audio, ref.astype(np.float32))
    assert np.abs(d0.audio - frames[0]).max() < 0.02  # 8-bit log PCM: about 1 % of full scale at 0.3
    d1, d2 = sys_.receive(1, window, timer), sys_.receive(2, window, timer)  # lost, then unknown
    assert (d1.concealed, d2.concealed) == (1, 1)
    assert np.array_equal(d1.audio, d0.audio * np.float32(0.5))
    assert np.array_equal(d2.audio, d0.audio * np.float32(0.25))
    assert set(timer.take()) == {"decoder"}
    assert sys_.describe()["plc"] == "repeat"

    quiet = MulawSystem("silence")
    assert not quiet.receive(0, DictWindow(), timer).audio.any()


def test_system_refuses_a_frame_of_the_wrong_size():
    with pytest.raises(ValueError, match=r"shape \(160,\)"):
        MulawSystem().transmit(0, np.zeros(320, np.float32), 0.0, Timer("profile", None))


# --- the outage model ----------------------------------------------------------------------

def test_outage_decides_by_send_time():
    o = OUTAGE.factory(OutageSpec(model="outage", period_s=2.0, length_s=0.3), np.random.default_rng(0), str)
    t = np.arange(0, 10, 0.02)  # the float times a 20 ms sender produces, 2.3000000000000003 included
    lost = np.array([o.lost_at(x) for x in t])
    expected = (np.rint(t * 100).astype(int) % 200) < 30  # in 10 ms ticks: exact
    assert np.array_equal(lost, expected)
    assert lost.sum() == 75 and o.mean_loss == pytest.approx(0.15)
    assert o.lost_at(1.9999999999999998) and not o.lost_at(2.3000000000000003)  # edges where the YAML puts them

    late = Outage(1.0, 0.25, start_s=3.5)
    assert [late.lost_at(x) for x in (0.0, 3.49, 3.5, 3.74, 3.75, 4.5, 4.76)] == [False] * 2 + [True] * 2 + \
        [False, True, False]
    assert not any(Outage(1.0, 0.0).lost_at(x) for x in t)


def test_outage_without_times_assumes_20_ms_packets():
    a, b = Outage(2.0, 0.3), Outage(2.0, 0.3)
    drawn = a.draw(1000)
    assert np.array_equal(drawn, [b.lost() for _ in range(1000)])  # the LossModel contract
    assert np.array_equal(drawn, [b.lost_at(0.02 * n) for n in range(1000)])
    assert drawn.mean() == pytest.approx(0.15)


@pytest.mark.parametrize("fields, message", [
    ({"period_s": 2.0, "length_s": 2.0}, "must be less than period_s"),
    ({"period_s": 0.0, "length_s": 0.0}, "is not in (0,"),
    ({"period_s": 2.0, "length_s": -0.1}, "is not >= 0"),
    ({"period_s": 2.0, "length_s": 0.1, "start_s": -1.0}, "is not in [0,"),
    ({"period": 2.0, "length_s": 0.1}, "period"),
])
def test_outage_spec_refuses(fields, message):
    with pytest.raises(ValueError) as err:
        OutageSpec(model="outage", **fields)
    assert message in str(err.value)


def test_registry_accepts_the_entries():
    for entry in (MULAW, OUTAGE):
        registry.register(entry)
        try:
            assert registry.get(entry.group, entry.name) is entry
        finally:
            registry.unregister(entry.group, entry.name)
    assert OUTAGE.nominal_loss(OutageSpec(model="outage", period_s=2.0, length_s=0.3)) == pytest.approx(0.15)
    assert not MULAW.uses_torch and MULAW.needs_audio


def test_plugin_imports_only_public_simlab_modules():
    allowed = {"simlab.registry", "simlab.spec", "simlab.actors.base", "channels.base"}
    used = set()
    for path in (PLUGIN / "simlab_example_plugin").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                used.add(node.module)
            elif isinstance(node, ast.Import):
                used.update(a.name for a in node.names)
    ours = {m for m in used if m.split(".")[0] in ("simlab", "channels")}
    assert ours == allowed, ours
    code = ("import sys; sys.path.insert(0, %r); import simlab_example_plugin.mulaw, simlab_example_plugin.outage; "
            "print('torch' in sys.modules)" % str(PLUGIN))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert r.stdout.strip() == "False"


# --- installed like anyone's plugin --------------------------------------------------------

@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh virtual environment that sees this simlab (editable) and its dependencies, with the
    plugin installed from a copy of examples/plugin (the build leaves nothing in the checkout)."""
    root = tmp_path_factory.mktemp("plugin")
    env = root / "venv"
    # Without a pip of its own: the venv's bundled setuptools (65 on Python 3.11) would shadow the
    # installed one and cannot build a wheel without the `wheel` package; the outer pip installs
    # into the venv all the same (ensurepip only where there is none).
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env)], check=True,
                   timeout=300)
    py = env / "bin" / "python"
    if sys.prefix != sys.base_prefix:
        # Tests running inside a virtual environment: --system-site-packages gives the base
        # interpreter's packages, not that environment's: add its site folders (with their .pth).
        here = subprocess.run([str(py), "-c", "import site; print(site.getsitepackages()[0])"], check=True,
                              capture_output=True, text=True).stdout.strip()
        dirs = site.getsitepackages() + [site.getusersitepackages()]
        Path(here, "_outer_env.pth").write_text("".join(f"import site; site.addsitedir({d!r})\n" for d in dirs))
    if subprocess.run([str(py), "-m", "pip", "--version"], capture_output=True).returncode != 0:
        subprocess.run([str(py), "-m", "ensurepip"], check=True, capture_output=True, timeout=300)
    src = root / "src"
    shutil.copytree(PLUGIN, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    where = subprocess.run([str(py), "-c", "import simlab_example_plugin as m; print(m.__file__)"], check=True,
                           capture_output=True, text=True, cwd=root).stdout.strip()
    assert Path(where).is_relative_to(env), where  # installed into the venv, nowhere else
    return py, root


def _installed_here() -> bool:
    try:
        metadata.distribution("simlab-example-plugin")
        return True
    except metadata.PackageNotFoundError:
        return False


#: Checks that simlab without the plugin does not know its names (meaningless where it is installed).
without_plugin = pytest.mark.skipif(_installed_here(), reason="simlab-example-plugin is installed here")


def simlab(py, *args, cwd):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the plugin comes from the environment, not from a path
    return subprocess.run([str(py), "-m", "simlab", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


@pytest.mark.slow
def test_installed_plugin_runs_the_example_scenario(venv):
    py, root = venv
    out = root / "run"
    r = simlab(py, "run", str(SCENARIO), "--out", str(out), cwd=root)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr, r.stderr  # the plugin loaded cleanly

    packets = pd.read_csv(out / "packets.csv")
    media = packets[packets.kind != "feedback"]
    assert len(media) == 500  # 10 s of 20 ms frames, one frame a packet
    assert (media.payload_bytes == 160).all() and (media.payload_bits == 1280).all()
    assert np.allclose(np.diff(np.sort(media.send_s.to_numpy())), 0.02)
    # Lost: exactly the packets sent inside [2k, 2k + 0.3) s (in 10 ms ticks, exact).
    ticks = np.rint(media.send_s.to_numpy() * 100).astype(int)
    inside = (ticks % 200) < 30
    assert np.array_equal(media.lost.to_numpy().astype(bool), inside)
    assert inside.sum() == 75
    assert not media.dropped.any() and not media.late.any()

    summary = pd.read_csv(out / "summary.csv").iloc[0]
    assert summary.system == "mulaw"
    assert summary.payload_bps == pytest.approx(64000, rel=0.02)
    assert summary.packets_lost == 75 and summary.loss_rate == pytest.approx(0.15)
    frames = pd.read_csv(out / "frames.csv")
    assert len(frames) == 500 and frames.recovery.value_counts().to_dict() == {"none": 425, "repeat": 75}
    # The speech survives the codec: about 37 dB SNR between outages (G.711 µ-law: ~38 dB).
    import soundfile as sf

    received, rate = sf.read(out / "received.wav")
    reference, _ = sf.read(out / "reference.wav")
    a, b = int(0.5 * rate), int(1.9 * rate)
    err = received[a:b] - reference[a:b]
    assert 10 * np.log10(np.sum(reference[a:b] ** 2) / np.sum(err ** 2)) > 30
    manifest = json.loads((out / "manifest.json").read_text())
    assert "mulaw" in json.dumps(manifest)


@pytest.mark.slow
def test_installed_plugin_is_in_the_schema(venv):
    py, root = venv
    r = simlab(py, "schema", cwd=root)
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    text = json.dumps(schema)
    assert '"mulaw"' in text and '"outage"' in text and "period_s" in text and '"plc"' in text
    if _installed_here():
        return
    # Not there without the plugin: the schema is the registry's.
    plain = subprocess.run([sys.executable, "-m", "simlab", "schema"], capture_output=True, text=True, cwd=root,
                           timeout=600)
    assert plain.returncode == 0 and '"mulaw"' not in plain.stdout


@pytest.mark.slow
@pytest.mark.parametrize("old, new, expected", [
    ("period_s: 2.0", "period: 2.0", "network.forward.loss.period: unknown key; did you mean 'period_s'?"),
    ("length_s: 0.3}", "length_s: 0.3, start: 1.0}", "network.forward.loss.start: unknown key; did you mean 'start_s'?"),
    ("plc: repeat", "plcc: repeat", "system.plcc: unknown key; did you mean 'plc'?"),
    ("length_s: 0.3", "length_s: 2.5", "length_s"),
])
def test_installed_plugin_typos_are_one_line_errors(venv, tmp_path, old, new, expected):
    py, root = venv
    text = SCENARIO.read_text()
    assert old in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(old, new))
    r = simlab(py, "check", str(bad), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
@without_plugin
def test_without_the_plugin_the_scenario_is_refused(tmp_path):
    r = subprocess.run([sys.executable, "-m", "simlab", "check", str(SCENARIO)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=600)
    assert r.returncode == 2
    assert "'mulaw' is not one of" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_installed_plugin_runs_in_batch_workers(venv, tmp_path):
    """Batch workers are spawned processes: they find the plugin by its entry points too."""
    py, _ = venv
    exp = tmp_path / "sweep.yaml"
    exp.write_text(f"name: outage_sweep\nbase: {SCENARIO}\nseed: 3\n"
                   "grid:\n  network.forward.loss.length_s: [0.1, 0.3]\n  system.plc: [repeat, silence]\n")
    r = simlab(py, "batch", str(exp), "--out", str(tmp_path / "out"), "-j", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert (runs.status == "ok").all() and len(runs) == 4
    by_length = runs.groupby("network.forward.loss.length_s").loss_rate.unique()
    assert [list(v) for v in by_length] == [[0.05], [0.15]]
    assert np.allclose(runs.payload_bps, 64000)


BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"
[project]
name = "simlab-broken-plugin"
version = "0.0.1"
[project.entry-points."simlab.systems"]
boom = "broken_plugin:NOPE"
wrong = "broken_plugin:WRONG"
[project.entry-points."simlab.channels"]
uniform = "broken_plugin:CLASH"
[tool.setuptools]
py-modules = ["broken_plugin"]
"""

BROKEN_MODULE = """\
from typing import Literal
from simlab.registry import ChannelEntry
from simlab.spec import Strict

class U(Strict):
    model: Literal["uniform"]

CLASH = ChannelEntry("uniform", U, lambda spec, rng, resolve: None)
WRONG = "not an entry"
"""


@pytest.mark.slow
def test_broken_and_clashing_plugins_are_one_line_warnings(tmp_path):
    """What docs/plugins.md shows: each problem one line naming distribution and entry point;
    the entry ignored, the built-in kept, everything else working."""
    if sys.prefix != sys.base_prefix:
        pytest.skip("needs the base interpreter's site folders (see the venv fixture)")
    src = tmp_path / "src"
    src.mkdir()
    (src / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (src / "broken_plugin.py").write_text(BROKEN_MODULE)
    env = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env)], check=True,
                   timeout=300)
    py = env / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", str(src)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    r = simlab(py, "check", str(ROOT / "scenarios" / "eq24.yaml"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines == [
        "simlab: warning: simlab-broken-plugin (entry point boom = broken_plugin:NOPE in simlab.systems) failed to "
        "load: AttributeError: module 'broken_plugin' has no attribute 'NOPE'",
        "simlab: warning: simlab-broken-plugin (entry point wrong = broken_plugin:WRONG in simlab.systems): is a "
        "str, not a simlab.registry.SystemEntry: ignored",
        "simlab: warning: simlab-broken-plugin (entry point uniform = broken_plugin:CLASH in simlab.channels): "
        "channel 'uniform' is already provided by simlab (entry point uniform = simlab.entries.losses:UNIFORM in "
        "simlab.channels): ignored",
    ]
    docs = (ROOT / "docs" / "plugins.md").read_text()
    assert all(line in docs for line in lines)  # the docs show exactly these


def test_docs_show_the_example_as_it_is():
    """docs/plugins.md's complete example is the package's files, verbatim."""
    docs = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```\n", docs, flags=re.S)
    assert {p for p, _ in blocks} == {"examples/plugin/pyproject.toml", "examples/plugin/scenario.yaml",
                                       "examples/plugin/simlab_example_plugin/mulaw.py",
                                       "examples/plugin/simlab_example_plugin/outage.py",
                                       "examples/plugin/simlab_example_plugin/g711.py"}
    for path, text in blocks:
        assert text == (ROOT / path).read_text(), f"docs/plugins.md's copy of {path} is stale"
