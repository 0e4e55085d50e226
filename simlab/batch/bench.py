"""`simlab bench batch`: a fixed sweep of synthetic runs with 1 and 2 local workers, to see that
the pool scales (each run is independent and CPU-bound, so 2 workers on 2 idle cores should
take a little over half the time: process start-up and the parent's bookkeeping are the rest)."""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from simlab.batch.experiment import parse_experiment
from simlab.batch.runner import run_batch

ROOT = Path(__file__).resolve().parents[2]


def bench_experiment(runs: int = 8, duration_s: float = 1800.0):
    """``runs`` synthetic runs (eq24 at 4 loss rates, repeated) of ``duration_s`` simulated seconds,
    each unit sent twice, the second copy in the next packet. Why the copies: such a run takes the
    event engine, one core for seconds, as the runs that make sweeps long do (LargeSC, codecs,
    bottlenecks). Without them eq24 takes the block engine: 0.3 s a 2-hour run on 1.3 cores (its
    writer threads), so a second worker has little left to add (1.2x, measured) and the bench
    would time the pool's start-up, not its scaling."""
    losses = [0.0, 0.05, 0.1, 0.2][:max(1, runs)]
    repeats = max(1, -(-runs // len(losses)))  # at least ``runs``: exactly when 4 divides it
    return parse_experiment({"name": "bench-batch", "base": "scenarios/eq24.yaml",
                             "systems": [{"label": "synthetic-next", "spec": {"kind": "synthetic", "quantizers": 8,
                                                                              "redundant": 2}}],
                             "grid": {"network.forward.loss.p": losses, "duration_s": [duration_s]},
                             "repeats": repeats, "seed": 1}, ROOT, "bench-batch")


def _cpu_s() -> float:
    """CPU seconds of this process and its finished children (the workers)."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _spin(n: int) -> float:
    """A fixed pure-Python CPU load (no memory traffic to speak of); its CPU seconds."""
    c0 = time.process_time()
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF
    return time.process_time() - c0


def ceiling(workers: int, n: int = 20_000_000) -> dict:
    """How well this machine runs ``workers`` CPU-bound processes at once, now: the same fixed
    load (`_spin`) in 1 process, then in ``workers`` processes side by side (spawned, as the
    pool's workers are). ``speedup`` = work done per wall second relative to one process: the
    most a batch could get from the cores as they are (other load, vCPUs that share a core)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        list(pool.map(_spin, [1000] * workers))  # the processes exist before the clock starts
        t0 = time.perf_counter()
        one_cpu = pool.submit(_spin, n).result()
        one = time.perf_counter() - t0
        t0 = time.perf_counter()
        cpus = list(pool.map(_spin, [n] * workers))
        many = time.perf_counter() - t0
    return {"workers": workers, "one_s": one, "one_cpu_s": one_cpu, "side_by_side_s": many,
            "cpu_each_s": sum(cpus) / workers, "speedup": workers * one / many}


def bench_batch(workers: tuple[int, ...] = (1, 2), runs: int = 8, duration_s: float = 7200.0,
                quiet: bool = False) -> list[dict]:
    """Wall time of the same sweep with each number of local workers; ``speedup`` is relative to
    the first. ``parallelism`` (CPU seconds of this process and its workers / wall seconds) says
    how many cores the batch really got: on a machine busy with other work it stays low, and so
    does the speed-up. ``cpu_per_run_s``: CPU seconds per run (grows when runs side by side slow
    each other: shared caches, memory bandwidth, a shared physical core). ``ceiling``: the
    speed-up of a plain CPU-bound load with as many processes, measured just before
    (`ceiling`): what the machine allowed then. Every row also says how many runs the sweep
    had and how many succeeded."""
    exp = bench_experiment(runs, duration_s)
    rows: list[dict] = []
    for jobs in workers:
        load = os.getloadavg()[0]  # other work on the machine caps the speed-up: say how much there was
        cap = ceiling(jobs)["speedup"] if jobs > 1 else 1.0
        with tempfile.TemporaryDirectory(prefix="simlab-bench-batch-") as tmp:
            cpu0 = _cpu_s()
            t0 = time.perf_counter()
            res = run_batch(exp, Path(tmp) / "out", jobs=jobs, progress=False)
            wall = time.perf_counter() - t0
            cpu = _cpu_s() - cpu0  # the pool's workers are reaped when the batch ends
        rows.append({"workers": jobs, "runs": res.total, "ok": res.total - res.failed,
                     "simulated_s_per_run": duration_s, "wall_s": wall, "runs_per_s": res.total / wall,
                     "speedup": rows[0]["wall_s"] / wall if rows else 1.0, "load_1min_before": load,
                     "cpu_s": cpu, "cpu_per_run_s": cpu / max(1, res.total), "parallelism": cpu / wall,
                     "ceiling": cap, "cpus": os.cpu_count()})
        if not quiet:
            r = rows[-1]
            print(f"batch  workers={jobs}  runs={r['runs']} ({r['ok']} ok)  wall={wall:7.2f} s  "
                  f"{r['runs_per_s']:.2f} runs/s  speedup {r['speedup']:.2f}x  CPU {cpu:.1f} s = {r['parallelism']:.2f} "
                  f"cores busy  (ceiling {cap:.2f}x; load before {load:.1f} on {r['cpus']} CPUs)", flush=True)
    return rows


if __name__ == "__main__":
    bench_batch()
