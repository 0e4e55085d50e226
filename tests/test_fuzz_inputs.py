"""Malformed scenarios and experiments, by the thousand: `simlab check` and `simlab batch --dry-run`
end in exit 0 or one line with exit 2, never a traceback, a hang or a file written (issue 18).

Valid inputs (the shipped scenarios and experiments, and inline ones that reach the other loss
models, estimators, systems and files) are mutated with a fixed seed: keys deleted, renamed and
added, values retyped, numbers pushed out of range, to non-finite or huge values, subtrees
wrapped, unwrapped and swapped, unicode and path-like strings, YAML text cut, garbled, tagged and
aliased, and ``--set``/``--only`` arguments of every kind. Each case runs in this process
(`simlab.cli.main`), a few of them also as a ``simlab`` process.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from helpers import ROOT
from simlab.cli import main

SEED = 18
N_SCENARIOS = 500
N_EXPERIMENTS = 250
HANG_S = 20  # a case that takes this long is a hang: the slowest valid case here takes under 2 s

INLINE_SCENARIOS = [
    "name: opus\nduration_s: 2\naudio: [nope.wav, package:clip.wav]\nsystem: {kind: opus, bitrate_bps: 24000, "
    "frame_ms: 20}\nmetrics: [visqol]\nrecognizer: pocketsphinx\n",
    "name: trace\nduration_s: 3\nnetwork:\n  forward:\n    loss: {model: trace, file: trace.txt, loop: false, "
    "after_end: lossy}\n    schedule:\n      - {until_s: 1, loss: {model: uniform, p: 0.1}}\n"
    "      - {until_s: 2, loss: {model: gilbert_elliott, p: 0.1, r: 0.5, loss_good: 0.01, loss_bad: 0.9}}\n"
    "  reverse: {loss: {model: trace, file: trace.txt}}\n",
    "name: rohc\nflows: 3\nnetwork: {headers: rohc, rohc: {steady_bytes: 2, refresh_every: 8}, bottleneck: shared,"
    " forward: {queue_packets: 4, jitter_s: 0.01}}\nfeedback: {estimator: {kind: window, window_s: 0.5}, "
    "accounting: rtcp, report_bytes: 2}\nreceiver: {playout_delay_s: 0.2}\n",
    "name: lsc\naudio: quiet.wav\nsystem: {kind: largesc, controller: fixed, quantizers: 4, concealer: repeat}\n"
    "compute: {timing: profile, profile: cpu}\nwindows: {window_s: 1, hop_s: 0.5, metrics: false}\n",
    "name: aac\naudio: quiet.wav\ntranscript: hello world\nmetrics: [wer]\nsystem: {kind: aac, bitrate_bps: 16000}\n"
    "packetization: {frames_per_packet: 3, interleave: true, redundancy: own}\noutputs: {pcap: true}\n",
]
INLINE_EXPERIMENTS = [
    "name: tiny\nbase: {duration_s: 1, system: {kind: synthetic}}\nseed: 3\nrepeats: 2\n"
    "grid:\n  network.forward.loss.p: [0.0, 0.1]\n  network.headers: [ipv4, rohc]\n",
    "name: systems\nbase: ../scenarios/eq24.yaml\naudio: quiet.wav\ntranscripts: false\n"
    "systems:\n  - {label: syn, spec: {kind: synthetic}, grid: {system.quantizers: [2, 8]}}\n"
    "  - {label: opus, spec: {kind: opus}, overrides: {packetization.frames_per_packet: 1}}\n"
    "same_seed_across: [label]\n",
]

# Replacement values: every type, out of every range, non-finite, huge, unicode, paths.
WEIRD = [None, True, False, 0, -1, 1, 2, 7, 65, 10 ** 6, 10 ** 30, -10 ** 30, 2 ** 63, 0.5, -0.5, 1e-300, 1e300,
         -1e300, float("nan"), float("inf"), float("-inf"), "", " ", "x", "eight", "1e6", "0x10", "true", "null",
         "~", "ünïcødé ✓ 😀", "\u202e\u200b", "a" * 5000, "/", "/dev/zero", "/dev/null", "/proc/self/mem", "..",
         ".", "~nosuchuser/a.wav", "package:nope.wav", "shared:../../nope", "trace.txt", "quiet.wav", "adir",
         "loop.wav", "bad.txt", "scenarios/eq24.yaml", "*", "**/*.wav", "a\\b", "nul\x00byte", [], {}, [1, 2],
         [[[]]], {"kind": "opus"}, {"model": "trace"}, {"model": "uniform", "p": 2}, {"a": {"b": {"c": None}}},
         ["x", None, 1.5], "kind", "model", "uniform", "gilbert_elliott", "largesc", "fixed", "shared", "window"]
# What a path-valued key (audio, file, transcript, profile, base) may be given instead of its file.
PATHS = ["/proc/self/mem", "/proc/self/status", "/dev/zero", "/dev/null", "/", "adir", "loop.wav", "quiet.wav",
         "trace.txt", "bad.txt", "../scenarios/eq24.yaml", "~nosuchuser/x.wav", "", "..", "package:clip.wav",
         "package:nope.wav", "package:", "shared:dev", "shared:", "*.wav", "[", "nul\x00byte", "ü.wav", "moshiko",
         "a100-paper", "cpu", "small", "fuzz.yaml", "x.trans.txt"]
KEY_NOISE = ["", " ", "x", "ü", "kind", "model", "name", "0", "1e3", "null", "a.b", "<<", "__class__"]
TEXT_NOISE = list("{}[]:,-#&*!|>'\"%@`?\t\n\r\\ ") + ["\x00", "\ufeff", "é", "😀", "\udcff", " : ", "- ", "<<: *a",
                                                       "&a ", "*a", "!!python/object/apply:os.system ['echo']",
                                                       "!!binary ", "!!set ", "!!float ", "!!int ", "!!omap "]


def _paths(node, prefix=()):
    """Every key path into the tree (mapping keys and list indices)."""
    out = [prefix]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out += _paths(v, prefix + (k,))
    return out


def _get(node, path):
    for k in path:
        node = node[k]
    return node


def _set(root, path, value):
    if not path:
        return value
    _get(root, path[:-1])[path[-1]] = value
    return root


def _number(rng, x):
    return rng.choice([-x, x * 10 ** rng.randint(1, 12), x + 0.5, 0, -1, 1e-300, 1e300, float("nan"), float("inf"),
                       -float("inf"), 10 ** rng.randint(5, 40), True, str(x)])


def _typo(rng, key):
    key = str(key)
    ops = [lambda k: k[:-1], lambda k: k + rng.choice("sx_"), lambda k: k.upper(), lambda k: k.replace("_", "-"),
           lambda k: k[::-1], lambda k: rng.choice(KEY_NOISE), lambda k: k + "\u0301", lambda k: " " + k]
    return rng.choice(ops)(key) or "k"


def mutate_tree(rng, data):
    """One to three structural mutations of a parsed YAML tree."""
    data = copy.deepcopy(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        path = rng.choice(_paths(data))
        node = _get(data, path)
        parent = _get(data, path[:-1]) if path else None
        op = rng.randrange(10)
        if isinstance(node, str) and rng.random() < 0.5:
            op = 9
        if op == 0 and path:  # delete
            del parent[path[-1]]
        elif op == 1 and path and isinstance(parent, dict):  # rename
            parent[_typo(rng, path[-1])] = parent.pop(path[-1])
        elif op == 2:  # retype
            data = _set(data, path, copy.deepcopy(rng.choice(WEIRD)))
        elif op == 3 and isinstance(node, (int, float)) and not isinstance(node, bool):
            data = _set(data, path, _number(rng, node))
        elif op == 4:  # wrap
            data = _set(data, path, rng.choice([[node], {rng.choice(KEY_NOISE): node}, [node, node]]))
        elif op == 5 and isinstance(node, dict) and node:  # unwrap
            data = _set(data, path, rng.choice([list(node.values()), next(iter(node.values())), list(node)]))
        elif op == 6 and isinstance(node, dict):  # add a key
            node[rng.choice(KEY_NOISE + ["seed", "flows", "loop", "after_end", "repeats"])] = rng.choice(WEIRD)
        elif op == 7:  # swap with another subtree
            other = rng.choice(_paths(data))
            if other and path and other[:len(path)] != path and path[:len(other)] != other:
                a, b = copy.deepcopy(node), copy.deepcopy(_get(data, other))
                data = _set(_set(data, path, b), other, a)
        elif op == 8 and isinstance(node, list):  # grow a list
            node.extend(copy.deepcopy(node) * rng.randint(1, 3))
        elif op == 9:  # a path (or a name) that is not what the key wants
            data = _set(data, path, rng.choice(PATHS))
    return data


def mutate_text(rng, text):
    """A textual mutation: cut, garble, duplicate, indent, tag, alias bomb, or raw bytes."""
    op = rng.choice([0, 0, 1, 1, 1, 2, 2, 3, 4, 4, 5, 6, 7, 8])
    i = rng.randrange(len(text) + 1)
    if op == 0:
        return text[:i]
    if op == 1:
        return text[:i] + "".join(rng.choice(TEXT_NOISE) for _ in range(rng.randint(1, 4))) + text[i:]
    lines = text.splitlines() or [""]
    j = rng.randrange(len(lines))
    if op == 2:
        return "\n".join(lines[:j + 1] + [lines[j]] + lines[j + 1:]) + "\n"  # a key given twice
    if op == 3:
        return "\n".join(lines[:j] + [rng.choice(["\t", "   ", ""]) + lines[j].strip()] + lines[j + 1:])
    if op == 4:
        return text + rng.choice(["\nx: !!python/object/apply:os.system ['touch pwned']\n", "\nseed: !!float x\n",
                                  "\nseed: !!timestamp x\n", "\na: &a [*a]\n", "\n" + "[" * 500 + "]" * 500 + "\n",
                                  "\n---\nname: two\n", "\n...\n", "\nseed: 1_000\n", "\nflows: 0b11\n"])
    if op == 5:
        return text.replace(": ", ":", 1) if rng.random() < 0.5 else text.replace("\n", "\r\n")
    if op == 6:
        return "a: &a [1,1,1,1,1,1,1,1,1,1]\n" + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdef", "bcdefg")) + text
    if op == 7:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    return text.encode("utf-8") + b"\xff\xfe" + text[:i].encode()


def _dump(data) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)


def _set_args(rng, data, top_level_only=False) -> list[str]:
    args = []
    for _ in range(rng.choice([0, 0, 1, 2])):
        paths = [p for p in _paths(data) if p and (len(p) == 1 or not top_level_only)]
        key = ".".join(map(str, rng.choice(paths))) if paths and rng.random() < 0.8 else rng.choice(
            ["", ".", "a..b", "network.forward.schedule.99.until_s", "seed.x", "ü", "flows", "system.kind"])
        value = rng.choice([_dump(rng.choice(WEIRD)).strip().replace("\n", " "), "[unclosed", "{a: 1, a: 2}",
                            "!!python/name:os.system", "1e6", "-2E-3", ".5", "", "=", "a=b"])
        args += ["--set", f"{key}={value}" if rng.random() < 0.85 else rng.choice([key, f"={value}"])]
    return args


def _only_args(rng) -> list[str]:
    if rng.random() < 0.7:
        return []
    name = rng.choice(["label", "repeat", "audio", "network.forward.loss.p", "nope", "", "system.quantizers"])
    value = rng.choice(["0", "1", "opus", "0.1", "1e-1", "[1", "{}", "!!float x", "", "=", "syn"])
    return ["--only", rng.choice([f"{name}={value}", name])]


def _workspace(root: Path) -> Path:
    """scenarios/ and experiments/ beside each other (experiments name ../scenarios), with the files
    the inline seeds name: a trace, a short quiet clip, a folder, a symlink loop, a bad trace."""
    import numpy as np
    import soundfile as sf

    work = root / "work"
    shutil.copytree(ROOT / "scenarios", work / "scenarios")
    shutil.copytree(ROOT / "experiments", work / "experiments", ignore=shutil.ignore_patterns("gpu", "*.py", "*.md"))
    for folder in ("scenarios", "experiments"):
        (work / folder / "trace.txt").write_text("0 1 1 0 0 0 1 0\n")
        (work / folder / "bad.txt").write_text("0 2\n")
        sf.write(str(work / folder / "quiet.wav"), 0.01 * np.sin(np.arange(24000) / 7.0), 24000)
        (work / folder / "adir").mkdir()
        (work / folder / "loop.wav").symlink_to("loop.wav")
    return work


def _seeds(work: Path):
    def shrink(data):  # a shipped experiment, cut to a few runs so that each case takes milliseconds
        if isinstance(data.get("audio_limit"), int):
            data["audio_limit"] = 1
        for grid in [data.get("grid", {})] + [s.get("grid", {}) for s in data.get("systems", [])]:
            for k in grid:
                grid[k] = grid[k][:2]
        return data

    scenarios = [yaml.safe_load(p.read_text()) for p in sorted((work / "scenarios").glob("*.yaml"))]
    scenarios += [yaml.safe_load(t) for t in INLINE_SCENARIOS]
    experiments = [shrink(yaml.safe_load(p.read_text())) for p in sorted((work / "experiments").glob("*.yaml"))]
    experiments += [yaml.safe_load(t) for t in INLINE_EXPERIMENTS]
    return scenarios, experiments


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


def _files(*folders: Path) -> set[str]:
    return {os.path.join(top, n) for f in folders for top, dirs, names in os.walk(f) for n in dirs + names}


#: Keys whose values name files: each seed's are also given every one of `PATHS` in turn.
PATH_KEYS = {"audio", "file", "transcript", "profile", "base"}


def _path_cases(seeds, kind):
    for n, data in enumerate(seeds):
        for path in _paths(data):
            in_list = len(path) > 1 and path[-2] in PATH_KEYS and isinstance(path[-1], int)  # audio: [a, b]
            if path and path[-1] in PATH_KEYS or in_list:
                for value in PATHS:
                    if kind == "batch" and value == "/":  # valid: every audio file on the machine (20 s here)
                        continue
                    yield f"{kind}-path-{n}-{'.'.join(map(str, path))}={value}", _dump(
                        _set(copy.deepcopy(data), path, value))


def _cases(work: Path):
    rng = random.Random(SEED)
    scenarios, experiments = _seeds(work)
    for kind, seeds in (("check", scenarios), ("batch", experiments)):
        for name, text in _path_cases(seeds, kind):
            yield name, kind, text, ["--dry-run"] if kind == "batch" else []
    for kind, seeds, n in (("check", scenarios, N_SCENARIOS), ("batch", experiments, N_EXPERIMENTS)):
        for i in range(n):
            data = seeds[i % len(seeds)]
            mutated = mutate_tree(rng, data) if rng.random() < 0.75 else data
            text = _dump(mutated)
            if rng.random() < 0.15 or mutated is data:
                text = mutate_text(rng, text)
            args = _set_args(rng, mutated if isinstance(mutated, dict) else {}, top_level_only=kind == "batch")
            if kind == "batch":
                args = ["--dry-run", *args, *_only_args(rng)]
            yield f"{kind}-{i}", kind, text, args


def _judge(name, code, out, err, kind):
    """None when the case ended as it must, else what went wrong."""
    if code == 2:
        lines = err.strip().splitlines()
        if len(lines) != 1 or not lines[0].startswith("simlab: error: ") or "Traceback" in err:
            return f"exit 2 but stderr is not one error line: {err[-2000:]!r}"
        return None
    if code != 0:
        return f"exit {code}: {err[-2000:]!r}"
    if kind == "check":
        json.loads(out)  # the resolved scenario
    elif not err.strip().endswith(" runs"):
        return f"exit 0 without the run count: {err[-500:]!r}"
    return None


@pytest.mark.slow
def test_malformed_scenarios_and_experiments_are_one_line_errors(tmp_path, monkeypatch):
    work = _workspace(tmp_path)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    monkeypatch.setenv("TMPDIR", str(private_tmp))
    monkeypatch.chdir(work)
    before = _files(work, private_tmp)
    problems, count = [], 0
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for name, kind, text, args in _cases(work):
            folder = work / ("scenarios" if kind == "check" else "experiments")
            target = folder / "fuzz.yaml"
            target.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
            out, err = io.StringIO(), io.StringIO()
            signal.setitimer(signal.ITIMER_REAL, HANG_S)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    code = main(["check" if kind == "check" else "batch", str(target), *args])
            except _Hang:
                code = "hang"
            except SystemExit as exc:  # argparse: not a case of this test
                code = exc.code
            except Exception as exc:  # noqa: BLE001 (a crash: what this test looks for)
                code = f"crash {type(exc).__name__}: {exc}"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            count += 1
            why = _judge(name, code, out.getvalue(), err.getvalue(), kind) if isinstance(code, int) else str(code)
            target.unlink()
            new = _files(work, private_tmp) - before
            if new:
                why = (why or "") + f" wrote {sorted(new)[:5]}"
                for p in sorted(new, reverse=True):
                    (shutil.rmtree if os.path.isdir(p) and not os.path.islink(p) else os.unlink)(p)
            if why:
                problems.append(f"{name} {args}: {why}\n--- input ---\n{text[:600]!r}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert count >= 1000
    assert not problems, f"{len(problems)} of {count} cases failed:\n\n" + "\n\n".join(problems[:10])


@pytest.mark.parametrize("case", ["scenario", "experiment"])
def test_a_few_mutants_as_processes(tmp_path, case):
    """The same judgement on whole ``simlab`` processes (what the in-process runs stand for)."""
    work = _workspace(tmp_path)
    rng = random.Random(SEED + 1)
    scenarios, experiments = _seeds(work)
    seeds, folder = (scenarios, "scenarios") if case == "scenario" else (experiments, "experiments")
    before = _files(work)
    for i in range(4):
        text = _dump(mutate_tree(rng, seeds[i]))
        (work / folder / "fuzz.yaml").write_text(text)
        command = ["check", "fuzz.yaml"] if case == "scenario" else ["batch", "fuzz.yaml", "--dry-run"]
        r = subprocess.run([sys.executable, "-m", "simlab.cli", *command], capture_output=True, text=True,
                           cwd=work / folder, timeout=120)
        assert _judge(str(i), r.returncode, r.stdout, r.stderr, "check" if case == "scenario" else "batch") is None, (
            text, r.stderr)
    (work / folder / "fuzz.yaml").unlink()
    assert _files(work) == before
