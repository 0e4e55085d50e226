"""Channels in time (issue 16, item 1): the Gilbert-Elliott chain with sojourns in seconds against
its parameters (CLT tolerances), outages and time-stamped traces, state across schedule phases at
the boundary instant, and every system at a seed meeting the same channel whatever its packet rate."""
import math

import numpy as np
import pytest
from scipy import stats

import simlab
from channels import GilbertElliott, Schedule, Uniform
from channels.gilbert_elliott_time import TimedGilbertElliott
from channels.intervals import LossIntervals, read_time_trace
from simlab.build import loss_schedule
from simlab.errors import UserError
from simlab.scenario import load_scenario

GE_TIME = {"model": "gilbert_elliott", "loss": 0.1, "burst_s": 0.3}


def _path_stats(loss, burst_s, horizon_s, seed):
    """Time share in Bad and the Bad / Good sojourns of one long path."""
    ge = TimedGilbertElliott(loss, burst_s, np.random.default_rng(seed))
    first, sw = ge.switches(horizon_s)
    edges = np.concatenate([[0.0], sw, [horizon_s]])
    lengths = np.diff(edges)
    states = (first + np.arange(len(lengths))) % 2
    bad_time = lengths[states == 1].sum()
    inner = lengths[1:-1]  # whole sojourns: the first and the last are cut by the window
    inner_states = states[1:-1]
    return bad_time / horizon_s, inner[inner_states == 1], inner[inner_states == 0], ge


@pytest.mark.parametrize("loss,burst_s", [(0.1, 0.3), (0.05, 0.02), (0.3, 1.0)])
def test_time_chain_meets_its_loss_and_burst_duration(loss, burst_s):
    good_s = burst_s * (1 - loss) / loss
    horizon = 40_000 * (burst_s + good_s)  # about 40,000 bursts
    share, bad, good, ge = _path_stats(loss, burst_s, horizon, seed=16)
    # Time average of a two-state Markov indicator: variance 2 pi_B pi_G tau / T, tau = 1/(rate_GB + rate_BG).
    tau = 1.0 / (1.0 / burst_s + 1.0 / good_s)
    sd_share = math.sqrt(2 * loss * (1 - loss) * tau / horizon)
    assert abs(share - loss) < 4 * sd_share
    # Exponential sojourns: the mean of n has sd mean/sqrt(n), and the law is exponential.
    assert abs(bad.mean() - burst_s) < 4 * burst_s / math.sqrt(len(bad))
    assert abs(good.mean() - good_s) < 4 * good_s / math.sqrt(len(good))
    assert stats.kstest(bad, "expon", args=(0, burst_s)).pvalue > 1e-3
    assert stats.kstest(good, "expon", args=(0, good_s)).pvalue > 1e-3
    assert ge.mean_loss == loss

    # Seen by packets (every 1/50 of a burst): the loss rate and the bursts in seconds.
    dt = burst_s / 50
    t = np.arange(0, min(horizon, 200_000 * dt), dt)
    lost = np.array([ge.lost_at(x) for x in t])
    n_bursts = len(t) * dt / (burst_s + good_s)
    sd = math.sqrt(2 * loss * (1 - loss) * tau / (len(t) * dt))
    assert abs(lost.mean() - loss) < 4 * sd
    x = np.diff(np.concatenate([[0], lost.astype(np.int8), [0]]))
    runs = (np.flatnonzero(x == -1) - np.flatnonzero(x == 1)) * dt
    assert abs(runs.mean() - burst_s) < 4 * burst_s / math.sqrt(n_bursts) + dt


def test_time_chain_answers_do_not_depend_on_the_order_of_questions():
    t = np.random.default_rng(0).uniform(0, 5000, 20_000)
    a = TimedGilbertElliott(0.1, 0.3, np.random.default_rng(9))
    b = TimedGilbertElliott(0.1, 0.3, np.random.default_rng(9))
    forward = {x: a.lost_at(x) for x in np.sort(t)}
    shuffled = {x: b.lost_at(x) for x in t}  # back and forth: the path is replayed, not redrawn
    assert forward == shuffled
    c = TimedGilbertElliott(0.1, 0.3, np.random.default_rng(10))
    assert [c.lost_at(x) for x in np.sort(t)] != list(forward.values())  # another seed, another path


def test_time_chain_edge_cases():
    never = TimedGilbertElliott(0.0, 0.3, np.random.default_rng(1))
    assert not any(never.lost_at(x) for x in np.arange(0, 1000, 0.1))
    never.continue_at(1, 10.0)  # a burst carried into a lossless phase ends, then Good for ever
    assert never.lost_at(10.0) and not never.lost_at(1e5)
    with pytest.raises(ValueError, match="burst_s"):
        TimedGilbertElliott(0.1, 0.0, np.random.default_rng(1))
    with pytest.raises(ValueError, match="loss"):
        TimedGilbertElliott(1.0, 0.3, np.random.default_rng(1))
    with pytest.raises(TypeError, match="send time"):
        TimedGilbertElliott(0.1, 0.3, np.random.default_rng(1)).draw(3)


def test_schedule_hands_the_state_over_at_the_boundary_whatever_the_packets():
    def schedule(seed):
        rngs = np.random.default_rng(seed).spawn(4)
        models = [TimedGilbertElliott(0.5, 0.4, rngs[0]), TimedGilbertElliott(0.2, 0.1, rngs[1]),
                  Uniform(0.0, rngs[2]), TimedGilbertElliott(0.3, 0.2, rngs[3])]
        return Schedule([(10.0, models[0]), (20.0, models[1]), (30.0, models[2])], models[3],
                        carries=[True, True, False, True]), models

    dense, m_dense = schedule(5)
    sparse, m_sparse = schedule(5)
    t_dense = np.arange(0, 40, 0.01)
    t_sparse = np.arange(0, 40, 0.37)  # fewer packets; none between some boundaries
    d = {round(x, 6): dense.lost_at(x) for x in t_dense}
    s = {round(x, 6): sparse.lost_at(x) for x in t_sparse}
    common = set(d) & set(s)
    assert len(common) > 20 and all(d[k] == s[k] for k in common)
    # Phase 1 starts at 10 s in phase 0's state at 10 s; the uniform phase breaks the chain.
    assert m_dense[1].state_at(10.0) == m_dense[0].state_at(10.0)
    assert m_dense[1]._origin[0] == 10.0 and m_dense[3]._origin[0] == 0.0

    # A phase without packets still passes the chain on: 5 s, then 25 s, with phase 1 in between.
    def chain(seed):
        rngs = np.random.default_rng(seed).spawn(3)
        models = [TimedGilbertElliott(0.5, 3.0, rngs[0]), TimedGilbertElliott(0.2, 2.0, rngs[1]),
                  TimedGilbertElliott(0.3, 5.0, rngs[2])]
        return Schedule([(10.0, models[0]), (20.0, models[1])], models[2], carries=[True] * 3), models

    every, m_every = chain(7)
    ticks = {x: every.lost_at(x) for x in np.arange(0.0, 40.0, 0.5)}
    skip, m_skip = chain(7)
    assert skip.lost_at(5.0) == ticks[5.0] and skip.lost_at(25.0) == ticks[25.0]
    assert m_skip[1]._origin[0] == 10.0 and m_skip[2]._origin[0] == 20.0
    assert all(skip.lost_at(x) == ticks[x] for x in np.arange(25.5, 40.0, 0.5))


def test_spec_forms_and_messages():
    ok = load_scenario({"network": {"forward": {"loss": GE_TIME}}})
    assert ok.network.forward.loss.burst_s == 0.3
    old = load_scenario({"network": {"forward": {"loss": {"model": "gilbert_elliott", "loss": 0.1, "burst": 3}}}})
    assert "burst_s" not in old.resolved()["network"]["forward"]["loss"]  # old run keys unchanged
    again = load_scenario(ok.resolved())  # a resolved scenario (defaults written out) loads again
    assert again.network.forward.loss == ok.network.forward.loss
    for extra, msg in [({"burst": 3}, "burst (packets) or burst_s"), ({"p": 0.1, "r": 0.5}, "not both"),
                       ({"loss_bad": 0.5}, "loss_good and loss_bad go with p and r"),
                       ({"loss": None}, "burst_s needs loss"), ({"burst_s": 0}, "burst_s")]:
        spec = {**GE_TIME, **extra}
        spec = {k: v for k, v in spec.items() if v is not None}
        with pytest.raises(UserError) as err:
            load_scenario({"network": {"forward": {"loss": spec}}})
        assert msg in str(err.value)


def _built(loss):
    sc = load_scenario({"network": {"forward": {"loss": loss}}})
    return loss_schedule(sc.network.forward, np.random.default_rng(0), sc.path, "network.forward").models[-1]


def test_burst_in_packets_keeps_the_per_packet_chain():
    assert type(_built({"model": "gilbert_elliott", "loss": 0.1, "burst": 3})) is GilbertElliott
    assert type(_built(GE_TIME)) is TimedGilbertElliott


# --- outages and time-stamped traces ---------------------------------------------------------

def test_outages_periodic_as_the_plugin_example_and_listed():
    o = _built({"model": "outages", "intervals": [[0, 0.3]], "period_s": 2.0})
    t = np.arange(0, 10, 0.02)  # 2.3000000000000003 included: edges where the YAML puts them
    assert np.array_equal([o.lost_at(x) for x in t], (np.rint(t * 100).astype(int) % 200) < 30)
    assert o.mean_loss == pytest.approx(0.15)
    late = _built({"model": "outages", "intervals": [[0, 0.25], [0.5, 0.6]], "period_s": 1.0, "start_s": 3.5})
    got = [late.lost_at(x) for x in (0.0, 3.49, 3.5, 3.74, 3.75, 4.0, 4.09, 4.1, 4.5, 4.76)]
    assert got == [False, False, True, True, False, True, True, False, True, False]
    once = _built({"model": "outages", "intervals": [[1.0, 2.0], [5.0, 5.5]]})
    assert [once.lost_at(x) for x in (0.5, 1.0, 1.99, 2.0, 5.2, 7.0, 1001.2)] == [0, 1, 1, 0, 1, 0, 0]
    assert math.isnan(once.mean_loss)
    from simlab import registry

    entry = registry.get("channels", "outages")
    assert entry.nominal_loss(load_scenario({"network": {"forward": {"loss": {
        "model": "outages", "intervals": [[0, 0.3]], "period_s": 2.0}}}}).network.forward.loss) == pytest.approx(0.15)


def test_time_traces_samples_and_intervals(tmp_path):
    samples = tmp_path / "capture.csv"
    samples.write_text("send_s,lost\n0.00,0\n0.02,1\n0.04,1\n0.06,0  # back\n1.00,1\n")
    assert read_time_trace(samples, "samples") == [(0.02, 0.06), (1.0, math.inf)]
    m = LossIntervals(read_time_trace(samples, "samples"))
    assert [m.lost_at(x) for x in (0.01, 0.02, 0.05, 0.06, 0.5, 1.0, 99.0)] == [0, 1, 1, 0, 0, 1, 1]
    looped = LossIntervals(read_time_trace(samples, "samples"), period_s=2.0)  # held to the period's end
    assert [looped.lost_at(x) for x in (1.5, 2.01, 2.03, 2.5, 3.2)] == [1, 0, 1, 0, 1]
    iv = tmp_path / "outages.txt"
    iv.write_text("# start end\n1.5 2.0\n3 3.25\n")
    sc = load_scenario({"network": {"forward": {"loss": {"model": "trace_time", "file": str(iv),
                                                          "format": "intervals"}}}})
    model = loss_schedule(sc.network.forward, np.random.default_rng(0), sc.path, "network.forward").models[-1]
    assert [model.lost_at(x) for x in (1.49, 1.5, 1.99, 2.0, 3.1, 3.25)] == [0, 1, 1, 0, 1, 0]
    for text, form, msg in [("1 0\n", "intervals", "start_s < end_s"), ("0 1\n0.5 2\n", "intervals", "previous"),
                            ("0 2\n", "samples", "not 0 or 1"), ("1 0\n0.5 1\n", "samples", "after the previous"),
                            ("0 1\nx y\n", "samples", "not two numbers"), ("# none\n", "samples", "empty")]:
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ValueError, match=msg):
            read_time_trace(bad, form)
    with pytest.raises(UserError, match="format"):
        load_scenario({"network": {"forward": {"loss": {"model": "trace_time", "file": str(iv)}}}})


# --- every system at a seed meets the same channel --------------------------------------------

def _media(scenario: dict):
    p = simlab.run(load_scenario(scenario)).packets
    return p[p["kind"] == "media"]


def _same_instants(a, b):
    """Packets of ``a`` and ``b`` sent at the same instant (to the nanosecond: 3 x 0.02 s is not
    0.06 s in floating point), and whether each pair met the same fate."""
    a, b = (x.assign(t_ns=np.rint(x["send_s"].to_numpy() * 1e9).astype(np.int64)) for x in (a, b))
    m = a.merge(b, on=["flow", "t_ns"], suffixes=("_a", "_b"))
    return m, (m["lost_a"] == m["lost_b"]).all()


PHASED = {"schedule": [{"until_s": 10, "loss": {"model": "gilbert_elliott", "loss": 0.3, "burst_s": 0.5}},
                       {"until_s": 20, "loss": {"model": "uniform", "p": 0.0}},
                       {"until_s": 30, "loss": {"model": "gilbert_elliott", "loss": 0.05, "burst_s": 0.2}}],
          "loss": {"model": "gilbert_elliott", "loss": 0.2, "burst_s": 0.3}}


@pytest.mark.parametrize("forward", [{"loss": GE_TIME}, PHASED,
                                     {"loss": {"model": "outages", "intervals": [[0.1, 0.45]], "period_s": 1.7}}],
                         ids=["ge_time", "phases", "outages"])
def test_two_packet_rates_meet_the_same_channel(forward):
    def run(fpp):
        return _media({"seed": 4, "duration_s": 40, "system": {"kind": "synthetic"},
                       "packetization": {"frames_per_packet": fpp, "interleave": False},
                       "network": {"forward": forward}})

    a, b = run(1), run(2)  # 12.5 and 6.25 packets a second
    m, same = _same_instants(a, b)
    assert len(m) == len(b) and m["lost_a"].sum() > 5 and same
    # Every packet of the faster one is lost iff the channel built at the same seed is bad then.
    sc = load_scenario({"seed": 4, "network": {"forward": forward}})
    seeds = np.random.SeedSequence(sc.seed)
    _, flow0 = seeds.spawn(2)
    loss_rng = np.random.default_rng(flow0.spawn(4)[0])
    channel = loss_schedule(sc.network.forward, loss_rng, sc.path, "network.forward")
    assert np.array_equal(a["lost"].to_numpy().astype(bool), [channel.lost_at(t) for t in a["send_s"]])


def test_per_packet_chain_does_not_pair():
    def run(fpp):
        return _media({"seed": 4, "duration_s": 40, "system": {"kind": "synthetic"},
                       "packetization": {"frames_per_packet": fpp, "interleave": False},
                       "network": {"forward": {"loss": {"model": "gilbert_elliott", "loss": 0.1, "burst": 3}}}})

    _, same = _same_instants(run(1), run(2))
    assert not same  # documented: per-packet models do not pair across packet rates


@pytest.mark.slow
def test_opus_20_and_60_ms_meet_the_same_channel():
    pytest.importorskip("opuslib")

    def run(frame_ms):
        return _media({"seed": 2, "audio": "package:clip.wav", "duration_s": 12,
                       "system": {"kind": "opus", "frame_ms": frame_ms, "bitrate_bps": 16000},
                       "packetization": {"frames_per_packet": 1, "interleave": False},
                       "network": {"forward": {"loss": {"model": "gilbert_elliott", "loss": 0.2, "burst_s": 0.25}}}})

    a, b = run(20), run(60)
    m, same = _same_instants(a, b)
    assert len(m) >= 0.9 * len(b) and m["lost_a"].sum() > 3 and same


def test_same_seed_same_bytes(tmp_path):
    from simlab.simulation import run_scenario

    iv = tmp_path / "t.txt"
    iv.write_text("0 0\n0.4 1\n0.9 0\n")
    forward = {"loss": GE_TIME, "schedule": [{"until_s": 5, "loss": {"model": "outages", "intervals": [[1, 1.5]]}},
                                             {"until_s": 10, "loss": {"model": "trace_time", "file": str(iv),
                                                                      "format": "samples", "period_s": 1.0}}]}
    digests = []
    for k in range(2):
        out = tmp_path / f"r{k}"
        run_scenario(load_scenario({"seed": 8, "duration_s": 20, "system": {"kind": "synthetic"},
                                    "network": {"forward": forward, "reverse": {"loss": GE_TIME}}}), out)
        digests.append({p.name: p.read_bytes() for p in out.glob("*.csv")})
    assert digests[0] == digests[1] and set(digests[0]) >= {"packets.csv", "frames.csv", "summary.csv"}


def test_batch_same_seed_across_label_pairs_two_packet_rates(tmp_path):
    """Batch's same_seed_across: [label] gives both systems one seed, and with a model in time one
    channel: the 80 ms and 160 ms packetizations lose exactly the packets sent at the same instants."""
    from simlab.batch.expand import expand
    from simlab.batch.experiment import load_experiment

    exp = tmp_path / "pair.yaml"
    exp.write_text(
        "base: {duration_s: 30, system: {kind: synthetic}, packetization: {interleave: false},\n"
        "       network: {forward: {loss: {model: gilbert_elliott, loss: 0.15, burst_s: 0.4}}}}\n"
        "systems:\n"
        "  - {label: fast, spec: {kind: synthetic}, overrides: {packetization.frames_per_packet: 1}}\n"
        "  - {label: slow, spec: {kind: synthetic}, overrides: {packetization.frames_per_packet: 2}}\n"
        "repeats: 2\nseed: 11\nsame_seed_across: [label]\n")
    runs = expand(load_experiment(exp))
    for repeat in (0, 1):
        fast, slow = (next(r for r in runs if r.coords["label"] == lab and r.coords["repeat"] == repeat)
                      for lab in ("fast", "slow"))
        a, b = (simlab.run(r.parse()).packets for r in (fast, slow))
        assert fast.parse().seed == slow.parse().seed
        m, same = _same_instants(a[a["kind"] == "media"], b[b["kind"] == "media"])
        assert len(m) > 100 and m["lost_a"].sum() > 5 and same
