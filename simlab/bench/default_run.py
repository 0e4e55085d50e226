"""The default scenario end to end (issue 17, item 4: under 20 s wall, metrics included).

Two measurements, each in fresh processes: ``simlab run scenarios/default.yaml`` as a user types
it (wall and CPU seconds of the whole process, metric workers included), and the same run taken
apart in one process: imports (every module the run imports, in the order it imports them),
model loading, the simulation, each metric (whole clip and windows, scored serially so each is
timed) and the rest (writing the outputs). CPU seconds beside wall: on a shared machine wall
grows with other processes' load, CPU time much less.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "default.yaml"


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _modules(scenario: Path, tmp: Path) -> list[str]:
    """The modules a run of ``scenario`` imports, in import order (from a run in a child)."""
    # the command itself (python -m simlab run ...), then the modules it left loaded
    code = ("import sys, json, runpy; sys.argv = ['simlab', 'run', sys.argv[1], '--out', sys.argv[2]]\n"
            "try:\n    runpy.run_module('simlab', run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(list(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, str(scenario), str(tmp / "modules")], capture_output=True,
                          text=True, timeout=900, env=dict(os.environ, NO_TORCH_COMPILE="1"))
    if done.returncode != 0:
        raise RuntimeError(f"default bench: the run failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(scenario: str, out: str, modules_file: str) -> dict:
    """Runs in the timed process: the run's phases."""
    import importlib

    spent: dict[str, list[float]] = {}

    def clock(name: str, fn):
        def timed(*args, **kwargs):
            a, b = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                w, c = spent.setdefault(name, [0.0, 0.0])
                spent[name] = [w + time.perf_counter() - a, c + time.process_time() - b]
        return timed

    t0, c0 = time.perf_counter(), time.process_time()
    for name in json.loads(Path(modules_file).read_text()):
        if name == "__main__" or name.startswith("simlab.bench"):
            continue
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 (a module only importable from its package's own code path)
            pass
    spent["imports"] = [time.perf_counter() - t0, time.process_time() - c0]
    from simlab import simulation
    from simlab.api import run
    from simlab.metrics import compute
    from simlab.scenario import load_scenario
    from simlab.models import profiles

    profiles.load_profile = clock("model load", profiles.load_profile)
    simulation.simulate = clock("simulation (with model load)", simulation.simulate)
    simulation._score = clock("scoring (all)", simulation._score)
    compute.free_cores = lambda: 1  # serially, so each metric's time is its own
    run_metric = compute.run_metric
    windows: list[bool] = [False]

    def metric(name, inp):
        return clock(f"metric {name} ({'windows' if windows[0] else 'whole clip'})", run_metric)(name, inp)

    window_metrics = compute.window_metrics

    def windowed(*args, **kwargs):
        windows[0] = True
        try:
            return window_metrics(*args, **kwargs)
        finally:
            windows[0] = False

    compute.run_metric, compute.window_metrics = metric, windowed
    import simlab.metrics.run as run_mod

    run_mod.window_metrics = windowed
    t1, c1 = time.perf_counter(), time.process_time()
    run(load_scenario(scenario), out)  # what `simlab run SCENARIO --out OUT` does
    spent["run (after imports)"] = [time.perf_counter() - t1, time.process_time() - c1]
    return spent


def bench_default(repeats: int = 2) -> list[dict]:
    """Rows: the whole ``simlab run`` (each of ``repeats`` processes, after a warm-up run that
    also lists the modules), then the phases of one more run taken apart."""
    rows = []
    env = dict(os.environ, NO_TORCH_COMPILE="1")
    with tempfile.TemporaryDirectory(prefix="simlab-bench-default-") as tmp:
        tmp = Path(tmp)
        modules = _modules(SCENARIO, tmp)
        (tmp / "modules.json").write_text(json.dumps(modules))
        for i in range(repeats):
            cpu0, t0 = _children_cpu(), time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "simlab", "run", str(SCENARIO), "--out", str(tmp / f"r{i}")],
                                  capture_output=True, text=True, timeout=900, env=env)
            wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
            if done.returncode != 0:
                raise RuntimeError(f"default bench: simlab run failed: {done.stderr.strip()[-400:]}")
            rows.append({"phase": f"simlab run {SCENARIO.name} (whole process)", "wall_s": round(wall, 2),
                         "cpu_s": round(cpu, 2), "target": "< 20 s wall", "load_1min": round(os.getloadavg()[0], 1)})
        code = "import sys, json; from simlab.bench.default_run import _child; print(json.dumps(_child(*sys.argv[1:])))"
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", code, str(SCENARIO), str(tmp / "parts"), str(tmp / "modules.json")],
                              capture_output=True, text=True, timeout=900, env=env)
        whole = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"default bench: the timed run failed: {done.stderr.strip()[-400:]}")
        spent = json.loads(done.stdout.strip().splitlines()[-1])
        load_w, load_c = spent.get("model load", [0.0, 0.0])
        sim_w, sim_c = spent.pop("simulation (with model load)")
        spent["simulation (without model load)"] = [sim_w - load_w, sim_c - load_c]
        run_w, run_c = spent.pop("run (after imports)")
        score_w, score_c = spent.get("scoring (all)", [0.0, 0.0])
        # wall: of the whole process (interpreter start included); CPU: after the imports
        spent["rest (start, parse, write)"] = [whole - spent["imports"][0] - sim_w - score_w, run_c - sim_c - score_c]
        for phase, (w, c) in spent.items():
            rows.append({"phase": phase, "wall_s": round(w, 2), "cpu_s": round(c, 2), "target": "", "load_1min": ""})
    return rows


if __name__ == "__main__":
    for row in bench_default():
        print(row)
