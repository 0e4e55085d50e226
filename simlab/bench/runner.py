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


def _largesc_rtf(seconds: float) -> dict:
    """Real-time factor of a whole `largesc` run (small profile, LM concealer, 10 % loss, compute
    measured): simulated speech seconds per wall second, everything included."""
    import time

    from simlab.simulation import simulate
    from simlab.scenario import parse_scenario

    sc = parse_scenario({"audio": "package:clip.wav", "duration_s": seconds, "seed": 1,
                         "system": {"kind": "largesc", "profile": "small"},
                         "network": {"forward": {"loss": {"model": "uniform", "p": 0.1}}},
                         "compute": {"timing": "measured", "device": "auto"}})
    t0 = time.perf_counter()
    r = simulate(sc, None)
    wall = time.perf_counter() - t0
    return {"system": "largesc/small", "device": r["facts"]["device"], "speech_s": seconds, "wall_s": wall,
            "realtime_factor": seconds / wall, "latency_mean_s": r["summary"]["latency_mean_s"]}


def run_bench(what: str, quick: bool = False) -> int:
    import os

    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    todo = ["network", "actors", "batching", "codecs", "metrics", "batch", "startup"] if what == "all" else [what]
    for name in todo:
        if name == "network":
            from simlab.bench.network import bench_network

            _print("network: packets/s, real-time factor, peak memory (one process per case)",
                   bench_network(quick=quick))
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
            _print("actors: a whole largesc run, measured compute", [_largesc_rtf(5.0 if quick else 20.0)])
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
    return 0
