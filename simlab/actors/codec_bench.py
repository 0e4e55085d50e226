"""Encode and decode time per frame of the baseline codecs, for ``simlab bench``.

Each setting runs its system on the shipped clip through the same transmit/receive calls
the simulation makes, with a measuring `Timer`, lossless and then with every
``loss_every``-th frame lost (to time the concealment path too).
"""
from __future__ import annotations

import numpy as np

from simlab.actors.base import DictWindow, Received, Timer

#: (system, constructor kwargs) pairs the bench runs by default.
DEFAULT_SETTINGS: tuple[tuple[str, dict], ...] = (
    ("opus", dict(bitrate_bps=8000, frame_ms=60, fec=False)),
    ("opus", dict(bitrate_bps=24000, frame_ms=20, fec=True)),
    ("aac", dict(bitrate_bps=24000)),
    ("aac", dict(bitrate_bps=48000)),
)


def _window(encoded: list, lost: set[int]) -> DictWindow:
    """Every frame known; ``arrived`` false for the lost ones."""
    return DictWindow({e.frame: Received(e.frame, np.ones(1, bool), np.array([e.frame not in lost]), e.payload)
                       for e in encoded})

def _make(system: str, kwargs: dict):
    if system == "opus":
        from simlab.actors.opus import OpusSystem

        return OpusSystem(**kwargs)
    if system == "aac":
        from simlab.actors.aac import AacSystem

        return AacSystem(**kwargs)
    raise ValueError(f"bench: unknown codec system {system!r}")


def bench_codecs(seconds: float = 10.0, loss_every: int = 10,
                 settings: tuple[tuple[str, dict], ...] = DEFAULT_SETTINGS) -> list[dict]:
    """One row per setting: mean wall time per frame (ms) of encoder and decoder, lossless
    decode and decode with every ``loss_every``-th frame concealed, and the real-time factor
    (compute time / audio time). Payload bitrate measured on the same audio."""
    from simlab.audio import SHIPPED_CLIP, read_audio

    rows = []
    for system, kwargs in settings:
        sys_tx = _make(system, kwargs)
        x = read_audio(SHIPPED_CLIP, sys_tx.sample_rate)[: int(seconds * sys_tx.sample_rate)]
        n = sys_tx.frame_samples
        frames = len(x) // n
        tx_timer = Timer(mode="measured")
        enc = [sys_tx.transmit(i, x[i * n:(i + 1) * n], 0.1, tx_timer) for i in range(frames)]
        t_enc = tx_timer.take().get("encoder", 0.0)
        t_dec = {}
        for label, lost in (("lossless", set()), ("lossy", set(range(loss_every // 2, frames, loss_every)))):
            rx, timer, w = _make(system, kwargs), Timer(mode="measured"), _window(enc, lost)
            for i in range(frames):
                rx.receive(i, w, timer)
            t_dec[label] = timer.take().get("decoder", 0.0)
        frame_s = n / sys_tx.sample_rate
        rows.append({
            "codec": system, "settings": ", ".join(f"{k}={v}" for k, v in kwargs.items()),
            "frames": frames, "frame_ms": round(1000 * frame_s, 2),
            "payload_bitrate_bps": round(sum(int(e.unit_bits.sum()) for e in enc) / (frames * frame_s)),
            "encode_ms_per_frame": 1000 * t_enc / frames,
            "decode_ms_per_frame": 1000 * t_dec["lossless"] / frames,
            "decode_ms_per_frame_lossy": 1000 * t_dec["lossy"] / frames,
            "realtime_factor": (t_enc + t_dec["lossless"]) / (frames * frame_s),
        })
    return rows
