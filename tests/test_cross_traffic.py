"""Open-loop cross traffic (simlab.sim.cross) against its definitions: a constant rate is
exact, Poisson gaps are exponential, on-off sources carry peak x on / (on + off) with periods of
the asked means (exponential and Pareto)."""
import numpy as np
import pytest
import simpy

from simlab.sim.cross import ConstantRate, OnOff, Poisson


class Times:
    def __init__(self, env):
        self.env, self.t = env, []

    def put(self, pkt):
        self.t.append(self.env.now)


def sent(cls, seconds, *args, **kw):
    env = simpy.Environment()
    src = cls(env, 0, *args, **kw)
    src.out = Times(env)
    src.start()
    env.run()
    return np.array(src.out.t)


def test_constant_rate_is_exact():
    t = sent(ConstantRate, 10, 96000, 1200, 1.0, 11.0)
    assert len(t) == 100 and t[0] == 1.0
    assert np.diff(t) == pytest.approx(0.1)


def test_poisson_gaps_are_exponential():
    t = sent(Poisson, 2000, 200000, 500, 0.0, 2000.0, np.random.default_rng(1))
    gaps = np.diff(t)
    mean = 500 * 8 / 200000
    assert gaps.mean() == pytest.approx(mean, rel=0.02)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)  # exponential: CV 1
    assert np.mean(gaps > mean) == pytest.approx(np.exp(-1), abs=0.01)


@pytest.mark.parametrize("dist,shape", [("exponential", 1.5), ("pareto", 2.5)])
def test_on_off_carries_its_duty_cycle(dist, shape):
    rate, on, off = 100000, 0.5, 1.5
    seconds = 4000.0
    t = sent(OnOff, seconds, rate, 1000, 0.0, seconds, np.random.default_rng(2), on, off, dist, shape)
    carried = len(t) * 1000 * 8 / seconds
    # an on period of length L sends ceil(L / gap) packets: between L / gap and one more
    fluid = rate * on / (on + off)
    assert 0.97 * fluid < carried < 1.03 * (fluid + 1000 * 8 / (on + off))
    if dist == "exponential":  # E ceil(L / g) = 1 / (1 - exp(-g / on)) for exponential L
        g = 1000 * 8 / rate
        assert carried == pytest.approx(1000 * 8 / (1 - np.exp(-g / on)) / (on + off), rel=0.03)


@pytest.mark.parametrize("dist", ["exponential", "pareto"])
def test_periods_have_the_asked_mean(dist):
    env = simpy.Environment()
    src = OnOff(env, 0, 1e5, 1000, 0.0, 1.0, np.random.default_rng(4), 0.5, 2.0, dist, 2.5)
    x = np.array([src._period(2.0) for _ in range(200000)])
    assert x.mean() == pytest.approx(2.0, rel=0.02)
    if dist == "pareto":
        assert x.min() >= 2.0 * 1.5 / 2.5  # the Pareto minimum, x_m = mean (shape - 1) / shape
        assert np.mean(x > 4.0) == pytest.approx((1.2 / 4.0) ** 2.5, rel=0.05)  # its tail
    else:
        assert x.std() == pytest.approx(2.0, rel=0.02)
