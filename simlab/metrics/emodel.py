"""The E-model of ITU-T G.107 (06/2015): the transmission rating factor R of a narrowband
connection and MOS-CQE from it, as a plain function of the standard's inputs.

    R = Ro − Is − Id − Ie,eff + A

with every term as G.107 §7 writes it: Ro, the basic signal-to-noise ratio, from the circuit and
room noise terms; Is, impairments simultaneous with speech (Iolr, Ist, Iq); Id, the delay
impairments (talker echo Idte, listener echo Idle, and Idd for an absolute delay Ta over mT =
100 ms); Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl), the codec's impairment under packet loss
(G.113 gives Ie and Bpl per codec: `simlab.metrics.emodel_codecs`). With every input at its
default (`EModelInputs()`) R = 93.2. MOS-CQE follows from R by G.107's cubic (Annex B).

BurstR: 1 for random loss; for loss from a two-state Markov chain (a packet lost after a packet
received with probability p, received after a lost one with probability r) G.107 defines
BurstR = 1/(p + r). `burst_ratio` measures p and r from a sequence of packet fates in send order.

Nothing here knows simlab: `simlab.metrics.emodel_run` feeds it a run's measured delay and loss.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class EModelInputs:
    """G.107's input parameters with their default values (G.107 Table 3). Levels in dB, noise in
    dBm0p / dBmp / dB(A), delays in ms, Ppl in percent."""

    SLR: float = 8.0       # send loudness rating
    RLR: float = 2.0       # receive loudness rating
    STMR: float = 15.0     # sidetone masking rating
    LSTR: float = 18.0     # listener sidetone rating
    Ds: float = 3.0        # D-value of the telephone, send side
    Dr: float = 3.0        # D-value of the telephone, receive side
    TELR: float = 65.0     # talker echo loudness rating
    WEPL: float = 110.0    # weighted echo path loss
    T: float = 0.0         # mean one-way delay of the echo path (ms)
    Tr: float = 0.0        # round-trip delay in a 4-wire loop (ms)
    Ta: float = 0.0        # absolute delay in echo-free connections (ms)
    qdu: float = 1.0       # number of quantization distortion units
    Ie: float = 0.0        # equipment impairment factor
    Bpl: float = 4.3       # packet-loss robustness factor
    Ppl: float = 0.0       # random packet-loss probability (%)
    BurstR: float = 1.0    # burst ratio
    Nc: float = -70.0      # circuit noise referred to the 0 dBr point (dBm0p)
    Nfor: float = -64.0    # noise floor at the receive side (dBmp)
    Ps: float = 35.0       # room noise at the send side (dB(A))
    Pr: float = 35.0       # room noise at the receive side (dB(A))
    A: float = 0.0         # advantage factor
    mT: float = 100.0      # delay below which Idd is 0 (ms)
    sT: float = 1.0        # delay sensitivity


DEFAULTS = EModelInputs()


def _lg(x: float) -> float:
    return math.log10(x)


def noise_and_ro(x: EModelInputs) -> tuple[float, float]:
    """(No, Ro): the total noise power (dBm0p) and the basic signal-to-noise ratio (G.107 7.1)."""
    olr = x.SLR + x.RLR
    nos = x.Ps - x.SLR - x.Ds - 100 + 0.004 * (x.Ps - olr - x.Ds - 14) ** 2
    pre = x.Pr + 10 * _lg(1 + 10 ** ((10 - x.LSTR) / 10))
    nor = x.RLR - 121 + pre + 0.008 * (pre - 35) ** 2
    nfo = x.Nfor + x.RLR
    no = 10 * _lg(10 ** (x.Nc / 10) + 10 ** (nos / 10) + 10 ** (nor / 10) + 10 ** (nfo / 10))
    return no, 15 - 1.5 * (x.SLR + no)


def _ist(x: EModelInputs) -> float:
    stmro = -10 * _lg(10 ** (-x.STMR / 10) + math.exp(-x.T / 4) * 10 ** (-x.TELR / 10))
    return (12 * (1 + ((stmro - 13) / 6) ** 8) ** (1 / 8)
            - 28 * (1 + ((stmro + 1) / 19.4) ** 35) ** (1 / 35)
            - 13 * (1 + ((stmro - 3) / 33) ** 13) ** (1 / 13) + 29)


def simultaneous(x: EModelInputs) -> float:
    """Is = Iolr + Ist + Iq (G.107 7.2)."""
    no, ro = noise_and_ro(x)
    olr = x.SLR + x.RLR
    xolr = olr + 0.2 * (64 + no - x.RLR)
    iolr = 20 * ((1 + (xolr / 8) ** 8) ** (1 / 8) - xolr / 8)
    q = 37 - 15 * _lg(x.qdu)
    g = 1.07 + 0.258 * q + 0.0602 * q ** 2
    y = (ro - 100) / 15 + 46 / 8.4 - g / 9
    z = 46 / 30 - g / 40
    iq = 15 * _lg(1 + 10 ** y + 10 ** z)
    return iolr + _ist(x) + iq


def delay_terms(x: EModelInputs) -> tuple[float, float, float]:
    """(Idte, Idle, Idd): talker echo, listener echo and absolute delay (G.107 7.3)."""
    no, ro = noise_and_ro(x)
    roe = -1.5 * (no - x.RLR)
    terv = x.TELR - 40 * _lg((1 + x.T / 10) / (1 + x.T / 150)) + 6 * math.exp(-0.3 * x.T ** 2)
    if x.STMR < 9:
        terv += _ist(x) / 2
    re = 80 + 2.5 * (terv - 14)
    if x.T < 1:
        idte = 0.0  # G.107: below 1 ms the talker echo is sidetone
    else:
        idte = ((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100) - 1) * (1 - math.exp(-x.T))
    if x.STMR > 20:  # G.107: for very high STMR, Idtes = sqrt(Idte² + Ist²) replaces Idte
        idte = math.sqrt(idte ** 2 + _ist(x) ** 2)
    rle = 10.5 * (x.WEPL + 7) * (x.Tr + 1) ** -0.25
    idle = (ro - rle) / 2 + math.sqrt((ro - rle) ** 2 / 4 + 169)
    if x.Ta <= x.mT:
        idd = 0.0
    else:
        xx = _lg(x.Ta / x.mT) / _lg(2)
        e = 6 * x.sT
        idd = 25 * ((1 + xx ** e) ** (1 / e) - 3 * (1 + (xx / 3) ** e) ** (1 / e) + 2)
    return idte, idle, idd


def ie_eff(ie: float, bpl: float, ppl: float, burst_r: float = 1.0) -> float:
    """Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl), Ppl in percent (G.107 7.4)."""
    if ppl == 0:
        return float(ie)
    return ie + (95 - ie) * ppl / (ppl / burst_r + bpl)


def r_factor(x: EModelInputs = DEFAULTS) -> float:
    """G.107's transmission rating factor R."""
    _, ro = noise_and_ro(x)
    return ro - simultaneous(x) - sum(delay_terms(x)) - ie_eff(x.Ie, x.Bpl, x.Ppl, x.BurstR) + x.A


def mos_cqe(r: float) -> float:
    """MOS-CQE from R (G.107 Annex B): 1 below R = 0, 4.5 above 100, the cubic between (as G.107
    writes it: it dips to 0.99 for 0 < R < 6.5); NaN stays NaN."""
    if math.isnan(r):
        return math.nan
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6


def r_of(ta_ms: float, ie: float, bpl: float, ppl: float, burst_r: float, **inputs: float) -> float:
    """R of a VoIP connection with mouth-to-ear delay ``ta_ms``, the rest at G.107's defaults (or
    ``inputs``): the echo path is the same one-way delay (T = Ta) and its loop twice that (Tr = 2 Ta)."""
    x = replace(DEFAULTS, Ta=ta_ms, T=ta_ms, Tr=2 * ta_ms, Ie=ie, Bpl=bpl, Ppl=ppl, BurstR=burst_r, **inputs)
    return r_factor(x)


def transitions(lost: np.ndarray) -> tuple[int, int, int, int]:
    """(received → lost, received → any, lost → received, lost → any) between consecutive packets
    of one sequence in send order."""
    lost = np.asarray(lost, dtype=bool)
    a, b = lost[:-1], lost[1:]
    return (int(np.sum(~a & b)), int(np.sum(~a)), int(np.sum(a & ~b)), int(np.sum(a)))


def burst_ratio(counts: tuple[int, int, int, int], n_lost: int, n: int, mean_burst: float = math.nan) -> float:
    """BurstR = 1/(p + r) of the two-state Markov chain fitted to ``counts`` (`transitions`, summed
    over sequences): p = P(lost | previous received), r = P(received | previous lost). 1 without
    loss; infinite when every one of the ``n`` packets is lost (one burst as long as the call).
    Where the counts cannot give both p and r (a single loss, at the very end), G.107's definition
    itself: the mean burst length ``mean_burst`` over the random-loss one, 1/(1 − n_lost/n)."""
    if n_lost == 0:
        return 1.0
    if n_lost >= n:
        return math.inf
    gr, g, rg, r = counts
    if g and r and gr + rg:
        return 1.0 / (gr / g + rg / r)
    return mean_burst * (1 - n_lost / n)
