"""Experiment -> runs: the product of the grid, the systems (each with its own grid), the audio
files and the repeats. Each run's seed comes from the experiment seed and a hash of the run's
coordinate values (never its position), so adding a grid value or reordering the grid leaves
every other run's seed unchanged; each run's key is a hash of its whole resolved scenario."""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simlab import registry
from simlab.batch.audio_set import expand_audio, librispeech_transcript, scenario_audio
from simlab.batch.experiment import AUDIO, LABEL, REPEAT, Experiment
from simlab.errors import UserError
from simlab.scenario import set_path as scenario_set_path
from simlab.scenario import Scenario, parse_scenario, read_yaml


@dataclass(frozen=True)
class Run:
    """One point of the sweep: its coordinates, seed and key, and the scenario to run."""

    coords: dict[str, Any]
    seed: int
    key: str
    scenario: dict  # resolved (every default filled in); parse with ``base_dir``
    base_dir: str
    needs_gpu: bool

    def parse(self) -> Scenario:
        return parse_scenario(self.scenario, self.base_dir, source=f"run {self.key}")


def canon(v: Any) -> Any:
    """A value as the seed sees it: 2 and 2.0 are the same coordinate value."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, dict):
        return {str(k): canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [canon(x) for x in v]
    return v


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def run_seed(experiment_seed: int, coords: dict[str, Any], shared: list[str] | tuple = ()) -> int:
    """A 63-bit seed from the experiment seed and the coordinates not in ``shared``: a SHA-256 of
    their canonical JSON becomes the spawn key of a ``SeedSequence`` rooted at the experiment seed."""
    kept = {k: canon(v) for k, v in coords.items() if k not in shared}
    digest = hashlib.sha256(canonical_json(kept).encode()).digest()
    words = tuple(int(w) for w in np.frombuffer(digest[:16], dtype="<u4"))
    ss = np.random.SeedSequence(entropy=experiment_seed, spawn_key=words)
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


#: Scenario keys added after batch folders existed, at the value that does what runs did before
#: them: left out of the run key there, so that an unchanged experiment still resumes its folder.
NEUTRAL_DEFAULTS: dict[tuple[str, ...], Any] = {("network", "bottleneck"): "per_flow",
                                                ("network", "forward", "link"): {"model": "fifo"},
                                                ("network", "reverse", "link"): {"model": "fifo"},
                                                ("network", "forward", "link_overhead_bytes"): 0,
                                                ("network", "reverse", "link_overhead_bytes"): 0,
                                                ("network", "forward", "mtu_bytes"): None,
                                                ("network", "reverse", "mtu_bytes"): None,
                                                ("network", "start_offsets"): None,
                                                ("network", "send_jitter_s"): 0.0,
                                                ("receiver", "jitter_buffer"): {"kind": "fixed"},
                                                ("feedback", "outage_s"): None,
                                                ("feedback", "interval"): "fixed",
                                                ("feedback", "session_bps"): None,
                                                ("feedback", "reduced_minimum"): False,
                                                ("compute", "batch"): False,
                                                ("outputs", "format"): "csv"}


#: Only the ``wer`` metric uses ``recognizer``: a run without it is keyed with this value (the default
#: before faster-whisper), whatever its scenario says, so its key does not change with the default.
KEYED_RECOGNIZER_WITHOUT_WER = "pocketsphinx"


def run_key(resolved: dict) -> str:
    """16 hex digits of the SHA-256 of the resolved scenario's canonical JSON (`NEUTRAL_DEFAULTS`
    left out; ``recognizer`` as `KEYED_RECOGNIZER_WITHOUT_WER` when ``wer`` is not among the metrics)."""
    data = copy.deepcopy(resolved)
    if "recognizer" in data and "wer" not in (data.get("metrics") or ()):
        data["recognizer"] = KEYED_RECOGNIZER_WITHOUT_WER
    for path, value in NEUTRAL_DEFAULTS.items():
        *parents, leaf = path
        node = data
        for k in parents:
            node = node.get(k) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf, object()) == value:
            del node[leaf]
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


def set_path(data: dict, key: str, value: Any) -> None:
    """Set ``a.b.c`` in nested mappings, as ``--set`` does (`simlab.scenario.set_path`)."""
    scenario_set_path(data, key, value, where="grid:")


def _base(exp: Experiment) -> tuple[dict, Path]:
    """The base scenario, validated and resolved (every default filled in, so that a grid key such
    as ``network.forward.loss.p`` lands in a complete mapping), and the folder it is relative to."""
    exp_dir = Path(exp.base_dir)
    if isinstance(exp.base, dict):
        data, folder, source = exp.base, exp_dir, f"{exp.name}: base"
    else:
        path = exp_dir / exp.base
        data, folder, source = read_yaml(path), path.parent, str(path)
    return parse_scenario(data, folder, source=source).resolved(), folder


def _product(grid: dict[str, list]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(grid[k] for k in keys))]


def _describe(coords: dict) -> str:
    return ", ".join(f"{k}={canonical_json(v) if not isinstance(v, str) else v}" for k, v in coords.items())


#: The most runs one experiment expands to (as many as ``repeats`` allows alone): each is validated
#: as a scenario (about 1 ms), so a grid of a million points would keep even --dry-run busy for
#: half an hour before it printed a line.
MAX_RUNS = 100_000


def _check_size(exp: Experiment, systems: list, n_audio: int) -> None:
    grid = math.prod(len(v) for v in exp.grid.values())
    per_system = sum(math.prod(len(v) for v in e.grid.values()) if e is not None else 1 for e in systems)
    n = grid * per_system * n_audio * exp.repeats
    if n > MAX_RUNS:
        raise UserError(f"{exp.name}: {n} runs; an experiment expands to at most {MAX_RUNS} (sweep fewer values "
                        f"or repeats, or split it)")


def expand(exp: Experiment) -> list[Run]:
    """Every run of the experiment, each validated as a scenario (errors name the run)."""
    base, scenario_dir = _base(exp)
    exp_dir = Path(exp.base_dir)
    systems = list(exp.systems) or [None]
    audio = expand_audio(exp.audio, exp_dir, exp.audio_limit) if exp.audio is not None else [None]
    _check_size(exp, systems, len(audio))
    transcripts: dict[str, str | None] = {}
    runs: list[Run] = []
    seen: dict[str, dict] = {}
    for entry in systems:
        sys_points = _product(entry.grid) if entry is not None else [{}]
        for point, sys_point, clip, rep in itertools.product(_product(exp.grid), sys_points, audio,
                                                             range(exp.repeats)):
            coords: dict[str, Any] = {**point, **sys_point}
            data = copy.deepcopy(base)
            data["name"] = exp.name
            if entry is not None:
                coords[LABEL] = entry.label
                data["system"] = copy.deepcopy(entry.spec)
                for key, value in entry.overrides.items():
                    set_path(data, key, value)
            if clip is not None:
                coords[AUDIO] = clip
                data["audio"], file = scenario_audio(clip, exp_dir, scenario_dir)
                if exp.transcripts:
                    if clip not in transcripts:
                        transcripts[clip] = librispeech_transcript(file)
                    if transcripts[clip] is not None:
                        data["transcript"] = transcripts[clip]
            coords[REPEAT] = rep
            for key, value in {**point, **sys_point}.items():
                set_path(data, key, value)
            seed = run_seed(exp.seed, coords, exp.same_seed_across)
            data["seed"] = seed
            sc = parse_scenario(data, scenario_dir, source=f"{exp.name}: run {_describe(coords)}")
            resolved = sc.resolved()
            key = run_key(resolved)
            if key in seen:
                raise UserError(f"{exp.name}: runs {_describe(seen[key])} and {_describe(coords)} are the "
                                f"same scenario (same_seed_across makes them identical?)")
            seen[key] = coords
            gpu = registry.system(sc.system).uses_torch and sc.compute.device == "cuda"
            runs.append(Run(coords, seed, key, resolved, str(scenario_dir), gpu))
    return runs


def coordinate_columns(exp: Experiment) -> list[str]:
    """The table's coordinate columns: grid keys, system grid keys, label, audio, repeat."""
    cols = list(exp.grid)
    for s in exp.systems:
        cols += [k for k in s.grid if k not in cols]
    if exp.systems:
        cols.append(LABEL)
    if exp.audio is not None:
        cols.append(AUDIO)
    return cols + [REPEAT]
