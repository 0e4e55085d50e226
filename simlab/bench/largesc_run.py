"""A whole LargeSC call timed in a fresh process (issue 17, item 3): the small profile, LM
concealment, 10 % uniform loss, compute measured, metrics off, on one core (``taskset -c 0``
where there is one) and one torch thread.

The real-time factor is wall seconds per second of speech (below 1: faster than real time), of
the whole process (start-up included) and of the call alone (imports and model loading
excluded). Beside wall, CPU seconds of the process: on a shared machine the wall time grows
with other processes' load, the CPU time much less. Where the call's time goes: the model
stages (encoder, controller, concealer, decoder; wall inside `Timer.run`) and the rest
(simulation, records, tensors in and out). ``profile=True`` adds cProfile's top functions of
the call (slower under the profiler; the shares are what to read).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

STAGES = ("encoder", "controller", "concealer", "decoder")


def _child(seconds: float, profile: bool) -> dict:
    """Runs in the timed process: phases of one call, as JSON-able numbers."""
    import time

    c0, t0 = time.process_time(), time.perf_counter()
    import torch  # noqa: F401  (what the run imports, imported before the clock splits)

    import simlab.actors.largesc  # noqa: F401
    import simlab.entries.largesc  # noqa: F401
    from simlab.actors import base
    from simlab.models import profiles
    from simlab.scenario import parse_scenario
    from simlab.simulation import simulate

    import moshi.models.lm  # noqa: F401

    t_imports, c_imports = time.perf_counter() - t0, time.process_time() - c0
    spent = {"load": 0.0, "load_cpu": 0.0, **{s: 0.0 for s in STAGES}}
    load = profiles.load_profile

    def timed_load(*args, **kwargs):
        a, b = time.perf_counter(), time.process_time()
        try:
            return load(*args, **kwargs)
        finally:
            spent["load"] += time.perf_counter() - a
            spent["load_cpu"] += time.process_time() - b

    run = base.Timer.run

    def timed_run(self, stage, fn, *args, **kwargs):
        a = time.perf_counter()
        try:
            return run(self, stage, fn, *args, **kwargs)
        finally:
            spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - a

    profiles.load_profile, base.Timer.run = timed_load, timed_run
    sc = parse_scenario({"audio": "package:clip.wav", "duration_s": seconds, "seed": 1,
                         "system": {"kind": "largesc", "profile": "small", "concealer": "lm"},
                         "network": {"forward": {"loss": {"model": "uniform", "p": 0.1}}},
                         "compute": {"timing": "measured", "device": "cpu", "threads": 1}})
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t1, c1 = time.perf_counter(), time.process_time()
    r = simulate(sc, None)
    t_call, c_call = time.perf_counter() - t1, time.process_time() - c1
    if prof is not None:
        prof.disable()
    out = {"speech_s": r["summary"]["duration_s"], "frames": r["summary"]["frames"],
           "loss_rate": r["summary"]["loss_rate"], "torch_threads": torch.get_num_threads(),
           "imports_s": t_imports, "imports_cpu_s": c_imports, "load_s": spent["load"], "load_cpu_s": spent["load_cpu"],
           "call_s": t_call - spent["load"], "call_cpu_s": c_call - spent["load_cpu"],
           **{f"{s}_s": spent.get(s, 0.0) for s in STAGES}}
    if prof is not None:
        out["profile"] = _top(prof, 15)
    return out


def _top(prof, n: int) -> list[dict]:
    import pstats

    stats = pstats.Stats(prof).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
    return [{"function": f"{os.path.basename(f)}:{line}({name})", "calls": nc, "self_s": round(tt, 3),
             "cum_s": round(ct, 3)} for (f, line, name), (cc, nc, tt, ct, _) in rows]


def largesc_call(seconds: float = 60.0, one_core: bool = True, profile: bool = False) -> dict:
    """One call timed in a fresh process; the row `simlab bench largesc` prints (and, with
    ``profile``, a ``profile`` list of cProfile's top functions by self time)."""
    import time

    env = dict(os.environ, NO_TORCH_COMPILE="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    argv = [sys.executable, "-m", "simlab.bench.largesc_run", str(seconds), "1" if profile else "0"]
    core = None
    if one_core and shutil.which("taskset") and hasattr(os, "sched_getaffinity"):
        core = min(os.sched_getaffinity(0))
        argv = ["taskset", "-c", str(core), *argv]
    t0 = time.perf_counter()
    before = os.times()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    after = os.times()
    if done.returncode != 0:
        raise RuntimeError(f"largesc bench child exited {done.returncode}: {done.stderr.strip()[-400:]}")
    r = json.loads(done.stdout.strip().splitlines()[-1])
    speech = r["speech_s"]
    stages = sum(r[f"{s}_s"] for s in STAGES)
    row = {"case": "largesc/small lm, uniform 10 % loss, metrics off", "loss_rate": round(r["loss_rate"], 3),
           "core": "all" if core is None else core,
           "torch_threads": r["torch_threads"], "speech_s": round(speech, 2),
           "wall_s": round(wall, 2), "cpu_s": round(after.children_user + after.children_system
                                                    - before.children_user - before.children_system, 2),
           "rtf_wall": round(wall / speech, 3),
           "imports_s": round(r["imports_s"], 2), "load_s": round(r["load_s"], 2),
           "call_s": round(r["call_s"], 2), "call_cpu_s": round(r["call_cpu_s"], 2),
           "rtf_call": round(r["call_s"] / speech, 3),
           **{f"{s}_ms": round(1000 * r[f"{s}_s"] / r["frames"], 2) for s in STAGES},
           "other_ms": round(1000 * (r["call_s"] - stages) / r["frames"], 2)}
    if "profile" in r:
        row["profile"] = r["profile"]
    return row


if __name__ == "__main__":
    print(json.dumps(_child(float(sys.argv[1]), sys.argv[2] == "1")))
