"""The golden cases: every shipped scenario, and per shipped experiment one small run per system
(the first audio file, repeat 0, the first and the last grid point), with the SHA-256 of every
output file but the manifest (which holds versions and wall times). Recorded before the
registry redesign (issue 14); `tests/test_golden.py` reruns them and compares.

Record anew (only when an output is meant to change): ``python -m tests.golden.cases --record``.
"""
from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HASHES = Path(__file__).with_name("hashes.json")
SHARED_SPEECH = ROOT.parent / "shared" / "speech"
SKIP = {"manifest.json"}


def scenario_cases() -> list[str]:
    return [f"scenario:{p.stem}" for p in sorted((ROOT / "scenarios").glob("*.yaml"))]


def experiment_cases() -> list[str]:
    return [f"experiment:{p.stem}" for p in sorted((ROOT / "experiments").glob("*.yaml"))]


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and p.name not in SKIP}


def _picked_runs(path: Path):
    """The experiment's runs to record: per system label, the first and last grid point with the
    first audio file and repeat 0 (a lossless and a lossy point in the loss sweeps)."""
    from simlab.batch.expand import expand
    from simlab.batch.experiment import load_experiment

    exp = load_experiment(path, ["audio_limit=1", "repeats=1"])
    runs = expand(exp)
    by_label: dict = {}
    for run in runs:
        by_label.setdefault(run.coords.get("label"), []).append(run)
    picked = []
    for label, rs in by_label.items():
        for r in (rs[0], rs[-1]) if len(rs) > 1 else rs:
            picked.append((f"{label}:{r.key}", r))
    return picked


def run_case(case: str) -> dict[str, dict[str, str]]:
    """{output name: {file: sha256}} for one case."""
    from simlab.simulation import run_scenario

    kind, name = case.split(":", 1)
    out: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "scenario":
            from simlab.scenario import load_scenario

            sc = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
            run_scenario(sc, Path(tmp) / "run")
            out[name] = _digest(Path(tmp) / "run")
        else:
            for i, (tag, run) in enumerate(_picked_runs(ROOT / "experiments" / f"{name}.yaml")):
                folder = Path(tmp) / f"r{i}"
                run_scenario(run.parse(), folder)
                out[tag] = _digest(folder)
    return out


def main() -> None:
    import os

    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    if "--record" not in sys.argv:
        raise SystemExit("usage: python -m tests.golden.cases --record [CASE...]")
    only = [a for a in sys.argv[1:] if not a.startswith("--")]
    data = json.loads(HASHES.read_text()) if HASHES.exists() else {}
    for case in only or scenario_cases() + experiment_cases():
        print(case, flush=True)
        data[case] = run_case(case)
    HASHES.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
