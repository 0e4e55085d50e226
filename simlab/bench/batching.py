"""`simlab bench batching`: wall time per call of ``flows: N`` LargeSC calls run as one batched
run (``compute.batch: true``: one set of models, one batched model call per stage and instant)
against the same calls as N separate single-flow runs (each loads its models and steps its frames
alone), and against one unbatched ``flows: N`` run (shared models, frame by frame)."""
from __future__ import annotations

import time


def _scenario(seconds: float, flows: int, batch: bool, seed: int) -> dict:
    return {"name": "bench-batching", "audio": "package:clip.wav", "duration_s": seconds, "seed": seed,
            "flows": flows, "system": {"kind": "largesc", "profile": "small"},
            "network": {"forward": {"loss": {"model": "gilbert_elliott", "loss": 0.1, "burst": 2}}},
            "compute": {"timing": "measured", "device": "auto", "threads": 1, "batch": batch}}


def _wall(spec: dict) -> float:
    from simlab.scenario import parse_scenario
    from simlab.simulation import simulate

    t0 = time.perf_counter()
    simulate(parse_scenario(spec), None)
    return time.perf_counter() - t0


def bench_batching(flows: int = 16, seconds: float = 10.0, unbatched: bool = True) -> list[dict]:
    """Rows: separate runs, one unbatched run (``unbatched``), one batched run; wall seconds in
    all and per call, and the speed-up per call over separate runs. A short warm-up run first
    (imports, allocators), not counted."""
    import torch

    torch.set_num_threads(1)  # as runs use it (compute.threads)
    _wall(_scenario(1.0, 1, False, 0))
    separate = sum(_wall(_scenario(seconds, 1, False, seed)) for seed in range(flows))
    cases = [("separate single-flow runs", flows, separate)]
    if unbatched:
        cases.append((f"one run, flows: {flows}, unbatched", 1, _wall(_scenario(seconds, flows, False, 0))))
    cases.append((f"one run, flows: {flows}, batched", 1, _wall(_scenario(seconds, flows, True, 0))))
    return [{"case": name, "calls": flows, "runs": runs, "speech_s": seconds, "wall_s": wall,
             "wall_per_call_s": wall / flows, "speedup_per_call": separate / wall} for name, runs, wall in cases]
