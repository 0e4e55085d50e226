"""Small helpers shared by the tests."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from simlab.simulation import run_scenario
from simlab.scenario import apply_overrides, parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def scenario(base: str | dict = "eq24", overrides: list[str] | None = None):
    if isinstance(base, str):
        path = ROOT / "scenarios" / f"{base}.yaml"
        data, base_dir = yaml.safe_load(path.read_text()), path.parent
    else:
        data, base_dir = base, ROOT
    return parse_scenario(apply_overrides(data, overrides or []), base_dir)


def run(tmp_path, base="eq24", overrides=None, name="out"):
    sc = scenario(base, overrides)
    out = tmp_path / name
    summary = run_scenario(sc, out)
    return out, summary


def tables(out: Path):
    return (pd.read_csv(out / "packets.csv"), pd.read_csv(out / "frames.csv"),
            pd.read_csv(out / "summary.csv").iloc[0])


def encode_all(system, x):
    """A frame-based system's `Encoded` frames for the whole of ``x`` (no simulation, no time)."""
    from simlab.actors.base import Timer

    n, timer = system.frame_samples, Timer(profile=None)
    return [system.transmit(i, x[i * n:(i + 1) * n], 0.0, timer) for i in range(len(x) // n)]


def decode_all(system, encoded, lost=frozenset()):
    """(audio, Decoded list) of one-unit frames, those in ``lost`` not arrived."""
    import numpy as np

    from simlab.actors.base import DictWindow, Received, Timer

    w = DictWindow({e.frame: Received(e.frame, np.array([True]), np.array([e.frame not in lost]), e.payload)
                    for e in encoded})
    timer = Timer(profile=None)
    out = [system.receive(e.frame, w, timer) for e in encoded]
    assert all(d.audio.shape == (system.frame_samples,) and d.audio.dtype == np.float32 for d in out)
    return np.concatenate([d.audio for d in out]), out


def small_call(**changes) -> dict:
    """A short synthetic call that exercises the network side: second copies in packets of their
    own, jitter, bursty loss, a lossy reverse link (a fresh dict; ``changes`` replace top keys,
    ``jitter_s`` the forward link's)."""
    jitter = changes.pop("jitter_s", 0.01)
    return {"name": "api", "seed": 3, "duration_s": 8,
            "system": {"kind": "synthetic", "quantizers": 6, "redundant": 2},
            "packetization": {"frames_per_packet": 2, "redundancy": "own"},
            "network": {"headers": "ipv4", "forward": {"bandwidth_bps": 64000, "delay_s": 0.02, "jitter_s": jitter,
                                                       "loss": {"model": "gilbert_elliott", "loss": 0.2, "burst": 2}},
                        "reverse": {"delay_s": 0.02, "loss": {"model": "uniform", "p": 0.1}}}} | changes
