"""The ``emodel`` metric: G.107's R and MOS-CQE of a run from what it measured, per call
(summary.csv) and per window (windows.csv). It needs no audio: the synthetic system and runs
without ``audio:`` get it too.

Inputs, from the run's tables (`simlab.metrics.run_tables`):
- Ta, the mouth-to-ear delay: the mean of frames.csv's ``latency_s`` (capture to playout: packet
  buffering, codec look-ahead, compute, transmission, jitter buffer), in ms; the echo path's
  one-way delay T = Ta and its round trip Tr = 2 Ta (a VoIP connection: G.107's echo terms at
  their default TELR and WEPL, i.e. echo well controlled).
- Ppl, the forward media packets lost to the decoder (erased, dropped at a full queue, or late
  for the jitter buffer) in percent of those sent.
- BurstR = 1/(p + r) of the two-state Markov chain fitted to each flow's fates in send order.
- Ie and Bpl: the system entry's ``emodel`` trait (`simlab.metrics.emodel_codecs`). A system
  without one gets the measured terms (Ta, Ppl, BurstR, Id) and no R, with a status saying why.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from simlab.metrics.base import MetricInput, Skipped
from simlab.metrics.emodel import DEFAULTS, burst_ratio, delay_terms, ie_eff, mos_cqe, r_factor, transitions

COLUMNS = ("emodel_r", "emodel_mos", "emodel_ta_ms", "emodel_ppl", "emodel_burst_r", "emodel_id", "emodel_ie_eff")


def impairment_of(system):
    """The system's `Impairment` (its entry's ``emodel`` trait), or None."""
    if system is None:
        return None
    from simlab import registry

    trait = registry.system(system).emodel
    return trait(system) if trait is not None else None


def measured(tables) -> dict[str, float]:
    """Ta (ms), Ppl (%), BurstR from the run's tables; `Skipped` without packets or frames."""
    n = int(len(tables.missing))
    if n == 0 or len(tables.latency_s) == 0:
        raise Skipped("no packets sent or no frames captured here")
    counts = np.zeros(4, dtype=np.int64)
    runs: list[int] = []
    for seq in tables.sequences():
        counts += transitions(seq)
        x = np.diff(np.concatenate([[0], seq.astype(np.int8), [0]]))
        runs.extend((np.flatnonzero(x == -1) - np.flatnonzero(x == 1)).tolist())
    n_lost = int(tables.missing.sum())
    mean_burst = float(np.mean(runs)) if runs else math.nan
    return {"ta_ms": float(np.mean(tables.latency_s)) * 1000.0, "ppl": 100.0 * n_lost / n,
            "burst_r": burst_ratio(tuple(int(c) for c in counts), n_lost, n, mean_burst)}


def emodel(inp: MetricInput) -> dict[str, float | str]:
    """The registered metric: `COLUMNS` (and ``emodel_status`` where R cannot be given)."""
    if inp.run is None:
        raise Skipped("no run tables (the E-model scores packets.csv and frames.csv)")
    m = measured(inp.run)
    ta = m["ta_ms"]
    x = replace(DEFAULTS, Ta=ta, T=ta, Tr=2 * ta, Ppl=m["ppl"], BurstR=m["burst_r"])
    out: dict[str, float | str] = {"emodel_r": math.nan, "emodel_mos": math.nan, "emodel_ta_ms": ta,
                                   "emodel_ppl": m["ppl"], "emodel_burst_r": m["burst_r"],
                                   "emodel_id": float(sum(delay_terms(x))), "emodel_ie_eff": math.nan}
    codec = impairment_of(inp.run.system)
    name = getattr(inp.run.system, "kind", "?")
    if codec is None:
        out["emodel_status"] = (f"skipped: no Ie/Bpl for system {name} (G.113 publishes none; the system "
                                f"entry's emodel trait names them)")
        return out
    if math.isnan(codec.bpl) and m["ppl"] > 0:
        out["emodel_status"] = f"skipped: {codec.source}: no Bpl, and {m['ppl']:.3g} % of packets were lost"
        return out
    bpl = codec.bpl if not math.isnan(codec.bpl) else DEFAULTS.Bpl  # unused without loss
    r = r_factor(replace(x, Ie=codec.ie, Bpl=bpl))
    out.update(emodel_r=r, emodel_mos=mos_cqe(r), emodel_ie_eff=ie_eff(codec.ie, bpl, m["ppl"], m["burst_r"]))
    return out
