"""Log-F0 error between reference and received speech, with Praat's pitch tracker.

F0 comes from Praat's autocorrelation method (Boersma 1993) through ``praat-parselmouth``,
10 ms frames, 50-500 Hz. ``logf0_rmse_cents`` is the RMS of 1200·log2(f_rec/f_ref) over
frames voiced in both signals (the paper's log-F0 RMSE, in cents); ``vuv_error`` is the
share of frames whose voiced/unvoiced decision differs, which is where zeroed or smeared
frames show up when the voiced frames still agree.
"""
from __future__ import annotations

import numpy as np

from simlab.metrics.base import METRIC_RATE, MetricInput, Skipped, need, package_version

TIME_STEP_S = 0.01
PITCH_FLOOR_HZ = 50.0
PITCH_CEILING_HZ = 500.0


def tracker_name() -> str:
    """What produced the F0 tracks, for the ``logf0_tracker`` column."""
    return (f"praat-ac (parselmouth {package_version('praat-parselmouth')}), "
            f"{TIME_STEP_S * 1000:g} ms, {PITCH_FLOOR_HZ:g}-{PITCH_CEILING_HZ:g} Hz")


def f0_track(x: np.ndarray) -> np.ndarray:
    """F0 in Hz per 10 ms frame, 0 where unvoiced."""
    parselmouth = need("parselmouth", "praat-parselmouth")
    sound = parselmouth.Sound(np.asarray(x, dtype=np.float64), sampling_frequency=METRIC_RATE)
    pitch = sound.to_pitch_ac(time_step=TIME_STEP_S, pitch_floor=PITCH_FLOOR_HZ,
                              pitch_ceiling=PITCH_CEILING_HZ)
    return np.asarray(pitch.selected_array["frequency"], dtype=np.float64)


def logf0_rmse(inp: MetricInput) -> dict[str, float | str]:
    """``logf0_rmse_cents``, ``vuv_error``, ``logf0_voiced_frames`` and ``logf0_tracker``."""
    f_ref, f_rec = f0_track(inp.reference), f0_track(inp.received)
    n = min(len(f_ref), len(f_rec))  # equal for equal-length input; guard anyway
    f_ref, f_rec = f_ref[:n], f_rec[:n]
    v_ref, v_rec = f_ref > 0, f_rec > 0
    both = v_ref & v_rec
    if not v_ref.any():
        raise Skipped("no voiced frames in the reference")
    out: dict[str, float | str] = {
        "logf0_rmse_cents": float("nan"),
        "vuv_error": float(np.mean(v_ref != v_rec)),
        "logf0_voiced_frames": float(both.sum()),
        "logf0_tracker": tracker_name(),
    }
    if both.any():
        cents = 1200.0 * np.log2(f_rec[both] / f_ref[both])
        out["logf0_rmse_cents"] = float(np.sqrt(np.mean(cents ** 2)))
    else:
        out["logf0_rmse_status"] = "no frames voiced in both signals"
    return out
