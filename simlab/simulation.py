"""`simlab run`: one scenario -> packets.csv, frames.csv, summary.csv, manifest.json (and audio,
pcap), written into a temporary folder that becomes the output folder only when complete."""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import simpy

from simlab import registry
from simlab.actors.base import BuildContext, Timer
from simlab.block_run import plan_block, run_block
from simlab.build import (build_batched, build_flow_system, build_system, call_params, estimator, flow_rngs,
                          headers_of, make_link, share_batched, system_key)
from simlab.build_bottleneck import BottleneckBuild
from simlab.errors import UserError
from simlab.report.recorder import RunRecorder
from simlab.scenario import Scenario
from simlab.sim.flow import Flow
from simlab.sim.link import share
from simlab.sim.quiet_gc import quiet_gc


class _Audio:
    """Source frames from the scenario's audio (looped to the call's length)."""

    def __init__(self, samples: np.ndarray | None, frame_samples: int):
        self.samples = samples
        self.frame_samples = frame_samples

    def __call__(self, n: int):
        if self.samples is None:
            return None
        fs, x = self.frame_samples, self.samples
        start = (n * fs) % len(x)
        out = x[start:start + fs]
        if len(out) < fs:
            out = np.concatenate([out, x[:fs - len(out)]])
        return out


def _timer(sc: Scenario, system, cuda: bool) -> Timer:
    from simlab.latency import resolve_profile_path, stage_costs

    if sc.compute.timing == "measured":
        return Timer("measured", cuda=cuda)
    if sc.compute.profile is None:
        return Timer("profile", None)
    path = resolve_profile_path(sc.compute.profile, sc.base_dir)
    return Timer("profile", stage_costs(path, system_key(sc.system), system.stages))


def _device(sc: Scenario) -> str:
    """Where a torch system runs (``compute.device``; auto: CUDA when torch sees it); others: cpu."""
    if not registry.system(sc.system).uses_torch:
        return "cpu"
    if sc.compute.device != "auto":
        return sc.compute.device
    try:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        return "cpu"


def simulate(sc: Scenario, out: Path | None, progress=None, keep: bool = False, engine: str = "auto") -> dict:
    """Run the scenario, writing into ``out`` (None: write nothing; ``keep``: hold the packet and
    frame records in memory, returned as ``tables``); returns the summary row and the manifest's
    extra facts. ``engine``: auto (the block engine where the scenario allows it, `simlab.block_run`,
    else the event engine), event, or block (an error where it cannot)."""
    from simlab.audio import clipping_warning, read_audio

    wall0 = time.perf_counter()
    seeds = np.random.SeedSequence(sc.seed)
    system_seed, *flow_seeds = seeds.spawn(1 + sc.flows)
    device = _device(sc)
    samples = None
    audio_path = sc.audio_path()
    ctx0 = BuildContext(np.random.default_rng(system_seed), device, int(system_seed.generate_state(1)[0]),
                        sc.compute.threads)
    batched = build_batched(sc, ctx0, flow_seeds) if sc.compute.batch else None  # calls' systems, one batch
    system = batched[0] if batched else build_system(sc.system, ctx0)
    if audio_path is not None:  # check_inputs made sure a system that needs audio has it
        samples = read_audio(audio_path, system.sample_rate)
    clipped = clipping_warning(audio_path) if audio_path is not None else None
    frame_s = system.frame_samples / system.sample_rate
    duration = sc.duration_s if sc.duration_s is not None else (
        len(samples) / system.sample_rate if samples is not None else 60.0)
    n_frames = max(1, int(math.floor(duration / frame_s + 1e-9)))
    headers = headers_of(sc)
    cuda = device == "cuda"
    tx_timer, rx_timer = _timer(sc, system, cuda), _timer(sc, system, cuda)

    env = simpy.Environment()
    source = _Audio(samples, system.frame_samples)
    audio_out = None
    if out and samples is not None and sc.outputs.audio and sc.flows == 1:
        from simlab.report.audio_out import AudioPair

        audio_out = AudioPair(out, system.sample_rate, system.frame_samples, getattr(system, "algorithmic_delay_samples", 0))
    recorder = RunRecorder(out, keep, audio_out, sc.outputs.format)
    pcap = None
    if out and sc.outputs.pcap:  # true, both: forward.pcap (the sender's side) and receiver.pcap
        from simlab.report.pcap import Capture

        sides = sc.outputs.pcap
        pcap = Capture(env, system, ipv6=sc.network.headers == "ipv6",
                       sender=out / "forward.pcap" if sides in (True, "both", "sender") else None,
                       receiver=out / "receiver.pcap" if sides in (True, "both", "receiver") else None)

    net = sc.network
    bottleneck = BottleneckBuild(sc, env, out, n_frames * frame_s)
    # after the flows' seeds, and the bottleneck's own after every other: theirs stay as they were
    shared_seeds = seeds.spawn(2) if net.bottleneck.mode == "shared" else None
    bottleneck.seed(seeds)
    shared = None
    if shared_seeds is not None:
        shared = share(bottleneck.link(make_link, *(np.random.default_rng(s) for s in shared_seeds)))
    params = call_params(sc, n_frames, headers)
    plan = plan_block(sc, system, params, tx_timer, rx_timer, engine)
    if plan is not None:
        flows = run_block(sc, plan, flow_seeds, recorder)
    else:
        flows = _run_events(sc, env, out, recorder, pcap, bottleneck, shared, params, system, batched, flow_seeds,
                            device, source, audio_out, n_frames, tx_timer, rx_timer)
    bottleneck.close(env.now)
    recorder.close()
    if pcap is not None:
        pcap.close()
    summary = summarize(sc, flows, recorder.media, n_frames * frame_s, headers, system)
    described = system.describe()
    # what the manifest's warnings list and the command line say: the system's, and the audio's clipping
    warnings = [*described.get("warnings", []), *([clipped] if clipped else [])]
    facts = {"wall_s": time.perf_counter() - wall0, "system": described, "warnings": warnings, "device": device,
             "frames": n_frames, "events_processed": None, "engine": "block" if plan is not None else "event",
             # the audio file's own rate: the reference holds nothing above its Nyquist (plots show that band)
             "audio_sample_rate": _file_rate(audio_path) if audio_path is not None else None}
    result = {"summary": summary, "facts": facts}
    if keep and out is None:
        result["tables"] = recorder.tables()
    return result


def _run_events(sc, env, out, recorder, pcap, bottleneck, shared, params, system, batched, flow_seeds, device,
                source, audio_out, n_frames, tx_timer, rx_timer) -> list:
    """The event engine: every call's elements on SimPy, run to the end; the flows."""
    net = sc.network
    flows = []
    for i, fs in enumerate(flow_seeds):
        rngs = flow_rngs(fs)
        forward = shared if shared is not None else bottleneck.link(
            make_link, rngs["forward_loss"], rngs["forward_jitter"], i)
        reverse = make_link(env, net.reverse, rngs["reverse_loss"], rngs["reverse_jitter"], sc.path, "network.reverse")
        if i == 0:
            flow_system = system
        else:  # a system of its own, seeded from the flow's seed (on flow 0's models where it can share them)
            child = fs.spawn(1)[0]
            flow_system = batched[i] if batched else build_flow_system(sc.system, BuildContext(
                np.random.default_rng(child), device, int(child.generate_state(1)[0]), sc.compute.threads), system)
        flow = Flow(env, i, flow_system, params, forward, reverse, estimator(sc), recorder, source, tx_timer, rx_timer)
        if pcap is not None:  # every flow (its own UDP ports and SSRC)
            flow.sender.tap, flow.tap = pcap.sent, pcap.fate
            if sc.feedback.accounting != "payload":  # the reports are RTCP packets
                flow.feedback.tap = pcap.report
            pcap.watch(flow)
        if sc.feedback.interval == "rfc3550":  # a stream of its own, after every other of the flow
            from simlab.sim.rtcp_interval import Rfc3550Interval

            flow.feedback.rule = Rfc3550Interval(sc.feedback.session_bps, flow.feedback.size_bytes,
                                                 np.random.default_rng(fs.spawn(1)[0]), sc.feedback.reduced_minimum)
            flow.feedback.duration_s = flow.duration_s
        bottleneck.time_call(flow, i)
        flows.append(flow)
    if batched:
        share_batched(batched, flows)
    bottleneck.start_cross(shared)
    for f in flows:
        f.start()
        if audio_out is not None:
            audio_out.reference(source, n_frames)
    with quiet_gc():
        env.run()
    for f in flows:
        f.finish()
    return flows


def _file_rate(path: Path) -> int:
    import soundfile as sf

    return int(sf.info(str(path)).samplerate)


def summarize(sc, flows, media, duration_s, headers, system) -> dict:
    n = len(flows)
    sent, lost, dropped, late, hdr_b, pay_b = media
    fb_sent = sum(f.feedback.sent for f in flows)
    fb_bytes = sum(f.feedback.carried_bytes for f in flows)
    # Reports due within the call (those made while the last frames drained are not counted).
    in_call = [math.floor(duration_s / sc.feedback.interval_s + 1e-9)] * n
    if sc.feedback.interval == "rfc3550":  # randomised: those made by the end of each call
        in_call = [f.feedback.in_call for f in flows]
    per_report = fb_bytes / fb_sent if fb_sent else 0
    per = duration_s * n
    payload_bps = pay_b * 8 / per
    header_bps = hdr_b * 8 / per
    ctrl_bps = sum(in_call) * per_report * 8 / per
    frame_s = duration_s / max(1, flows[0].monitor.totals_dict["frames"])
    pkts_per_s = 1.0 / (sc.packetization.frames_per_packet * frame_s)
    ctrl_pred = sc.feedback.report_bytes * 8 / sc.feedback.interval_s
    if sc.feedback.accounting != "payload":  # an RTCP packet in UDP/IP (simlab.rtcp)
        ctrl_pred = flows[0].feedback.size_bytes * 8 / sc.feedback.interval_s
    if sc.feedback.interval == "rfc3550":  # the deterministic interval: the mean, with reconsideration
        ctrl_pred = flows[0].feedback.size_bytes * 8 / flows[0].feedback.rule.deterministic_s()
    tot = {k: sum(f.monitor.totals_dict[k] for f in flows) for k in flows[0].monitor.totals_dict}
    from simlab.report.quantiles import StreamStats
    from simlab.sim.monitor import COMPONENTS

    lat, eq22 = StreamStats(), StreamStats()
    for f in flows:
        lat.merge(f.monitor.latency)
        eq22.merge(f.monitor.eq22)
    sums = sum(f.monitor.component_sums for f in flows)
    counts = sum(f.monitor.component_counts for f in flows)
    comps = {f"{name}_mean_s": (float(sums[i] / counts[i]) if counts[i] else float("nan"))
             for i, name in enumerate(COMPONENTS)}
    return {
        "name": sc.name, "system": system_key(sc.system), "seed": sc.seed, "duration_s": duration_s,
        "flows": n, "frames": tot["frames"],
        "packets_sent": sent, "packets_lost": lost, "packets_dropped": dropped, "packets_late": late,
        "loss_rate": (lost + dropped) / sent if sent else float("nan"),
        "late_rate": late / sent if sent else float("nan"),
        "payload_bps": payload_bps, "header_bps": header_bps, "ctrl_bps": ctrl_bps,
        "total_bps": payload_bps + header_bps + ctrl_bps,
        "eq24_total_bps": payload_bps + pkts_per_s * headers.mean_bytes() * 8 + ctrl_pred,
        "reports_sent": fb_sent, "reports_lost": sum(f.feedback.lost for f in flows),
        "latency_mean_s": lat.mean, "latency_p95_s": lat.quantile(0.95),
        "eq22_latency_mean_s": eq22.mean, **comps,
        "tokens_sent": tot["tokens_sent"], "tokens_repeated": tot["tokens_repeated"],
        "tokens_received": tot["tokens_received"], "tokens_lost": tot["tokens_lost"],
        "tokens_late": tot["tokens_late"], "tokens_concealed": tot["tokens_concealed"],
    }


def versions() -> dict:
    from importlib import metadata

    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("simlab", "numpy", "simpy", "pandas", "pydantic", "torch", "moshi", "peft", "opuslib", "av"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                           timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return r.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def write_summary(path: Path, summary: dict) -> None:
    import csv

    from simlab.report.csvstream import _cell

    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(summary))
        w.writerow([_cell(v) for v in summary.values()])


def run_scenario(sc: Scenario, out_dir: str | Path, force: bool = False, progress=None, engine: str = "auto") -> dict:
    """Run and write the outputs atomically: a temporary sibling folder renamed into place.

    Everything is checked before anything is created: the scenario's inputs (`check_inputs`)
    and the output folder, which is never the working folder or above it, nor holds an input
    (``force`` replaces it when it is not empty). An error or an interrupt afterwards removes the temporary folder
    and the parents this call created."""
    from simlab.out_path import check_out_dir, made_dirs, partial_path, remove_stale_partials
    from simlab.scenario_inputs import check_inputs, input_paths

    check_inputs(sc)
    # replace=True even without force: the finished folder is renamed over ``out_dir``, so an empty
    # working folder would be swapped out from under the shell.
    out_dir = check_out_dir(out_dir, replace=True, inputs=tuple(input_paths(sc)))
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise UserError(f"{out_dir}: output folder exists and is not empty (use --force to replace it)")
    with made_dirs(out_dir.parent):
        remove_stale_partials(out_dir)
        tmp = partial_path(out_dir)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            summary = _write_run(sc, tmp, progress, engine)
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(tmp, out_dir)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if not _is_output_error(exc, out_dir, tmp):
                raise
            raise UserError(f"{out_dir}: cannot write the output ({exc.strerror or exc})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return summary


def _write_run(sc: Scenario, folder: Path, progress, engine: str = "auto") -> dict:
    """Simulate and score into ``folder``; write summary.csv and manifest.json; the summary."""
    result = simulate(sc, folder, progress, engine=engine)
    summary = result["summary"]
    if sc.metrics:
        summary.update(_score(sc, folder))
    write_summary(folder / "summary.csv", summary)
    facts = dict(result["facts"])
    warnings = facts.pop("warnings")
    manifest = {"scenario": sc.resolved(), "seed": sc.seed, "versions": versions(), "git_commit": git_commit(),
                "warnings": warnings, **facts}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return summary


def _is_output_error(exc: OSError, out_dir: Path, tmp: Path) -> bool:
    """Whether ``exc`` came from writing the output (a full disk, a file system that refuses
    writes) rather than from reading something else (a model file), which stays a traceback."""
    if exc.filename is None:  # a write to an open file: only outputs are open for writing
        return True
    names = [Path(n).resolve() for n in (exc.filename, exc.filename2) if n]
    return any(n == d or d in n.parents for n in names for d in (out_dir.resolve(), tmp.resolve()))


def _score(sc: Scenario, folder: Path) -> dict:
    """Quality metrics named by the scenario, as summary columns (simlab.metrics)."""
    from simlab.metrics.run import score_run

    return score_run(sc, folder)
