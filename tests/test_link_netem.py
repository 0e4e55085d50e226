"""The netem link model against netem's own definitions (Linux net/sched/sch_netem.c, iproute2's
netem/ table generators): the tables equal the ones tc installs, sample moments of the delays
match each distribution's table, the correlated generator is netem's (an AR(1) of uniform draws,
whose correlation the table lookup then discards: tc-netem(8) calls it "an approximation"),
reordering happens at the rate netem's rule gives, and the rate limit serializes with its
packet and cell overheads."""
from pathlib import Path

import numpy as np
import pytest
import simpy

import simlab
from channels.uniform import Uniform
from simlab.errors import UserError
from simlab.packets import Packet
from simlab.sim.link import LinkParams
from simlab.sim.netem import NetemLink
from simlab.sim.netem_dist import CRandom, U32Stream, dist_table, percent_u32, table_moments, tabledist

TC_LIB = Path("/usr/lib/x86_64-linux-gnu/tc")
N = 40_000


def _netem(delay_s=0.1, jitter_s=0.02, bandwidth_bps=1e12, loss=0.0, seed=2, **kw):
    params = LinkParams(bandwidth_bps, delay_s, Uniform(loss, np.random.default_rng(1)), jitter_s, None,
                        np.random.default_rng(seed))
    return NetemLink(simpy.Environment(), params, **kw)


def _delays(link, n=N, interval_s=0.001, size_bytes=100):
    out = np.empty(n)
    for i in range(n):
        p = Packet(0, i, "media", size_bytes, 0, [])
        out[i] = link.transmit(p, i * interval_s) and p.arrival_s - p.send_s
    return out


def _dist_file(name):
    vals = []
    for line in (TC_LIB / f"{name}.dist").read_text().splitlines():
        if not line.startswith("#"):
            vals += [int(v) for v in line.split()]
    return tuple(vals)


@pytest.mark.parametrize("name", ["normal", "pareto", "paretonormal"])
def test_tables_are_iproute2s(name):
    table = dist_table(name)
    assert len(table) == 4096 and min(table) >= -32768 and max(table) <= 32767
    if not (TC_LIB / f"{name}.dist").is_file():
        pytest.skip(f"iproute2's {name}.dist is not installed here ({TC_LIB})")
    assert table == _dist_file(name)


def test_table_moments_are_those_of_the_distributions():
    mean, std = table_moments("normal")
    assert abs(mean) < 0.001 and std == pytest.approx(1.0, abs=0.001)
    # Pareto, shape 3, shifted by its mean and scaled by 4/3: mean 0, but the table stops at
    # 32767 / 8192 = 4 sigma, which cuts its heavy tail (the untruncated std would be 1.15).
    mean, std = table_moments("pareto")
    assert mean == pytest.approx(-0.0335, abs=1e-4) and std == pytest.approx(0.8197, abs=1e-4)
    assert table_moments("paretonormal") == pytest.approx((-0.0253, 0.8339), abs=1e-4)


def test_tabledist_is_netems_integer_arithmetic():
    table = dist_table("normal")
    mu, sigma = 100_000_000, 20_000_000  # ns
    rnd = 123_456_789
    t = table[rnd % 4096]
    x = (sigma % 8192) * t
    x = x + 4096 if x >= 0 else x - 4096
    expect = int(x / 8192) + (sigma // 8192) * t + mu  # C's division truncates toward zero
    assert tabledist(mu, sigma, rnd, table) == expect
    assert tabledist(mu, sigma, rnd, None) == rnd % (2 * sigma) + mu - sigma
    assert tabledist(mu, 0, rnd, table) == mu
    assert percent_u32(0.25) == 1073741824 and percent_u32(1.0) == (1 << 32) - 1


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto", "paretonormal"])
def test_sample_moments_match_the_distribution(distribution):
    d = _delays(_netem(0.1, 0.02, rate=False, distribution=distribution))
    mean, std = table_moments(distribution)
    se = 0.02 * std / np.sqrt(N)
    assert d.mean() == pytest.approx(0.1 + 0.02 * mean, abs=5 * se)
    assert d.std() == pytest.approx(0.02 * std, rel=0.02)
    if distribution == "uniform":  # delay ± jitter: [mu - sigma, mu + sigma)
        assert 0.08 <= d.min() and d.max() < 0.12
    if distribution == "normal":
        assert d.std() == pytest.approx(0.02, rel=0.02)
        assert np.mean(np.abs(d - 0.1) < 0.02) == pytest.approx(0.6827, abs=0.01)


@pytest.mark.parametrize("rho", [0.25, 0.5, 0.9])
def test_the_correlated_generator_is_an_ar1_of_uniform_draws(rho):
    """get_crandom: X_n = ((2^32 - r) U_n + r X_{n-1}) / 2^32, r = rho (as a u32) + 1. Its
    successive values correlate at rho and spread sqrt((1 - rho) / (1 + rho)) as wide as U."""
    draw = U32Stream(np.random.default_rng(7))
    c = CRandom(rho, draw)
    x = np.array([c.next(draw) for _ in range(200_000)], dtype=float) / 2 ** 32
    assert np.corrcoef(x[1:], x[:-1])[0, 1] == pytest.approx(rho, abs=0.01)
    assert x.mean() == pytest.approx(0.5, abs=0.01)
    assert x.std() == pytest.approx(np.sqrt(1 / 12) * np.sqrt((1 - rho) / (1 + rho)), rel=0.02)


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto"])
def test_netems_delay_correlation_is_lost_in_the_table_lookup(distribution):
    """The known caveat: tabledist takes the correlated value modulo 4096 (a table) or 2 jitter
    (uniform), keeping only its low bits, so successive delays are uncorrelated however high the
    correlation asked; the marginal distribution stays the table's."""
    d = _delays(_netem(0.1, 0.01, rate=False, distribution=distribution, correlation=0.9))
    assert abs(np.corrcoef(d[1:], d[:-1])[0, 1]) < 0.02
    assert d.std() == pytest.approx(0.01 * table_moments(distribution)[1], rel=0.03)


def test_uniform_jitter_near_netems_cap_keeps_the_correlation():
    """With 2 jitter close to 2^32 ns (jitter 2 s) the modulo hardly wraps: the delays then carry
    the generator's correlation (and its narrower spread)."""
    d = _delays(_netem(3.0, 2.0, rate=False, correlation=0.9), n=20_000, interval_s=0.01)  # under the limit
    assert np.corrcoef(d[1:], d[:-1])[0, 1] > 0.8
    assert d.std() < 2.0 / np.sqrt(3) * 0.5
    with pytest.raises(ValueError, match="caps jitter"):
        _netem(3.0, 2.2)


def _stationary_cdf(rho, x, h=1e-5):
    """P(X <= x) for X = (1 - rho) sum_k rho^k U_k (netem's generator, in units of 2^32), by
    convolving the densities of its terms on a grid."""
    from scipy.signal import fftconvolve

    dens, c = np.array([1.0]), 1 - rho
    while c > 1e-7:
        m = max(1, int(round(c / h)))
        dens = np.clip(fftconvolve(dens, np.full(m, 1.0 / m)), 0, None)
        c *= rho
    cdf = np.cumsum(dens)
    return float(np.interp(x / h, np.arange(len(cdf)), cdf / cdf[-1]))


@pytest.mark.parametrize("reorder, correlation, gap", [(0.25, 0.0, None), (1.0, 0.0, 5), (0.5, 0.0, 3),
                                                       (0.25, 0.5, None)])
def test_reorder_fraction_follows_netems_rule(reorder, correlation, gap):
    """A packet is sent at once when at least gap - 1 went since the last such one and a draw
    is within the probability: 1 / (gap - 1 + 1 / p) of the packets. With correlation, the draw
    is the correlated generator's, whose narrower spread makes it rarer than p (the stationary
    law of the AR(1))."""
    link = _netem(0.1, 0.0, rate=False, reorder=reorder, reorder_correlation=correlation, gap=gap)
    d = _delays(link)
    at_once = d == 0
    assert at_once.sum() == link.reordered
    g = gap or 1
    expect = _stationary_cdf(correlation, reorder) if correlation else 1 / (g - 1 + 1 / reorder)
    assert at_once.mean() == pytest.approx(expect, abs=4 * np.sqrt(expect * (1 - expect) / N) + 1e-3)
    if gap == 5 and reorder == 1.0:
        assert (np.flatnonzero(at_once) % 5 == 4).all()  # every fifth exactly
    if correlation:
        assert at_once.mean() < 0.8 * reorder  # 7 % of the packets, not 25 %


def test_reordered_packets_overtake_delayed_ones():
    link = _netem(0.05, 0.0, rate=False, reorder=1.0, gap=3)
    arrivals = []
    for i in range(6):
        p = Packet(0, i, "media", 100, 0, [])
        link.transmit(p, i * 0.01)
        arrivals.append(p.arrival_s)
    assert arrivals == pytest.approx([0.05, 0.06, 0.02, 0.08, 0.09, 0.05])
    assert np.argsort(arrivals, kind="stable").tolist()[:2] == [2, 0]


@pytest.mark.parametrize("size, overhead, cell, cell_overhead, link_overhead",
                         [(100, 0, 0, 0, 0), (100, 14, 0, 0, 0), (100, 8, 48, 5, 0), (100, 0, 0, 0, 38)])
def test_rate_serializes_with_packet_and_cell_overhead(size, overhead, cell, cell_overhead, link_overhead):
    """Back to back at 64 kbit/s (8000 bytes/s): each packet takes packet_time_ns of netem:
    (len + overhead) * 1e9 // rate, in whole cells of cell + cell_overhead when cells are set."""
    params = LinkParams(64_000, 0.0, Uniform(0.0, np.random.default_rng(1)), 0.0, None, np.random.default_rng(2),
                        overhead_bytes=link_overhead)
    link = NetemLink(simpy.Environment(), params, packet_overhead=overhead, cell_size=cell,
                     cell_overhead=cell_overhead)
    length = size + overhead + link_overhead
    if cell:
        length = -(-length // cell) * (cell + cell_overhead)
    per_ns = length * 1_000_000_000 // 8000
    arrivals = []
    for i in range(50):
        p = Packet(0, i, "media", size, 0, [])
        assert link.transmit(p, 0.0)
        arrivals.append(p.arrival_s)
    assert np.diff(arrivals) == pytest.approx(per_ns / 1e9, abs=1e-12)
    assert arrivals[0] == pytest.approx(per_ns / 1e9)
    assert (100 + 8) * 8 / 64_000 < per_ns / 1e9 if cell else True  # ATM cells cost more than the bytes


def test_with_a_rate_jitter_does_not_reorder_and_delay_counts_from_the_last_packet():
    link = _netem(0.1, 0.05, bandwidth_bps=1_000_000, rate=True, distribution="normal")
    d = _delays(link, n=5000, interval_s=0.002)  # 50 kB/s into 125 kB/s
    assert (d > 0).all()
    arrivals = np.arange(5000) * 0.002 + d
    assert (np.diff(arrivals) > 0).all()  # time_to_send = max(last, now + delay) + packet time
    free = _netem(0.1, 0.05, rate=False, distribution="normal")
    a2 = np.arange(5000) * 0.002 + _delays(free, n=5000, interval_s=0.002)
    assert (np.diff(a2) < 0).mean() > 0.3  # without a rate the tfifo reorders by time to send


def test_limit_drops_and_loss_comes_first_taking_no_room():
    link = _netem(1.0, 0.0, rate=False, limit=10)
    fates = [link.transmit(Packet(0, i, "media", 100, 0, []), i * 0.001) for i in range(12)]
    assert fates == [True] * 10 + [False] * 2
    assert link.transmit(Packet(0, 12, "media", 100, 0, []), 1.0005)  # the first has left
    lossy = _netem(1.0, 0.0, rate=False, limit=1, loss=1.0)
    pkts = [Packet(0, i, "media", 100, 0, []) for i in range(3)]
    assert not any(lossy.transmit(p, 0.0) for p in pkts)
    assert all(p.lost and not p.dropped for p in pkts)


@pytest.mark.parametrize("link, forward, message", [
    ({"gap": 3}, {}, "gap: only with reorder"),
    ({"reorder": 0.1}, {"delay_s": 0.0}, "reorder needs delay_s > 0"),
    ({"distribution": "normal"}, {"jitter_s": 0.0}, "needs delay_s and jitter_s > 0"),
    ({"correlation": 0.5}, {"jitter_s": 0.0}, "correlation needs jitter_s"),
    ({}, {"queue_packets": 5}, "netem's queue cap is link.limit"),
])
def test_settings_tc_refuses_are_refused(link, forward, message):
    sc = {"duration_s": 2, "network": {"forward": {"delay_s": 0.05, "jitter_s": 0.01, **forward,
                                                   "link": {"model": "netem", **link}}}}
    with pytest.raises(UserError, match=message):
        simlab.run(sc)


def test_a_call_over_netem():
    sc = {"seed": 4, "duration_s": 20, "network": {"forward": {
        "bandwidth_bps": 64_000, "delay_s": 0.08, "jitter_s": 0.03,
        "link": {"model": "netem", "distribution": "normal", "rate": False}}}}
    res = simlab.run(sc)
    pk = res.packets[res.packets["kind"] == "media"]
    d = pk["arrival_s"].astype(float) - pk["send_s"].astype(float)
    assert d.mean() == pytest.approx(0.08, abs=0.01) and d.std() == pytest.approx(0.03, rel=0.25)
