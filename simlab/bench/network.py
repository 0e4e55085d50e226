"""The network benchmark: ns.py's reference topology (one source of ~60-byte packets every
160 ms, 20 ms delay, 10 % i.i.d. loss, a sink), as simlab runs it with everything on: speech
frames (synthetic tokens), RTP/UDP/IPv4 headers, loss feedback every 100 ms over a reverse link,
and packets.csv / frames.csv streamed to disk. Each case runs in a fresh process, so its peak
memory is its own; on both sides the clock starts after the imports (simlab's side runs a 1 s call
first: a run imports its writers, pyarrow and pandas among them, on the way, ~0.3 s once).

`run_network` prints the tables of `simlab bench network`: simlab alone; ``against="nspy"``
simlab and ns.py's reference (`simlab.bench.nspy_ref`) case by case in the same invocation, with
the ratio; ``memory`` peak memory against simulated duration and per idle flow.
"""
from __future__ import annotations

import copy
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CASES = [(1, 1.0), (1, 10.0), (1, 24.0), (100, 1.0)]  # (flows, simulated hours; a run is at most 24 h)
QUICK = [(1, 0.1), (10, 0.1)]
# TCP cross traffic: simulated seconds. ns.py's TCP is superlinear in duration once its queue drops
# (each ack scans every unacked segment; RTO storms): 30/60/120 s took 1.2/4.2/27 s of wall time
# with a 50-packet queue. So the case is a minute, with a queue ns.py's Reno does not overflow in it.
TCP_S, TCP_QUICK_S = 60.0, 10.0
TCP_RATE_BPS, TCP_QUEUE, TCP_MSS = 1e6, 1000, 512
# Memory: (flows, simulated seconds) pairs; a short call for the per-flow cost (10 packets each).
MEM_DURATION = [(1, 3600.0), (1, 36000.0)]
MEM_FLOWS = [(1000, 1.6), (10000, 1.6)]
MEM_QUICK_DURATION = [(1, 360.0), (1, 3600.0)]
MEM_QUICK_FLOWS = [(100, 1.6), (1000, 1.6)]
FORMATS = ("csv", "parquet")

SCENARIO = {
    "name": "bench-network", "seed": 1,
    "system": {"kind": "synthetic", "quantizers": 8, "redundant": 0},
    "packetization": {"frames_per_packet": 2, "interleave": False, "redundancy": "same"},
    "network": {"headers": "ipv4", "forward": {"bandwidth_bps": 1e6, "delay_s": 0.02,
                                               "loss": {"model": "uniform", "p": 0.1}},
                "reverse": {"delay_s": 0.02}},
    "feedback": {"interval_s": 0.1, "report_bytes": 1},
}


def scenario(flows: int, duration_s: float, fmt: str = "csv", tcp: bool = False) -> dict:
    """The bench's scenario. ``fmt`` other than csv goes in as ``outputs.format`` (so csv runs are
    the scenario as it always was). ``tcp``: one Reno flow of 512-byte segments shares the forward
    link, a drop-tail bottleneck of ``TCP_QUEUE`` packets, and nothing is lost at random."""
    sc = copy.deepcopy(SCENARIO)
    sc.update(flows=flows, duration_s=duration_s)
    if fmt != "csv":
        sc["outputs"] = {"format": fmt}
    if tcp:
        sc["network"]["forward"]["loss"]["p"] = 0.0
        sc["network"]["bottleneck"] = {
            "mode": "shared", "queue": {"discipline": "droptail", "limit_packets": TCP_QUEUE},
            "cross_traffic": [{"kind": "tcp", "cc": "reno", "packet_bytes": TCP_MSS}]}
    return sc


def _bottleneck_sent(folder: str) -> tuple[int, int]:
    """(packets, dropped) that entered the bottleneck, from bottleneck.csv (or .parquet)."""
    path = os.path.join(folder, "bottleneck.csv")
    if os.path.exists(path):
        with open(path, newline="") as f:
            rows = [(int(r["sent_packets"]), int(r["dropped_packets"])) for r in csv.DictReader(f)]
    else:
        import pyarrow.parquet as pq

        t = pq.read_table(os.path.join(folder, "bottleneck.parquet"), columns=["sent_packets", "dropped_packets"])
        rows = list(zip(t.column(0).to_pylist(), t.column(1).to_pylist()))
    return sum(r[0] for r in rows), sum(r[1] for r in rows)


def _disk_bytes(folder: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)


def _one(flows: int, hours: float, disk: bool, fmt: str = "csv", tcp: bool = False, engine: str = "auto") -> dict:
    """simlab's side of a case, in this process. ``packets``: media packets sent; with ``tcp`` the
    packets that entered the bottleneck (speech and TCP segments, retransmissions included)."""
    from pathlib import Path

    from simlab.scenario import parse_scenario
    from simlab.simulation import simulate

    sc = parse_scenario(scenario(flows, hours * 3600, fmt, tcp))
    with tempfile.TemporaryDirectory() as d:  # the modules a run imports on its way, outside the clock
        simulate(parse_scenario(scenario(1, 1.0, fmt, tcp)), Path(d) if disk else None, engine=engine)
    with tempfile.TemporaryDirectory() as d:
        t0, c0 = time.perf_counter(), time.process_time()
        r = simulate(sc, Path(d) if disk else None, engine=engine)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        size = _disk_bytes(d)
        packets, dropped = _bottleneck_sent(d) if tcp else (r["summary"]["packets_sent"], None)
    s = r["summary"]
    row = {"engine": r["facts"]["engine"], "flows": flows, "sim_hours": hours, "packets": packets,
           "reports": s["reports_sent"],
           "wall_s": wall, "cpu_s": cpu, "packets_per_s": packets / wall,
           "realtime_factor": hours * 3600 * flows / wall, "peak_rss_mb": resource.getrusage(
               resource.RUSAGE_SELF).ru_maxrss / 1024, "disk_mb": size / 2**20}
    if tcp:
        row.update(speech_packets=s["packets_sent"], dropped=dropped)
    return row


def _child(code: str) -> dict:
    """Runs ``code`` (which prints one JSON line last) in a fresh interpreter; its row."""
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        from simlab.errors import UserError

        raise UserError(f"benchmark case failed: {last}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def simlab_case(flows: int, hours: float, disk: bool = True, fmt: str = "csv", tcp: bool = False,
                engine: str = "auto") -> dict:
    return _child("from simlab.bench.network import _one; "
                  f"print(json.dumps(_one({flows!r}, {hours!r}, {disk!r}, {fmt!r}, {tcp!r}, {engine!r})))")


def nspy_case(flows: int, hours: float, tcp: bool = False) -> dict:
    fn = (f"run_tcp({flows!r}, {hours * 3600!r}, rate_bps={TCP_RATE_BPS!r}, queue_packets={TCP_QUEUE!r})"
          if tcp else f"run_reference({flows!r}, {hours * 3600!r})")
    return _child(f"from simlab.bench.nspy_ref import run_reference, run_tcp; print(json.dumps({fn}))")


def bench_network(quick: bool = False, disk: bool = True, fmt: str = "csv", engine: str = "auto") -> list[dict]:
    return [simlab_case(flows, hours, disk, fmt, engine=engine) for flows, hours in (QUICK if quick else CASES)]


def bench_against_nspy(quick: bool = False, fmt: str = "csv", engine: str = "auto", repeat: int = 1) -> list[dict]:
    """Each case on both sides, simlab first, ns.py right after it; then the TCP case. ``ratio`` is
    simlab's packets/s over ns.py's (wall time); ``ratio_cpu`` the same in CPU time of each process
    (steadier on a machine others share). ``repeat`` > 1 runs each case that many times, pair
    after pair: packets/s and ratios are then medians, with the lowest and highest pair's ratio
    (a one-hour call takes a tenth of a second a side: one pair says little)."""
    import statistics

    cases = [(f, h, False) for f, h in (QUICK if quick else CASES)]
    cases.append((1, (TCP_QUICK_S if quick else TCP_S) / 3600, True))
    rows = []
    for flows, hours, tcp in cases:
        pairs = []
        for _ in range(repeat):
            # cross traffic needs the event engine: "block" asks for it where it can run
            s = simlab_case(flows, hours, True, fmt, tcp, "auto" if tcp and engine == "block" else engine)
            pairs.append((s, nspy_case(flows, hours, tcp)))
        s, n = pairs[0]
        ratios = [a["packets_per_s"] / b["packets_per_s"] for a, b in pairs]
        row = {"case": "tcp+speech" if tcp else "reference", "engine": s["engine"], "flows": flows,
               "sim_s": hours * 3600, "simlab_packets": s["packets"], "nspy_packets": n["packets"],
               "simlab_pkt_per_s": statistics.median(a["packets_per_s"] for a, _ in pairs),
               "nspy_pkt_per_s": statistics.median(b["packets_per_s"] for _, b in pairs),
               "ratio": statistics.median(ratios),
               "ratio_cpu": statistics.median((a["packets"] / a["cpu_s"]) / (b["packets"] / b["cpu_s"]) for a, b in pairs)}
        if repeat > 1:
            row |= {"pairs": repeat, "ratio_min": min(ratios), "ratio_max": max(ratios)}
        rows.append(row | {"simlab_rss_mb": max(a["peak_rss_mb"] for a, _ in pairs),
                           "nspy_rss_mb": max(b["peak_rss_mb"] for _, b in pairs), "simlab_disk_mb": s["disk_mb"],
                           "simlab_dropped": s["dropped"] if tcp else "", "nspy_dropped": n["dropped"] if tcp else ""})
    return rows


def bench_memory(quick: bool = False, fmt: str = "csv", nspy: bool = True, engine: str = "auto") -> list[dict]:
    """Peak RSS against simulated duration (1 flow, the longer over the shorter) and per flow (the
    difference of two flow counts of a short call over the difference in flows, projected to
    100,000 flows), for simlab (records on disk) and, with ``nspy``, ns.py's reference."""
    sides = [("simlab", lambda f, s: simlab_case(f, s / 3600, True, fmt, engine=engine))]
    if nspy:
        sides.append(("ns.py", lambda f, s: nspy_case(f, s / 3600)))
    rows = []
    for name, run in sides:
        (f0, s0), (f1, s1) = MEM_QUICK_DURATION if quick else MEM_DURATION
        a, b = run(f0, s0), run(f1, s1)
        rows.append({"side": name, "measure": f"duration: 1 flow {s0 / 3600:g} h vs {s1 / 3600:g} h",
                     "rss_a_mb": a["peak_rss_mb"], "rss_b_mb": b["peak_rss_mb"],
                     "growth": b["peak_rss_mb"] / a["peak_rss_mb"], "kb_per_flow": "", "mb_at_100k_flows": ""})
        (f0, s0), (f1, s1) = MEM_QUICK_FLOWS if quick else MEM_FLOWS
        a, b = run(f0, s0), run(f1, s1)
        per_flow_mb = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (f1 - f0)
        rows.append({"side": name, "measure": f"flows: {f0} vs {f1} calls of {s0:g} s",
                     "rss_a_mb": a["peak_rss_mb"], "rss_b_mb": b["peak_rss_mb"], "growth": b["peak_rss_mb"] / a[
                         "peak_rss_mb"], "kb_per_flow": per_flow_mb * 1024,
                     "mb_at_100k_flows": a["peak_rss_mb"] + per_flow_mb * (100_000 - f0)})
    return rows


def run_network(show, quick: bool = False, against: str | None = None, fmt: str = "csv",
                memory: bool = False, engine: str = "auto", repeat: int = 1) -> None:
    """`simlab bench network [--against nspy [--repeat N]] [--format csv|parquet] [--memory] [--engine E]`:
    ``show(title, rows)`` prints each table."""
    from simlab.bench.nspy_ref import available

    if fmt not in FORMATS:
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if against not in (None, "nspy"):
        raise ValueError(f"--against: {against!r} is not a known reference (nspy)")
    missing = available() if (against or memory) else None
    if against and missing:
        print(f"network --against nspy: skipped: {missing}")
    elif against:
        show(f"network against ns.py: packets/s of each, same topology and simulated time, one process per "
             f"side and case (simlab: every record on disk, {fmt}; tcp+speech: packets that entered the "
             f"{TCP_RATE_BPS / 1e6:g} Mbit/s drop-tail bottleneck, one Reno flow of {TCP_MSS}-byte segments "
             f"and the speech flow, acks not counted"
             + (f"; medians of {repeat} pairs a case" if repeat > 1 else "") + ")",
             bench_against_nspy(quick, fmt, engine, repeat))
    if memory:
        show("network memory: peak RSS against simulated duration and per idle flow (records on disk"
             + ("; ns.py skipped: not installed)" if missing else ")"), bench_memory(quick, fmt, not missing, engine))
    if not against and not memory:
        show("network: packets/s, real-time factor, peak memory (one process per case)",
             bench_network(quick, fmt=fmt, engine=engine))
