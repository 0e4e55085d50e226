"""Concealment of a lost frame in the decoded signal: pitch-period repetition with crossfades.

Waveform substitution (Goodman et al., IEEE TASSP 1986; the idea behind G.711 Appendix I):
a lost frame is filled by repeating the last pitch period of what was played, which
continues a voiced sound without a jump at the frame edge, fading out over a long loss.
When decoding resumes, the first decoded frame is crossfaded from that continuation into
the decoded audio over the whole frame: this interpolates between the previous and the
next frame (the "frame interpolation" of the LargeSC paper's AAC baseline) without waiting
for the next frame, and it hides what an MDCT codec gets wrong in that frame (its overlap
partner was lost, so its time-domain aliasing does not cancel).

Every output sample is a convex combination (weights in [0, 1] summing to at most 1) of
samples already decoded, so concealment can never exceed the decoded signal's own peak.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

#: Pitch periods searched, in seconds (400 Hz down to 50 Hz: the range of human voices).
MIN_PERIOD_S, MAX_PERIOD_S = 0.0025, 0.020
#: Length of the template matched against earlier signal, in seconds.
TEMPLATE_S = 0.005


def raised_cosine(n: int) -> np.ndarray:
    """A ramp rising smoothly from 0 to 1 over ``n`` samples (excluding both ends)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


def pitch_period(history: np.ndarray, sample_rate: int) -> int:
    """The lag (samples) at which the end of ``history`` best repeats itself.

    Maximises the normalised correlation between the last ``TEMPLATE_S`` of the signal and
    the same length one lag earlier. Short histories shrink the search; silence returns the
    shortest lag.
    """
    m = int(round(TEMPLATE_S * sample_rate))
    lo = int(round(MIN_PERIOD_S * sample_rate))
    hi = min(int(round(MAX_PERIOD_S * sample_rate)), len(history) - m)
    if hi < lo:
        return max(1, min(lo, len(history)))
    template = history[-m:].astype(np.float64)
    # Candidate windows ending `lag` samples before the end, for lag = hi .. lo.
    cands = sliding_window_view(history[len(history) - m - hi: len(history) - lo], m).astype(np.float64)
    num = cands @ template
    den = np.sqrt(np.sum(cands * cands, axis=1) * float(template @ template)) + 1e-12
    lags = np.arange(hi, lo - 1, -1)
    return int(lags[int(np.argmax(num / den))])


def continue_forward(history: np.ndarray, n: int, sample_rate: int) -> np.ndarray:
    """``n`` samples that continue ``history`` by repeating its last pitch period."""
    if len(history) == 0:
        return np.zeros(n, np.float32)
    p = pitch_period(history, sample_rate)
    period = history[-p:]
    return np.resize(period, n).astype(np.float32)


def fill(history: np.ndarray, n: int, sample_rate: int, gain_start: float, gain_end: float) -> np.ndarray:
    """The concealment of one lost frame of ``n`` samples: the continuation of ``history``
    (what was played before, decoded or concealed) scaled by a gain going linearly from
    ``gain_start`` to ``gain_end``, so a long loss fades to silence rather than buzzing."""
    gain = np.linspace(gain_start, gain_end, n, dtype=np.float32)
    return (continue_forward(history, n, sample_rate) * gain).astype(np.float32)


def fade_in(history: np.ndarray, decoded: np.ndarray, n_fade: int, sample_rate: int,
            gain: float) -> np.ndarray:
    """``decoded`` with its first ``n_fade`` samples crossfaded (raised cosine) from the
    continuation of ``history`` scaled by ``gain``: the first frame decoded after a loss."""
    out = np.array(decoded, dtype=np.float32, copy=True)
    n_fade = min(n_fade, len(out))
    ramp = raised_cosine(n_fade)
    out[:n_fade] = (1.0 - ramp) * gain * continue_forward(history, n_fade, sample_rate) + ramp * out[:n_fade]
    return out
