"""Time alignment of the received signal to the reference by cross-correlation.

The received signal lags the reference by the playout latency; intrusive metrics (ViSQOL,
log-F0) compare sample-aligned frames, so the lag is removed before scoring. The search is
bounded (``max_lag_s``) so that a periodic or silent stretch cannot pull the estimate far.
"""
from __future__ import annotations

import numpy as np

from simlab.errors import UserError


def estimate_lag(reference: np.ndarray, received: np.ndarray, sample_rate: int,
                 max_lag_s: float = 1.0) -> int:
    """Samples by which ``received`` lags ``reference`` (negative: it leads), |lag| ≤ max_lag_s.

    The lag maximises the (FFT) cross-correlation; a silent signal gives 0.
    """
    if max_lag_s < 0:
        raise UserError(f"max_lag_s must be >= 0, got {max_lag_s}")
    max_lag = int(round(max_lag_s * sample_rate))
    if max_lag == 0 or not np.any(reference) or not np.any(received):
        return 0
    from scipy.signal import correlate, correlation_lags  # scipy takes ~1 s to import: only when scoring

    xc = correlate(received.astype(np.float64), reference.astype(np.float64), mode="full", method="fft")
    lags = correlation_lags(len(received), len(reference), mode="full")
    keep = np.abs(lags) <= max_lag
    xc, lags = xc[keep], lags[keep]
    if xc.max() <= 0:
        return 0
    return int(lags[int(np.argmax(xc))])


def align(reference: np.ndarray, received: np.ndarray, sample_rate: int,
          max_lag_s: float = 1.0) -> tuple[np.ndarray, np.ndarray, int]:
    """Both signals cut to their overlap after removing the lag; returns (ref, rec, lag)."""
    lag = estimate_lag(reference, received, sample_rate, max_lag_s)
    if lag >= 0:
        ref, rec = reference, received[lag:]
    else:
        ref, rec = reference[-lag:], received
    n = min(len(ref), len(rec))
    if n == 0:
        raise UserError(f"reference and received do not overlap after removing a lag of {lag} samples")
    return ref[:n], rec[:n], lag
