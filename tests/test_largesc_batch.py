"""compute.batch: flows: N LargeSC calls on one set of models, each instant's model calls batched
(simlab.actors.largesc_batch, simlab.sim.device): the same tokens as the calls run unbatched."""
from __future__ import annotations

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("moshi")

from simlab.actors.base import Timer  # noqa: E402
from simlab.errors import UserError  # noqa: E402
from simlab.scenario import load_scenario  # noqa: E402
from simlab.sim.device import BatchDevice  # noqa: E402
from simlab.simulation import simulate  # noqa: E402

BASE = {
    "name": "batch", "seed": 3, "audio": "package:clip.wav", "duration_s": 2.0, "flows": 3,
    "system": {"kind": "largesc", "profile": "small", "quantizers": 8, "controller": "learned", "concealer": "lm"},
    "packetization": {"frames_per_packet": 2, "interleave": True, "redundancy": "next"},
    "network": {"forward": {"loss": {"model": "gilbert_elliott", "loss": 0.3, "burst": 2}}},
    "compute": {"timing": "profile", "profile": "cpu", "threads": 1},
}


def _run(batch: bool, **changes):
    spec = {**BASE, **changes}
    spec["compute"] = {**spec["compute"], "batch": batch}
    r = simulate(load_scenario(spec), None, keep=True)
    return r["tables"], r["summary"], r["facts"]


def _same_run(**changes):
    (pa, fa), sa, _ = _run(False, **changes)
    (pb, fb), sb, facts = _run(True, **changes)
    assert fb.equals(fa) and pb.equals(pa) and sb == sa
    assert facts["system"]["batch_calls"] == changes.get("flows", BASE["flows"])
    return fb


def test_batched_calls_give_the_unbatched_tables():
    fr = _same_run()
    assert fr.tokens_concealed.sum() > 0 and set(fr.flow) == {0, 1, 2}


@pytest.mark.slow
@pytest.mark.parametrize("system", [
    {"kind": "largesc", "profile": "small", "greedy": False},  # sampling: each call its own generator
    {"kind": "largesc", "profile": "small", "controller": "fixed", "quantizers": 6, "redundant": 2,
     "concealer": "repeat"},
    {"kind": "largesc", "profile": "small", "concealer": "drop", "min_confidence": 0.0},
    {"kind": "largesc", "profile": "small", "min_confidence": 0.3},
])
def test_every_setting_batches_to_the_same_tables(system):
    _same_run(system=system, flows=4)


@pytest.mark.slow
def test_sixteen_calls_ten_seconds_the_same_tokens():
    fr = _same_run(flows=16, duration_s=10.0)
    assert len(fr) == 16 * 125


def test_calls_share_one_set_of_models_unbatched_too(monkeypatch):
    """flows: N without batching: the calls share flow 0's models (outputs as with a set each)."""
    from simlab.actors.largesc import LargeSCSystem

    (pa, fa), sa, _ = _run(False, flows=2)
    monkeypatch.setattr(LargeSCSystem, "sibling", lambda self, seed: None)  # a set of models per call, as before
    (pb, fb), sb, _ = _run(False, flows=2)
    assert fa.equals(fb) and pa.equals(pb) and sa == sb


def test_batch_device_serves_each_instant_once():
    dev = BatchDevice(3)
    assert [dev.serve(1.0, 0.5) for _ in range(2)] == [(1.0, 1.5)] * 2
    assert dev.serve(1.2, 0.5) == (1.5, 2.0)  # the next instant's batch queues behind the first
    assert dev.serve(1.0, 0.9) == (1.0, 1.5)  # the third call of the first instant: its batch's slot
    assert dev.busy_s == 1.0 and list(dev._slots) == [1.2]


def test_profile_batch_entries_time_each_frame(tmp_path):
    from simlab.latency import PROFILES_DIR

    prof = yaml.safe_load((PROFILES_DIR / "cpu.yaml").read_text())
    stages = prof["systems"]["largesc"] if "largesc" in prof["systems"] else prof["systems"]["largesc/small"]
    stages["encoder"]["batch"] = {2: {"median_s": 0.009}, 4: {"median_s": 0.013}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(prof))
    (_, fr), _, _ = _run(True, compute={**BASE["compute"], "profile": str(path)})  # 3 calls: interpolated
    assert np.allclose(fr.t_encoder_s, 0.011)
    assert np.allclose(fr.t_decoder_s, stages["decoder"]["median_s"])  # no batch entry: the per-frame one


def test_batch_costs_interpolate_and_scale(tmp_path):
    from simlab.latency import batch_stage_costs

    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"systems": {"largesc": {
        "encoder": {"median_s": 0.01, "batch": {4: {"median_s": 0.02}, 16: {"median_s": 0.05}}},
        "decoder": {"median_s": 0.01}}}}))
    at = lambda b: batch_stage_costs(path, "largesc/small", ("encoder", "decoder"), b)  # noqa: E731
    assert at(4) == {"encoder": 0.02} and at(1) == {"encoder": 0.01}
    assert at(2)["encoder"] == pytest.approx(0.01 + 0.01 / 3) and at(10)["encoder"] == pytest.approx(0.035)
    assert at(32)["encoder"] == pytest.approx(0.1)
    path.write_text(yaml.safe_dump({"systems": {"largesc": {"encoder": {"median_s": 0.01, "batch": {0: 1}}}}}))
    with pytest.raises(UserError, match="encoder.batch.0: expected a batch size"):
        at(2)


def test_measured_batches_share_the_device():
    """Measured: every call's frame costs its batch's time, and the calls' frames of one instant
    start and end together on the shared device."""
    (_, fr), _, _ = _run(True, compute={"timing": "measured", "threads": 1})
    by = fr.groupby("frame")
    for col in ("t_encoder_s", "t_lm_s", "t_decoder_s", "send_s", "playout_s"):
        assert (by[col].nunique() == 1).all(), col
    assert (fr.t_encoder_s > 0).all() and (fr.t_lm_s > 0).all()


@pytest.mark.parametrize("changes, message", [
    ({"network": {**BASE["network"], "start_offsets": {"model": "uniform", "max_s": 0.1}}}, "start together"),
    ({"receiver": {"jitter_buffer": {"kind": "adaptive"}}}, "fixed jitter buffer"),
])
def test_calls_out_of_lockstep_are_refused(changes, message):
    with pytest.raises(Exception, match=message):
        _run(True, **changes)


def test_a_system_that_does_not_batch_is_refused():
    with pytest.raises(UserError, match="does not batch"):
        _run(True, system={"kind": "synthetic"})


def test_a_call_asking_with_other_inputs_raises():
    from simlab.entries.largesc import LargeSCSpec, build_batch
    from simlab.actors.base import BuildContext

    members = build_batch(LargeSCSpec(kind="largesc"), BuildContext(np.random.default_rng(0)), [1, 2])
    group = members[0].group
    frames = {0: np.zeros(1920, np.float32), 1: np.ones(1920, np.float32) * 0.01}
    group.audio_of = lambda b, n: frames[b]
    timer = Timer("profile", None)
    members[0].transmit(0, frames[0], 0.0, timer)
    with pytest.raises(RuntimeError, match="audio is not what its batch encoded"):
        members[1].transmit(0, frames[0], 0.0, timer)
    with pytest.raises(RuntimeError, match="not in lockstep"):
        members[0].transmit(5, frames[0], 0.0, timer)


def test_calibrate_batch_writes_per_batch_entries_a_run_reads(tmp_path):
    from simlab.calibrate import calibrate
    from simlab.entries.largesc import LargeSCSpec
    from simlab.latency import batch_stage_costs

    out = tmp_path / "p.yaml"
    data = calibrate(LargeSCSpec(kind="largesc"), "cpu", out, frames=6, batch=(2,))
    stages = data["systems"]["largesc/small"]
    for stage in ("encoder", "controller", "concealer", "decoder"):
        entry = stages[stage]["batch"][2]
        assert entry["median_s"] > 0 and entry["calls"] == stages[stage]["calls"]  # the same instants
    assert batch_stage_costs(out, "largesc/small", stages, 2) == {s: st["batch"][2]["median_s"]
                                                                  for s, st in stages.items()}
    again = calibrate(LargeSCSpec(kind="largesc"), "cpu", out, frames=6)  # a new measurement keeps batch sizes
    assert again["systems"]["largesc/small"]["encoder"]["batch"][2] == stages["encoder"]["batch"][2]


@pytest.mark.parametrize("args, message", [
    (["--system", "{kind: largesc}", "--batch", "4,x"], "--batch: '4,x' is not a comma-separated list"),
    (["--system", "{kind: largesc}", "--batch", "0"], "--batch: 0 is not in [1, 1024]"),
    (["--system", "{kind: synthetic}", "--batch", "4"], "system synthetic does not batch calls"),
])
def test_calibrate_batch_refuses_bad_sizes_and_systems(tmp_path, capsys, args, message):
    from simlab.cli import main

    assert main(["calibrate", *args, "--frames", "2", "--out", str(tmp_path / "p.yaml")]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_rows_decode_what_separate_calls_decode():
    """Actor level, no simulation: 4 batched calls against 4 systems of their own on the same models,
    each call its own speech and losses: the same tokens and masks, the same audio to float rounding
    (a token decoded differently would move the audio by far more)."""
    from simlab.actors.base import BuildContext, DictWindow, Received
    from simlab.actors.largesc import LargeSCSystem
    from simlab.audio import SHIPPED_CLIP, read_audio
    from simlab.entries.largesc import LargeSCSpec, build_batch

    B, frames, fs = 4, 24, 1920
    clip = read_audio(SHIPPED_CLIP)
    members = build_batch(LargeSCSpec(kind="largesc"), BuildContext(np.random.default_rng(0)), [5, 6, 7, 8])
    group = members[0].group
    alone = [LargeSCSystem(group.models, seed=s) for s in (5, 6, 7, 8)]
    audio = lambda b, n: clip[(n + 9 * b) * fs:(n + 9 * b + 1) * fs]  # noqa: E731
    windows = [DictWindow() for _ in range(B)]
    group.audio_of, group.window_of = audio, lambda b, n: windows[b]
    rng, timer = np.random.default_rng(1), Timer("profile", None)
    worst = 0.0
    for n in range(frames):
        for b in range(B):
            enc, ref = members[b].transmit(n, audio(b, n), 0.2, timer), alone[b].transmit(n, audio(b, n), 0.2, timer)
            assert np.array_equal(enc.payload, ref.payload) and np.array_equal(enc.copies, ref.copies)
            sent = enc.copies > 0
            windows[b].frames[n] = Received(n, sent, sent & (rng.random(8) >= 0.4), enc.payload)
        if n >= 1:
            for b in range(B):
                got, want = members[b].receive(n - 1, windows[b], timer), alone[b].receive(n - 1, windows[b], timer)
                assert got.info == want.info and got.concealed == want.concealed
                worst = max(worst, float(np.abs(got.audio - want.audio).max()))
    assert worst < 1e-4, worst
