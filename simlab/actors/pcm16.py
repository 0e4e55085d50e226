"""16-bit PCM, the sample format of codecs that take integers (Codec2, LC3 as devices and its
tools run it).

simlab's audio is float in [-1, 1]; `to_int16` rounds it to the nearest integer step of 1/32768
(what a codec's own command-line tool is fed, in the fidelity tests). `from_int16` maps a
decoded sample k to k / 32768, which libsndfile writes back to received.wav as k exactly, so
received.wav holds the decoder's integers. (reference.wav is libsndfile's own conversion of the
float input, which rounds differently: it differs from `to_int16` by at most one step.)
"""
from __future__ import annotations

import numpy as np


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as int16, rounded to nearest (half to even), clipped."""
    return np.clip(np.rint(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def from_int16(y: np.ndarray) -> np.ndarray:
    """int16 samples as float32 in [-1, 1)."""
    return np.asarray(y, np.int16).astype(np.float32) / np.float32(32768.0)
