"""`simlab calibrate`: measure each stage of a system on a device, on real speech, and write the
latency profile that ``compute.timing: profile`` reads."""
from __future__ import annotations

import datetime
import platform
from pathlib import Path

import numpy as np
import yaml

from simlab.actors.base import BuildContext
from simlab.build import build_system, system_key
from simlab.actors.base import DictWindow, Received, Timer
from simlab.audio import SHIPPED_CLIP, read_audio, shared_speech
from simlab.errors import UserError
from simlab.latency import read_profile
from simlab.out_path import check_out_file, made_dirs

#: The most frames `simlab calibrate --frames` times (about 2 h of speech at 12.5 frames/s).
MAX_FRAMES = 100_000


def _speech(sample_rate: int, seconds: float) -> tuple[np.ndarray, str]:
    dev = shared_speech("dev")
    files = sorted(dev.rglob("*.flac")) if dev is not None else []
    x, used = np.zeros(0, dtype=np.float32), []
    for f in files or [SHIPPED_CLIP]:
        x = np.concatenate([x, read_audio(f, sample_rate)])
        used.append(f.name)
        if len(x) >= seconds * sample_rate:
            break
    return x[: int(seconds * sample_rate)], ", ".join(used)


def measure(spec, device: str, frames: int = 100, loss: float = 0.2, seed: int = 0,
            threads: int = 1) -> tuple[dict, str]:
    """Per stage: median and p95 of the per-call time over ``frames`` frames (the first few
    calls, which warm caches and allocators, are left out)."""
    rng = np.random.default_rng(seed)
    system = build_system(spec, BuildContext(rng, device, seed, threads))
    timer = Timer("measured", cuda=device == "cuda")
    warm = 5
    speech, used = _speech(system.sample_rate, (frames + warm + 2) * system.frame_samples / system.sample_rate)
    fs = system.frame_samples
    window = DictWindow()
    calls: dict[str, list[float]] = {s: [] for s in system.stages}
    look = system.lookahead_frames
    n_total = len(speech) // fs
    for n in range(n_total):
        enc = system.transmit(n, speech[n * fs:(n + 1) * fs], loss, timer)
        times = timer.take()
        sent = enc.copies > 0
        arrived = sent & (rng.random(len(sent)) >= loss)
        window.frames[n] = Received(n, sent, arrived, enc.payload)
        if n >= look:
            m = n - look
            system.receive(m, window, timer)
            times.update(timer.take())
            window.frames.pop(m - 2, None)
        if n >= warm:
            for stage, secs in times.items():
                calls[stage].append(secs)
    stats = {}
    for stage, xs in calls.items():
        if xs and stage not in timer.free_stages:  # a stand-in's time is not the model's
            a = np.array(xs)
            stats[stage] = {"median_s": float(np.median(a)), "p95_s": float(np.percentile(a, 95)), "calls": len(a)}
    return stats, used


def measure_batch(spec, device: str, batch: int, frames: int = 100, loss: float = 0.2, seed: int = 0,
                  threads: int = 1) -> dict:
    """Per stage: median and p95 of one batched call's time for ``batch`` calls stepped together
    (``compute.batch``), over ``frames`` instants after a few warm ones. Each call has its own
    losses (independent draws at ``loss``) and its own stretch of the speech."""
    from simlab.build import batch_factory

    rng = np.random.default_rng(seed)
    members = batch_factory(spec)(spec, BuildContext(rng, device, seed, threads), [seed + b for b in range(batch)],
                                  None)
    group = members[0].group
    timer = Timer("measured", cuda=device == "cuda")
    warm = 5
    fs, look = members[0].frame_samples, members[0].lookahead_frames
    speech, _ = _speech(members[0].sample_rate, (frames + warm + 2) * fs / members[0].sample_rate)
    n_total = len(speech) // fs
    audio = lambda b, n: speech[((n + 7 * b) % n_total) * fs:((n + 7 * b) % n_total + 1) * fs]  # noqa: E731
    windows = [DictWindow() for _ in members]
    group.audio_of, group.window_of = audio, lambda b, n: windows[b]
    calls: dict[str, list[float]] = {s: [] for s in members[0].stages}
    for n in range(n_total):
        for b, m in enumerate(members):  # the first call runs the batch; the others read its time
            enc = m.transmit(n, audio(b, n), loss, timer)
            times = timer.take()
            sent = enc.copies > 0
            windows[b].frames[n] = Received(n, sent, sent & (rng.random(len(sent)) >= loss), enc.payload)
        if n >= look:
            for m, w in zip(members, windows):
                m.receive(n - look, w, timer)
                times.update(timer.take())
                w.frames.pop(n - look - 2, None)
        if n >= warm:
            for stage, secs in times.items():
                calls[stage].append(secs)
    return {stage: {"median_s": float(np.median(xs)), "p95_s": float(np.percentile(xs, 95)), "calls": len(xs)}
            for stage, xs in calls.items() if xs and stage not in timer.free_stages}


def cpu_name() -> str:
    import os

    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.machine()


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0)


def check_device(device: str) -> None:
    """`UserError` unless torch can run on ``device`` (cuda needs a CUDA build and a GPU)."""
    if device != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        raise UserError(f"--device cuda: CUDA is not available ({build}); use --device cpu")


def check_profile_out(out: Path) -> None:
    """`UserError` unless ``out`` can take the profile: a new file in a folder that can be
    created, or an existing latency profile (which gains the system)."""
    check_out_file(out)
    if _holds_profile(out):
        read_profile(out)


def _holds_profile(out: Path) -> bool:
    """Whether ``out`` already holds something (an empty file, e.g. from mktemp, is a new profile)."""
    return out.is_file() and out.stat().st_size > 0


def _write_profile(out: Path, data: dict) -> None:
    """Write ``data`` through a temporary sibling renamed into place: an interrupt or a failed
    write leaves the old profile whole and no temporary file."""
    tmp = out.with_name(out.name + ".tmp")
    try:
        with made_dirs(out.parent):
            try:
                tmp.write_text(yaml.safe_dump(data, sort_keys=False))
                tmp.replace(out)
            finally:
                tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot write the latency profile ({exc.strerror or exc})") from None


def calibrate(spec, device: str, out: Path, frames: int = 100, loss: float = 0.2, threads: int = 1,
              batch: tuple[int, ...] = ()) -> dict:
    """Measure and write; ``batch``: batch sizes to time too (``<stage>.batch.<size>``, which
    ``compute.batch`` runs read)."""
    check_device(device)
    check_profile_out(out)
    if batch:
        from simlab.build import batch_factory

        batch_factory(spec)  # a system that does not batch is refused before anything is measured
    stats, used = measure(spec, device, frames, loss, threads=threads)
    for size in sorted(set(batch)):
        for stage, st in measure_batch(spec, device, size, frames, loss, threads=threads).items():
            stats.setdefault(stage, {}).setdefault("batch", {})[size] = st
    data = read_profile(out) if _holds_profile(out) else {}
    data.setdefault("systems", {})
    data["device"] = device
    data["source"] = f"measured by simlab calibrate on {cpu_name() if device == 'cpu' else gpu_name()}, " \
                     f"{datetime.date.today().isoformat()}"
    data["speech"] = used
    data["threads"] = threads
    # merge: stages this configuration does not time (stand-ins, see Timer.run) keep their entries
    before = data["systems"].get(system_key(spec), {})
    for stage, st in stats.items():  # batch sizes not measured now keep their entries
        kept = before.get(stage, {}).get("batch") if isinstance(before.get(stage), dict) else None
        if isinstance(kept, dict):
            st["batch"] = {**kept, **st.get("batch", {})}
    data["systems"][system_key(spec)] = {**before, **stats}
    _write_profile(out, data)
    return data
