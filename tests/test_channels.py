"""Loss models against their formulas (DESIGN.md: Gilbert-Elliott stationary loss and burst length)."""
import numpy as np
import pytest

import channels
from channels import GilbertElliott, Schedule, Trace, Uniform

N = 10**6
# Bursts correlate successive packets: 4e6 packets put the 1 % tolerance at ~5 standard deviations.
N_GE = 4 * 10**6


def bursts(lost: np.ndarray) -> np.ndarray:
    """Lengths of runs of consecutive losses."""
    x = np.concatenate([[0], lost.astype(np.int8), [0]])
    d = np.diff(x)
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


@pytest.mark.parametrize("p", [0.01, 0.1, 0.3])
def test_uniform_rate(p):
    lost = Uniform(p, np.random.default_rng(7)).draw(N)
    assert abs(lost.mean() - p) / p < 0.01 + 3 * np.sqrt(p * (1 - p) / N) / p
    # Independent: mean run length 1/(1-p)
    assert bursts(lost).mean() == pytest.approx(1 / (1 - p), rel=0.01)


@pytest.mark.parametrize("loss,burst", [(0.05, 2.0), (0.1, 3.0), (0.3, 5.0)])
def test_simple_gilbert_average_and_burst(loss, burst):
    ge = GilbertElliott.from_average(loss, burst, np.random.default_rng(11))
    lost = ge.draw(N_GE)
    assert lost.mean() == pytest.approx(loss, rel=0.01)
    assert bursts(lost).mean() == pytest.approx(burst, rel=0.01)


@pytest.mark.parametrize("p,r,lg,lb", [(0.02, 0.3, 0.01, 0.7), (0.05, 0.5, 0.0, 0.9), (0.1, 0.2, 0.02, 0.5)])
def test_gilbert_elliott_stationary_loss(p, r, lg, lb):
    ge = GilbertElliott(p, r, np.random.default_rng(3), loss_good=lg, loss_bad=lb)
    expected = lg * r / (p + r) + lb * p / (p + r)
    assert ge.mean_loss == pytest.approx(expected)
    assert ge.draw(N_GE).mean() == pytest.approx(expected, rel=0.01)


def test_draw_and_lost_agree():
    a = GilbertElliott(0.05, 0.3, np.random.default_rng(5), 0.01, 0.8)
    b = GilbertElliott(0.05, 0.3, np.random.default_rng(5), 0.01, 0.8)
    one = np.array([a.lost() for _ in range(10000)])
    assert np.array_equal(one, b.draw(10000))


def test_trace(tmp_path):
    f = tmp_path / "t.txt"
    f.write_text("# a trace\n0 1 1\n0,0\n")
    assert Trace.from_file(f).draw(7).tolist() == [0, 1, 1, 0, 0, 0, 1]
    assert Trace.from_file(f, loop=False).draw(7).tolist() == [0, 1, 1, 0, 0, 0, 0]
    bad = tmp_path / "bad.txt"
    bad.write_text("0 2\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: '2' is not 0 or 1"):
        Trace.from_file(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    with pytest.raises(ValueError, match="empty"):
        Trace.from_file(empty)


def test_schedule_phases_and_state_carry():
    rng = np.random.default_rng(1)
    sch = Schedule([(10, Uniform(0.0, rng)), (20, Uniform(1.0, rng))], Uniform(0.0, rng))
    assert not any(sch.lost(t) for t in np.arange(0, 10, 0.01))
    assert all(sch.lost(t) for t in np.arange(10, 20, 0.01))
    assert not any(sch.lost(t) for t in np.arange(20, 30, 0.01))
    # A Gilbert-Elliott chain in Bad stays in Bad across a phase change (r = 0 keeps it there).
    a = GilbertElliott(1.0, 0.5, np.random.default_rng(2))
    b = GilbertElliott(0.0, 0.0 + 1e-12, np.random.default_rng(3))
    s = Schedule([(1.0, a)], b, carries=[True, True])  # the gilbert_elliott entry's carries_state
    s.lost(0.0)
    s.lost(0.5)
    assert a.state == 1 or a.state == 0
    before = a.state
    s.lost(1.5)
    assert b.state == before


@pytest.mark.parametrize("make", [
    lambda rng: Schedule([], GilbertElliott.from_average(0.2, 3, rng)),  # one per-packet model: drawn in a block
    lambda rng: Schedule([(0.7, Uniform(0.5, rng))], Uniform(0.1, rng)),  # phases: packet by packet
])
def test_schedule_lost_many_is_lost_packet_by_packet(make):
    times = np.arange(0.0, 2.0, 0.016)
    one, many = make(np.random.default_rng(9)), make(np.random.default_rng(9))
    expected = [one.lost(float(t)) for t in times]
    got = np.concatenate([many.lost_many(times[:7]), many.lost_many(times[7:7]), many.lost_many(times[7:])])
    assert got.dtype == bool and got.tolist() == expected


def test_bad_parameters():
    with pytest.raises(ValueError, match=r"p: 1.7 is not in \[0, 1\]"):
        Uniform(1.7, np.random.default_rng())
    with pytest.raises(ValueError, match="burst"):
        GilbertElliott.from_average(0.1, 0.5, np.random.default_rng())


def test_scenario_schedule_carries_gilbert_elliott_state_by_the_registry_trait():
    from simlab.build import loss_schedule
    from simlab.scenario import load_scenario

    sc = load_scenario({"network": {"forward": {
        "loss": {"model": "gilbert_elliott", "p": 0.0, "r": 1e-9},
        "schedule": [{"until_s": 1.0, "loss": {"model": "gilbert_elliott", "p": 1.0, "r": 1e-9}},
                     {"until_s": 2.0, "loss": {"model": "uniform", "p": 0.0}}]}}})
    sch = loss_schedule(sc.network.forward, np.random.default_rng(0), sc.path, "network.forward")
    assert sch.carries == [True, False, True]
    assert sch.lost(0.5)  # phase 0 drives the chain into Bad, where it stays
    assert not sch.lost(1.5)  # a uniform phase in between: nothing to carry
    sch2 = loss_schedule(sc.network.forward.model_copy(update={"schedule": sc.network.forward.schedule[:1]}),
                         np.random.default_rng(0), sc.path, "network.forward")
    assert sch2.lost(0.5) and sch2.lost(1.5)  # Bad carried into the last phase (p = 0 would start in Good)


@pytest.mark.parametrize("make", [lambda rng: Uniform(0.2, rng),
                                  lambda rng: GilbertElliott(0.05, 0.3, rng, 0.01, 0.8),
                                  lambda rng: Trace(np.random.default_rng(9).random(3001) < 0.3, loop=True)])
def test_decisions_do_not_depend_on_the_block_size(make, monkeypatch):
    """A model draws its decisions a block at a time (memory: a block per link); the stream must be
    the seed's whatever the block, so changing it changes no run's output."""
    import channels.base

    streams = []
    for block in (7, 512, 4096):
        monkeypatch.setattr(channels.base, "BLOCK", block)
        m = make(np.random.default_rng(11))
        streams.append(np.array([m.lost() for _ in range(9000)]))
    assert all(np.array_equal(streams[0], s) for s in streams[1:])
