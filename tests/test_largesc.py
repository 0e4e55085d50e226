"""The largesc system through the System interface, driven with a fake Window."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("moshi")

from simlab.actors.base import Received, Timer  # noqa: E402
from simlab.actors.concealer import LMConcealer  # noqa: E402
from simlab.actors.largesc import LargeSCSystem  # noqa: E402
from simlab.actors.mimi import MimiCodec  # noqa: E402
from simlab.audio import SHIPPED_CLIP, read_audio  # noqa: E402
from simlab.actors.base import DictWindow  # noqa: E402
from simlab.models.profiles import load_profile  # noqa: E402

FRAMES = 6


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return load_profile("small", device="cpu", seed=0)


@pytest.fixture(scope="module")
def untrained_models(tmp_path_factory):
    """The small profile as it is without shipped weights: random, and flagged."""
    from simlab.models import profiles

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(profiles, "SMALL_DIR", tmp_path_factory.mktemp("no-weights"))
        return load_profile("small", device="cpu", seed=0)


@pytest.fixture(scope="module")
def audio():
    x = read_audio(SHIPPED_CLIP)
    return [x[i * 1920:(i + 1) * 1920] for i in range(25, 25 + FRAMES)]


def _transmit(system, audio, p_hat=0.1):
    timer = Timer(mode="profile", profile=None)
    return [system.transmit(i, a, p_hat, timer) for i, a in enumerate(audio)]


def _window(encoded, loss: float, seed: int = 0, nothing: tuple[int, ...] = ()):
    rng = np.random.default_rng(seed)
    received = {}
    for e in encoded:
        sent = e.copies > 0
        # each copy is lost independently: a doubled token survives if either copy does
        kept = (rng.random(8) >= loss) | ((e.copies == 2) & (rng.random(8) >= loss))
        received[e.frame] = Received(e.frame, sent, sent & kept, np.asarray(e.payload))
    for f in nothing:
        received.pop(f, None)
    return DictWindow(received)


def _receive_spying(system, window, n=FRAMES):
    """Receive every frame, recording the token rows handed to the decoder."""
    rows, decoded = [], []
    decode = system.codec.decode

    def spy(tokens):
        rows.append(np.array(tokens))
        return decode(tokens)

    system.codec.decode = spy
    timer = Timer(mode="measured")
    stage_times = []
    for i in range(n):
        decoded.append(system.receive(i, window, timer))
        stage_times.append(timer.take())
    return rows, decoded, stage_times


def _check_invariants(rows, decoded, window):
    for i, (row, d) in enumerate(zip(rows, decoded)):
        rx = window.get(i)
        truth = np.asarray(rx.payload) if rx is not None else None
        sent = rx.sent if rx is not None else np.ones(8, bool)
        arrived = rx.arrived if rx is not None else np.zeros(8, bool)
        assert d.audio.shape == (1920,) and d.audio.dtype == np.float32 and np.isfinite(d.audio).all()
        np.testing.assert_array_equal(row[arrived], truth[arrived] if truth is not None else [])  # unchanged
        assert (row[~sent] == -1).all(), f"frame {i}: unsent tokens were invented: {row}"
        filled = sent & ~arrived & (row != -1)
        assert d.concealed == filled.sum()
        assert d.info["concealed_mask"] == "".join("1" if f else "0" for f in filled)
        hit = filled & (row == truth) if truth is not None else np.zeros(8, bool)
        assert d.info["conceal_hit_mask"] == "".join("1" if h else "0" for h in hit)
        assert set(d.info) == {"concealed_mask", "conceal_hit_mask"}


def test_transmit_fixed_mask_and_bit_accounting(models, audio):
    system = LargeSCSystem(models, quantizers=5, controller="fixed", redundant=2, concealer="drop")
    encoded = _transmit(system, audio)
    codec = MimiCodec(models.mimi)
    for i, e in enumerate(encoded):
        assert e.frame == i and e.side_bits == 8
        np.testing.assert_array_equal(e.unit_bits, np.full(8, 11))
        np.testing.assert_array_equal(e.copies, [2, 2, 1, 1, 1, 0, 0, 0])
        assert e.copies.dtype == np.int8
        assert e.info == {"mask": "22111000", "quantizers": 5}
        np.testing.assert_array_equal(e.payload, codec.encode(audio[i])[0])  # Mimi's own tokens


def test_learned_controller_masks_are_prefix_shaped_and_flagged_untrained(untrained_models, audio):
    system = LargeSCSystem(untrained_models, quantizers=12, controller="learned", concealer="drop")
    for e in _transmit(system, audio, p_hat=0.3):
        m = e.copies.astype(int)
        assert (np.diff(m) <= 0).all() and m.max() <= 2 and m.sum() <= 16
        assert e.info["mask"] == "".join(map(str, m)) and e.info["quantizers"] == 12
    d = system.describe()
    assert d["controller_trained"] is False and any("UNTRAINED" in w for w in d["warnings"])
    assert d["system"] == "largesc" and d["params_controller"] > 0 and "params_lm" in d


@pytest.mark.parametrize("concealer", ["lm", "repeat", "drop"])
def test_lossless_conceals_nothing_and_decodes_what_was_sent(models, audio, concealer):
    system = LargeSCSystem(models, quantizers=6, controller="fixed", redundant=1, concealer=concealer)
    encoded = _transmit(system, audio)
    window = _window(encoded, loss=0.0)
    rows, decoded, times = _receive_spying(system, window)
    _check_invariants(rows, decoded, window)
    assert all(d.concealed == 0 and d.info["concealed_mask"] == "00000000" for d in decoded)
    plain = MimiCodec(models.mimi)
    for e, d in zip(encoded, decoded):
        want = plain.decode(np.where(e.copies > 0, e.payload, -1))
        np.testing.assert_allclose(d.audio, want, atol=1e-6)
    # The LM is stepped (and timed) every frame to keep its context; the others only on loss.
    assert all(("concealer" in t) == (concealer == "lm") for t in times)
    assert all("decoder" in t for t in times)


@pytest.mark.parametrize("concealer", ["lm", "repeat", "drop"])
def test_lossy_keeps_received_tokens_and_never_invents_unsent_ones(models, audio, concealer):
    system = LargeSCSystem(models, quantizers=6, controller="fixed", redundant=2, concealer=concealer)
    window = _window(_transmit(system, audio), loss=0.4, seed=1, nothing=(3,))
    rows, decoded, _ = _receive_spying(system, window)
    _check_invariants(rows, decoded, window)
    lost = sum(int((window.get(i).sent & ~window.get(i).arrived).sum()) if window.get(i) else 8
               for i in range(FRAMES))
    assert lost > 0
    total = sum(d.concealed for d in decoded)
    if concealer == "lm":
        assert total == lost  # the LM fills every lost token
        assert decoded[3].concealed == 8 and decoded[3].info["conceal_hit_mask"] == "00000000"
    elif concealer == "drop":
        assert total == 0
    else:
        assert 0 < total <= lost


def test_min_confidence_one_leaves_every_lost_token_out(models, audio):
    """No guess of the LM reaches probability 1, so the gated LM concealer fills nothing (as
    drop) while still stepping the LM to keep its context."""
    system = LargeSCSystem(models, quantizers=6, controller="fixed", redundant=2, concealer="lm", min_confidence=1.0)
    window = _window(_transmit(system, audio), loss=0.4, seed=1, nothing=(3,))
    rows, decoded, times = _receive_spying(system, window)
    _check_invariants(rows, decoded, window)
    assert sum(d.concealed for d in decoded) == 0 and all("concealer" in t for t in times)
    assert system.describe()["min_confidence"] == 1.0


def test_lm_fills_follow_moshis_one_step_acoustic_delay(models, audio):
    """The system's fills equal a stand-alone LMConcealer fed step k = (x_{k,0}, x_{k-1,1..})."""
    system = LargeSCSystem(models, quantizers=8, controller="fixed", redundant=0, concealer="lm")
    window = _window(_transmit(system, audio), loss=0.3, seed=2)
    rows, _, _ = _receive_spying(system, window)
    ref = LMConcealer(models.lm)
    masked = [window.get(k).masked() for k in range(FRAMES)] + [np.full(8, -1)]
    sem_hat, ac_hat = {}, {}
    for k in range(FRAMES + 1):
        sem, ac = ref.step(int(masked[k][0]), masked[k - 1][1:] if k else np.full(7, -1))
        sem_hat[k] = sem
        if k:
            ac_hat[k - 1] = ac
    for i, row in enumerate(rows):
        np.testing.assert_array_equal(row, np.r_[sem_hat[i], ac_hat[i]])
    assert system.lookahead_frames == 1


def test_repeat_fills_with_the_previous_frame(models, audio):
    system = LargeSCSystem(models, quantizers=8, controller="fixed", concealer="repeat")
    encoded = _transmit(system, audio)
    window = _window(encoded, loss=0.0)
    window.frames[2].arrived[4] = False
    rows, decoded, _ = _receive_spying(system, window, n=3)
    assert rows[2][4] == encoded[1].payload[4] and decoded[2].concealed == 1
    assert system.lookahead_frames == 0


def test_out_of_order_release_and_bad_settings_are_refused(models, audio):
    system = LargeSCSystem(models, quantizers=8, controller="fixed", concealer="lm")
    window = _window(_transmit(system, audio[:3]), loss=0.0)
    timer = Timer()
    system.receive(1, window, timer)
    with pytest.raises(ValueError, match="out of order"):
        system.receive(0, window, timer)
    with pytest.raises(ValueError, match="quantizers"):
        LargeSCSystem(models, quantizers=9, controller="fixed")
    with pytest.raises(ValueError, match="controller"):
        LargeSCSystem(models, controller="oracle")
    with pytest.raises(ValueError, match="concealer"):
        LargeSCSystem(models, concealer="whisper")
    with pytest.raises(ValueError, match="audio"):
        system.transmit(0, None, 0.0, timer)


@pytest.mark.slow
def test_bench_actors_reports_every_actor():
    from simlab.actors.largesc import bench_actors

    rows = bench_actors(frames=2, warmup=1, devices=("cpu",))
    seen = {(r["actor"], r["config"]) for r in rows}
    assert {("mimi.encode", "full"), ("mimi.decode", "full"), ("mimi.decode", "full, torch convtr"),
            ("mimi.encode", "small"), ("mimi.decode", "small"), ("controller.decide", "paper"),
            ("concealer.step", "small")} <= seen
    assert all(r["ms_per_frame"] > 0 and r["device"] == "cpu" and r["frames"] == 2 for r in rows)


@pytest.mark.parametrize("controller,concealer", [("learned", "lm"), ("fixed", "drop"), ("fixed", "repeat")])
def test_a_profile_charges_the_models_not_their_stand_ins(models, audio, controller, concealer):
    """A latency profile times the controller network and the LM: the ablations' fixed controller
    and drop/repeat concealers are charged nothing (they used to be charged the LM's step)."""
    profile = {"encoder": 0.01, "controller": 0.002, "concealer": 0.03, "decoder": 0.005}
    system = LargeSCSystem(models, quantizers=8, controller=controller, concealer=concealer)
    timer = Timer(mode="profile", profile=profile)
    encoded = [system.transmit(i, a, 0.2, timer) for i, a in enumerate(audio)]
    tx = timer.take()
    window = _window(encoded, loss=0.5, seed=3)
    for i in range(FRAMES):
        system.receive(i, window, timer)
    rx = timer.take()
    assert tx["encoder"] == pytest.approx(FRAMES * 0.01)
    assert tx["controller"] == pytest.approx(FRAMES * 0.002 if controller == "learned" else 0.0)
    assert rx["decoder"] == pytest.approx(FRAMES * 0.005)
    if concealer == "lm":
        assert rx["concealer"] > 0
    else:
        assert rx.get("concealer", 0.0) == 0.0 and timer.free_stages == {"concealer", "controller"}
