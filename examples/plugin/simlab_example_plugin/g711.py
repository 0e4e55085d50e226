"""ITU-T G.711 µ-law, in numpy, bit-exact to the reference tables.

The encoder works on 14-bit linear values, as G.711 defines µ-law (sign and magnitude,
magnitudes up to 8159 after clipping): a 16-bit sample becomes one by an arithmetic shift right
by 2, as Sun's public-domain ``g711.c`` and CPython's ``audioop.lin2ulaw`` do. The magnitude
plus the bias 33 falls into one of 8 segments (each twice as wide as the one before: the
*segment/exponent* table ``SEG_END``); the code is the sign bit, the 3-bit segment and 4 bits
of mantissa, all inverted (µ-law transmits the one's complement, so silence is 0xFF).

Decoding is the standard's table of 256 output levels (``DECODE_TABLE``, 16-bit, ±32124).

Note: ITU-T G.191's software tools reduce a negative 16-bit sample to 14 bits by one's
complement (``~x >> 2``) instead of an arithmetic shift (G.711 itself works on sign and
magnitude and does not say): their code is one quantisation step from this one's for 508 of the
65536 16-bit values, all negative and right at a decision level. The tests check this module
against ``audioop`` on every 16-bit value and on random input.
"""
from __future__ import annotations

import numpy as np

BIAS = 0x84  # 132 = 33 << 2: the bias in 16-bit units (33 in 14-bit units)
CLIP = 8159  # largest 14-bit magnitude G.711 µ-law represents
#: Upper ends (inclusive) of the 8 segments, on the biased 14-bit magnitude.
SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)


def _decode_table() -> np.ndarray:
    """The 16-bit linear value of each of the 256 µ-law codes (G.711 Table 2a, scaled by 4)."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, BIAS - t, t - BIAS).astype(np.int16)


DECODE_TABLE = _decode_table()


def encode(pcm16: np.ndarray) -> np.ndarray:
    """µ-law codes (uint8) of 16-bit linear samples (any integer array of values in int16 range)."""
    x = np.asarray(pcm16).astype(np.int32) >> 2  # 14-bit two's complement
    negative = x < 0
    mag = np.minimum(np.abs(x), CLIP) + (BIAS >> 2)
    seg = np.searchsorted(SEG_END, mag, side="left")  # first segment whose end >= mag
    code = (seg << 4) | ((mag >> (seg + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code)  # past the last segment (the clip level itself): the largest code
    mask = np.where(negative, 0x7F, 0xFF)
    return (code ^ mask).astype(np.uint8)


def decode(codes: np.ndarray) -> np.ndarray:
    """16-bit linear samples (int16) of µ-law codes."""
    return DECODE_TABLE[np.asarray(codes, dtype=np.uint8)]


def float_to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] as 16-bit PCM (rounded, clipped), the way a sound card would."""
    return np.clip(np.rint(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return (np.asarray(pcm, dtype=np.float32) / 32768.0).astype(np.float32)
