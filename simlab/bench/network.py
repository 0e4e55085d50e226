"""The network benchmark: ns.py's reference topology (one source of ~60-byte packets every
160 ms, 20 ms delay, 10 % i.i.d. loss, a sink), as simlab runs it with everything on: speech
frames (synthetic tokens), RTP/UDP/IPv4 headers, loss feedback every 100 ms over a reverse link,
and packets.csv / frames.csv streamed to disk. Each case runs in a fresh process, so its peak
memory is its own."""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CASES = [(1, 1.0), (1, 10.0), (1, 100.0), (100, 1.0)]  # (flows, simulated hours)
QUICK = [(1, 0.1), (10, 0.1)]

SCENARIO = {
    "name": "bench-network", "seed": 1,
    "system": {"kind": "synthetic", "quantizers": 8, "redundant": 0},
    "packetization": {"frames_per_packet": 2, "interleave": False, "redundancy": "same"},
    "network": {"headers": "ipv4", "forward": {"bandwidth_bps": 1e6, "delay_s": 0.02,
                                               "loss": {"model": "uniform", "p": 0.1}},
                "reverse": {"delay_s": 0.02}},
    "feedback": {"interval_s": 0.1, "report_bytes": 1},
}


def _one(flows: int, hours: float, disk: bool) -> dict:
    from simlab.simulation import simulate
    from simlab.scenario import parse_scenario
    from pathlib import Path

    sc = parse_scenario({**SCENARIO, "flows": flows, "duration_s": hours * 3600})
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), time.process_time()
        r = simulate(sc, Path(d) if disk else None)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    s = r["summary"]
    return {"flows": flows, "sim_hours": hours, "packets": s["packets_sent"], "reports": s["reports_sent"],
            "wall_s": wall, "cpu_s": cpu, "packets_per_s": s["packets_sent"] / wall,
            "realtime_factor": hours * 3600 * flows / wall, "peak_rss_mb": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024, "disk_mb": size / 2**20}


def bench_network(quick: bool = False, disk: bool = True) -> list[dict]:
    rows = []
    for flows, hours in (QUICK if quick else CASES):
        code = ("import json,sys; from simlab.bench.network import _one; "
                f"print(json.dumps(_one({flows}, {hours}, {disk})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows
