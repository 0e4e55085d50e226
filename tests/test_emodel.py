"""The E-model (ITU-T G.107, issue 16 item 6) against published figures, BurstR against the
Gilbert model it is defined for, and the ``emodel`` metric in summary.csv and windows.csv."""
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import simlab
from channels import GilbertElliott, Uniform
from simlab import registry
from simlab.metrics.emodel import (DEFAULTS, burst_ratio, delay_terms, ie_eff, mos_cqe, noise_and_ro, r_factor,
                                   r_of, simultaneous, transitions)
from simlab.metrics.emodel_codecs import G113
from simlab.registry import SystemEntry


# --- the formula --------------------------------------------------------------------------

def test_defaults_give_r_93_2():
    """G.107: with every input at its default R = 93.2 (Ro 94.77, Is 1.41, Id 0.15 (listener
    echo), Ie,eff 0), MOS-CQE 4.41, the best a narrowband connection gets."""
    no, ro = noise_and_ro(DEFAULTS)
    assert no == pytest.approx(-61.18, abs=0.005) and ro == pytest.approx(94.77, abs=0.005)
    assert simultaneous(DEFAULTS) == pytest.approx(1.41, abs=0.005)
    idte, idle, idd = delay_terms(DEFAULTS)
    assert (idte, idd) == (0.0, 0.0) and idle == pytest.approx(0.15, abs=0.005)
    r = r_factor()
    assert round(r, 1) == 93.2 and r == pytest.approx(93.206, abs=0.001)
    assert round(mos_cqe(r), 2) == 4.41


@pytest.mark.parametrize("r,mos", [(90, 4.34), (80, 4.03), (70, 3.60), (60, 3.10), (50, 2.58)])
def test_mos_at_the_g109_category_limits(r, mos):
    """G.109 Table 1: the lower limits of the speech transmission quality categories, R and MOS-CQE."""
    assert mos_cqe(r) == pytest.approx(mos, abs=0.01)


def test_mos_outside_the_cubic():
    assert (mos_cqe(-5), mos_cqe(0), mos_cqe(100), mos_cqe(120)) == (1.0, 1.0, 4.5, 4.5)
    assert math.isnan(mos_cqe(math.nan))


def test_delay_impairment_matches_the_published_fit():
    """Cole and Rosenbluth, "Voice over IP performance monitoring" (ACM SIGCOMM CCR 31(2), 2001),
    fitted the E-model's delay impairment with G.107's defaults (T = Ta, Tr = 2 Ta) as
    Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3), d the one-way delay in ms: the full G.107 terms
    stay within 1 R of it up to 300 ms, the range of their fit."""
    base = sum(delay_terms(DEFAULTS))
    for d in range(0, 301, 5):
        full = sum(delay_terms(replace(DEFAULTS, Ta=d, T=d, Tr=2 * d))) - base
        fit = 0.024 * d + 0.11 * (d - 177.3) * (d > 177.3)
        assert abs(full - fit) < 1.0, d


@pytest.mark.parametrize("ta,idd", [(100, 0.0), (150, 0.164), (300, 14.76), (400, 24.07)])
def test_absolute_delay_impairment(ta, idd):
    """Idd (G.107 eq. 7-27/7-28): 0 up to mT = 100 ms, then 25{(1+X^6)^(1/6) - 3(1+(X/3)^6)^(1/6) + 2},
    X = log2(Ta/100): X = log2 1.5, log2 3 and 2 at 150, 300 and 400 ms."""
    assert delay_terms(replace(DEFAULTS, Ta=ta))[2] == pytest.approx(idd, abs=0.005)


def test_ie_eff_with_the_g113_values():
    """Ie,eff = Ie + (95 - Ie) Ppl/(Ppl/BurstR + Bpl) with G.113 Appendix I's Ie and Bpl, against
    the logarithmic fits Cole and Rosenbluth (2001) made of the same G.113 data (G.711 with PLC:
    30 ln(1 + 15e); G.729A: 11 + 40 ln(1 + 10e), e the loss fraction): within 1.5 R up to 20 %."""
    g711, g729a = G113["G.711 PLC"], G113["G.729A+VAD"]
    assert (g711.ie, g711.bpl, G113["G.711"].bpl, g729a.ie, g729a.bpl) == (0, 25.1, 4.3, 11, 19.0)
    for e in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2):
        assert abs(ie_eff(g711.ie, g711.bpl, 100 * e) - 30 * math.log(1 + 15 * e)) < 1.5
        assert abs(ie_eff(g729a.ie, g729a.bpl, 100 * e) - (11 + 40 * math.log(1 + 10 * e))) < 1.5
    assert ie_eff(11, 19.0, 2.0) == pytest.approx(19.0)  # 11 + 84 * 2 / 21
    assert ie_eff(0, 4.3, 1.0) == pytest.approx(95 / 5.3)  # G.711 without PLC: 17.9 at 1 %
    assert ie_eff(0, 25.1, 5.0, burst_r=2.0) > ie_eff(0, 25.1, 5.0)  # bursts hurt more
    assert ie_eff(7, 25.1, 0.0) == 7


def test_r_of_a_voip_call():
    # G.729A at 150 ms and 1 % random loss: 93.2 - Id(150) (3.7) - Ie,eff (15.2) = 74.3: "medium" (G.109).
    r = r_of(150, 11, 19.0, 1.0, 1.0)
    assert r == pytest.approx(r_factor() - (sum(delay_terms(replace(DEFAULTS, Ta=150, T=150, Tr=300)))
                                            - delay_terms(DEFAULTS)[1]) - ie_eff(11, 19.0, 1.0), abs=1e-6)  # (Is barely moves with T)
    assert r == pytest.approx(74.34, abs=0.01)


# --- BurstR --------------------------------------------------------------------------------

@pytest.mark.parametrize("p,r", [(0.02, 0.3), (0.05, 0.5), (0.1, 0.2), (0.2, 0.9)])
def test_burst_ratio_of_a_gilbert_chain_is_one_over_p_plus_r(p, r):
    lost = GilbertElliott(p, r, np.random.default_rng(16)).draw(400_000)
    got = burst_ratio(transitions(lost), int(lost.sum()), len(lost))
    # p and r are measured from ~n transitions each: the estimate's spread is a few 1/sqrt(n).
    n_bad = lost.sum()
    assert got == pytest.approx(1 / (p + r), rel=4 / math.sqrt(min(n_bad, len(lost) - n_bad) * min(p, r)) + 0.005)


def test_burst_ratio_of_random_loss_is_one_and_edge_cases():
    lost = Uniform(0.1, np.random.default_rng(2)).draw(400_000)
    assert burst_ratio(transitions(lost), int(lost.sum()), len(lost)) == pytest.approx(1.0, abs=0.01)
    none = np.zeros(50, bool)
    assert burst_ratio(transitions(none), 0, 50) == 1.0
    assert burst_ratio(transitions(~none), 50, 50) == math.inf
    last = none.copy()
    last[-1] = True  # one loss, at the end: no way back seen; G.107's definition, 1 x (1 - 1/50)
    assert burst_ratio(transitions(last), 1, 50, mean_burst=1.0) == pytest.approx(0.98)
    assert transitions(np.array([0, 1, 1, 0, 0, 1], bool)) == (2, 3, 1, 2)


# --- the metric in a run ------------------------------------------------------------------

G711_TEST = "g711_emodel_test"


@pytest.fixture
def g711_system():
    """A test system: the synthetic system's units with G.711 + PLC's E-model factors (the trait)."""
    from typing import Literal

    from simlab.entries.synthetic import ENTRY as SYNTH
    from simlab.spec import Strict

    class Spec(Strict):
        kind: Literal["g711_emodel_test"]

    def build(spec, ctx):
        return SYNTH.factory(SYNTH.spec(kind="synthetic"), ctx)

    registry.register(SystemEntry(G711_TEST, Spec, build, needs_audio=False, emodel=lambda spec: G113["G.711 PLC"]))
    yield G711_TEST
    registry.unregister("systems", G711_TEST)


def _run(tmp_path, system, name="r", **extra):
    sc = simlab.load_scenario({"seed": 5, "duration_s": 40, "system": {"kind": system}, "metrics": ["emodel"],
                               "network": {"forward": {"loss": {"model": "gilbert_elliott", "loss": 0.1,
                                                                "burst_s": 0.4}}}, **extra})
    res = simlab.run(sc, tmp_path / name)
    return res, pd.read_csv(tmp_path / name / "windows.csv")


def test_emodel_in_summary_and_windows(tmp_path, g711_system):
    res, win = _run(tmp_path, g711_system)
    s = res.summary
    pk = res.packets
    media = pk[pk["kind"] != "feedback"].sort_values("send_s")
    missing = ((media["lost"] + media["dropped"] + media["late"]) > 0).to_numpy()
    ppl = 100 * missing.mean()
    br = burst_ratio(transitions(missing), int(missing.sum()), len(missing))
    ta = 1000 * res.frames["latency_s"].mean()
    assert s["emodel_ppl"] == pytest.approx(ppl) and s["emodel_burst_r"] == pytest.approx(br)
    assert s["emodel_ta_ms"] == pytest.approx(ta) and 5 < ppl < 20 and br > 1.5
    assert s["emodel_r"] == pytest.approx(r_of(ta, 0, 25.1, ppl, br))
    assert s["emodel_mos"] == pytest.approx(mos_cqe(s["emodel_r"]))
    assert "emodel_status" not in s
    # Per window: the packets sent and frames captured in it.
    row = win.iloc[3]
    inside = ((media["send_s"] >= row["t_start_s"]) & (media["send_s"] < row["t_end_s"])).to_numpy()
    assert row["emodel_ppl"] == pytest.approx(100 * missing[inside].mean())
    assert win["emodel_r"].notna().all() and win["emodel_r"].std() > 1  # loss comes and goes
    # (G.107's cubic dips to 0.99 for 0 < R < 6.5: the scale's floor is 1 only where R <= 0 or R >= 6.5.)
    assert win["emodel_mos"].between(0.98, 4.5).all(), win["emodel_mos"].describe()


def test_emodel_without_codec_factors_says_why(tmp_path):
    res, win = _run(tmp_path, "synthetic")
    s = res.summary
    assert math.isnan(s["emodel_r"]) and math.isnan(s["emodel_mos"])
    assert s["emodel_ta_ms"] > 0 and s["emodel_ppl"] > 0 and s["emodel_id"] > 0
    assert "no Ie/Bpl for system synthetic" in s["emodel_status"]
    assert "emodel_ppl" in win and win["emodel_r"].isna().all()


def test_emodel_same_seed_same_bytes_and_old_outputs_untouched(tmp_path, g711_system):
    a, _ = _run(tmp_path, g711_system, "a")
    b, _ = _run(tmp_path, g711_system, "b")
    for f in ("summary.csv", "windows.csv", "packets.csv", "frames.csv"):
        assert (a.out / f).read_bytes() == (b.out / f).read_bytes()
    plain = simlab.run(simlab.load_scenario({"seed": 5, "duration_s": 10, "system": {"kind": "synthetic"}}))
    assert not any(k.startswith("emodel") for k in plain.summary)  # only when metrics names it
