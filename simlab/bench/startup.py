"""Start-up benchmark: the wall time of whole `simlab` processes, interpreter start-up, imports,
scenario validation, the run and its files included (the targets: a synthetic `simlab run` of a
10 s call under 1.5 s; the default scenario, metrics included, under 20 s: `default_run`)."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The eq24 scenario (scenarios/eq24.yaml) cut to a 10 s call: synthetic, 160 ms packets, 10 % loss.
SCENARIO = """\
name: startup
seed: 1
duration_s: 10
system: {kind: synthetic, quantizers: 8, redundant: 0}
packetization: {frames_per_packet: 2, interleave: false, redundancy: next}
network:
  headers: ipv4
  forward: {bandwidth_bps: 64000, delay_s: 0.02, jitter_s: 0.0, loss: {model: uniform, p: 0.1}}
  reverse: {delay_s: 0.02, loss: {model: uniform, p: 0.0}}
feedback: {interval_s: 0.1, report_bytes: 1, estimator: {kind: ewma, alpha: 0.1}, accounting: payload}
receiver: {playout_delay_s: 0.4}
compute: {timing: profile, profile: null}
outputs: {pcap: false}
"""

TARGET_S = 1.5


def simlab_command() -> list[str]:
    """The console script installed beside this interpreter (what a user types, without a
    version manager's shim in front), else ``python -m simlab``."""
    script = Path(sys.executable).parent / "simlab"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "simlab"]


def _time(argv: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=300)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: {r.stderr.strip()}")
    return wall


def bench_startup(repeats: int = 5) -> list[dict]:
    """Median (and min, max) wall seconds over ``repeats`` processes of: a bare interpreter,
    ``import simlab.cli``, and ``simlab run`` of a 10 s synthetic call, after one untimed
    warm-up of each (byte code compiled, files in the page cache)."""
    simlab = simlab_command()
    rows = []
    with tempfile.TemporaryDirectory(prefix="simlab-startup-") as tmp:
        tmp = Path(tmp)
        scenario = tmp / "startup.yaml"
        scenario.write_text(SCENARIO)
        n = iter(range(10 ** 6))
        cases = [
            ("python -c pass", lambda: [sys.executable, "-c", "pass"], None),
            ("python -c 'import simlab.cli'", lambda: [sys.executable, "-c", "import simlab.cli"], None),
            ("simlab run (synthetic, 10 s)",
             lambda: [*simlab, "run", str(scenario), "--out", str(tmp / f"run{next(n)}")], TARGET_S),
        ]
        for name, argv, target in cases:
            _time(argv(), tmp)  # warm-up
            walls = [_time(argv(), tmp) for _ in range(repeats)]
            row = {"case": name, "runs": repeats, "median_s": statistics.median(walls), "min_s": min(walls),
                   "max_s": max(walls)}
            row["target_s"] = f"< {target}" if target else ""
            row["ok"] = ("yes" if row["median_s"] < target else "NO") if target else ""
            rows.append(row)
    return rows
