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


def run_bench(what: str, quick: bool = False) -> int:
    import os

    os.environ.setdefault("NO_TORCH_COMPILE", "1")
    todo = ["network", "actors", "codecs", "metrics", "batch"] if what == "all" else [what]
    for name in todo:
        if name == "network":
            from simlab.bench.network import bench_network

            _print("network: packets/s, real-time factor, peak memory (one process per case)",
                   bench_network(quick=quick))
        elif name == "codecs":
            from simlab.actors.codec_bench import bench_codecs

            _print("codecs: encode/decode time per frame", bench_codecs(seconds=3.0 if quick else 10.0))
        elif name == "actors":
            from simlab.actors.largesc import bench_actors

            _print("actors: time per 80 ms frame", bench_actors())
        elif name == "metrics":
            from simlab.metrics import bench_metrics

            _print("metrics: seconds per minute of audio", bench_metrics())
        elif name == "batch":
            from simlab.batch.bench import bench_batch

            _print("batch: a fixed small sweep, 1 and 2 workers", bench_batch())
    return 0
