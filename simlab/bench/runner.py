"""Runs the benchmarks by name and prints their rows as a table."""
from __future__ import annotations


def _print(title: str, rows: list[dict]) -> None:
    print(f"\n== {title}")
    if not rows:
        print("(no rows)")
        return
    cols = list(rows[0])
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    width = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.rjust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(fmt(r.get(c, "")).rjust(width[c]) for c in cols))


def run_bench(what: str, quick: bool = False, network: dict | None = None) -> int:
    """``network``: `run_network`'s options (against, fmt, memory)."""
    import os

    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    todo = (["network", "writers", "actors", "batching", "codecs", "metrics", "batch", "startup"] if what == "all"
            else [what])
    for name in todo:
        if name == "network":
            from simlab.bench.network import run_network

            run_network(_print, quick=quick, **(network or {}))
        elif name == "writers":
            from simlab.bench.writers import bench_writers

            _print("writers: µs per row of a run's tables, row by row (event engine) and as column blocks (block "
                   "engine), best of 3", bench_writers(rows=20_000 if quick else 100_000))
        elif name == "batching":
            from simlab.bench.batching import bench_batching

            _print("batching: flows: 16 LargeSC calls, batched vs separate runs (wall, 1 torch thread, "
                   "compute measured)", bench_batching(16, 3.0 if quick else 10.0))
        elif name == "codecs":
            from simlab.actors.codec_bench import bench_codecs

            _print("codecs: encode/decode time per frame", bench_codecs(seconds=3.0 if quick else 10.0))
        elif name == "actors":
            import torch

            from simlab.actors.largesc import bench_actors

            torch.set_num_threads(1)  # as runs use it (compute.threads)
            _print("actors: time per 80 ms frame (1 torch thread)", bench_actors(frames=10 if quick else 20))
            from simlab.bench.largesc_run import largesc_call

            # rtf = wall seconds per speech second (below 1: faster than real time); issue 17: <= 0.5
            row = largesc_call(10.0 if quick else 60.0)
            top = [] if quick else largesc_call(60.0, profile=True)["profile"]  # apart: the profiler slows it
            _print("actors: a whole largesc call in a fresh process on one core (compute measured, metrics off; "
                   "rtf_wall: whole process / speech, rtf_call: without imports and model loading)", [row])
            if top:
                _print("actors: where the call's time goes (cProfile, by self time; slower under the profiler)", top)
        elif name == "metrics":
            from simlab.metrics import bench_metrics

            _print("metrics: seconds per minute of audio", bench_metrics())
        elif name == "batch":
            from simlab.batch.bench import bench_batch

            rows = bench_batch(runs=4, duration_s=120.0) if quick else bench_batch()
            _print("batch: a fixed small sweep, 1 and 2 workers", rows)
        elif name == "startup":
            from simlab.bench.startup import bench_startup, simlab_command

            repeats = 3 if quick else 5
            _print(f"startup: wall seconds of whole processes, median of {repeats} after a warm-up "
                   f"(simlab: {' '.join(simlab_command())})", bench_startup(repeats=repeats))
            from simlab.bench.default_run import bench_default

            _print("startup: the default scenario (README's first command), whole processes, then one run taken "
                   "apart (metrics scored serially there)", bench_default(repeats=1 if quick else 3))
    return 0
