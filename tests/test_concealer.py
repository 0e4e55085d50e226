"""Concealers: the LM concealer keeps received tokens, is the identity without loss, is causal
(one frame of look-ahead, the semantic token only), and its per-step logits are the
teacher-forced `lm(codes)` logits; the repeat and drop baselines do what they say."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from simlab.actors.concealer import MISSING, DropConcealer, LMConcealer, RepeatConcealer
from simlab.models.lm_config import build_lm, small_lm_kwargs

CARD = 64  # a small codebook keeps the random-weight LM fast; the layout is Moshi's
N_Q = 8


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    return build_lm(small_lm_kwargs(n_q=N_Q, card=CARD), seed=0)


def _codes(seed: int, frames: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, CARD, size=(frames, N_Q))


def _run(concealer: LMConcealer, received: np.ndarray) -> np.ndarray:
    """Feed frames (-1 = lost) through the concealer; returns the completed frames
    (frame n is complete after step n+1; one extra step with nothing received at the end)."""
    frames = received.shape[0]
    out = np.full_like(received, MISSING)
    concealer.reset()
    for n in range(frames + 1):
        semantic = received[n, 0] if n < frames else MISSING
        acoustic = received[n - 1, 1:] if n > 0 else np.full(N_Q - 1, MISSING)
        sem_hat, ac_hat = concealer.step(semantic, acoustic)
        if n < frames:
            out[n, 0] = sem_hat
        if n > 0:
            out[n - 1, 1:] = ac_hat
    return out


def _lose(codes: np.ndarray, rate: float, seed: int) -> np.ndarray:
    lost = np.random.default_rng(seed).random(codes.shape) < rate
    return np.where(lost, MISSING, codes)


def test_no_loss_is_identity_and_logits_match_teacher_forcing(lm):
    frames = 10
    codes = _codes(0, frames)
    concealer = LMConcealer(lm, record_logits=True)
    full = torch.cat([torch.full((1, 1, frames), MISSING), torch.from_numpy(codes).T[None]], 1)
    with torch.no_grad():
        reference = lm(full).logits[0]  # [dep_q, T, card]; NaN where the delay runs past T
    concealer.reset()
    for n in range(frames):
        sem_hat, ac_hat = concealer.step(codes[n, 0], codes[n - 1, 1:] if n > 0 else np.full(N_Q - 1, MISSING))
        logits = concealer.last_logits
        assert sem_hat == codes[n, 0]
        torch.testing.assert_close(logits[0], reference[0, n], atol=1e-4, rtol=0)
        if n > 0:
            np.testing.assert_array_equal(ac_hat, codes[n - 1, 1:])
            torch.testing.assert_close(logits[1:], reference[1:, n - 1], atol=1e-4, rtol=0)
        else:
            np.testing.assert_array_equal(ac_hat, np.full(N_Q - 1, MISSING))
            assert torch.isnan(logits[1:]).all()  # frame -1 does not exist: not computed
    assert torch.isnan(reference[1:, frames - 1]).all()  # the last frame needs one more step


def test_received_tokens_are_never_changed(lm):
    codes = _codes(1, 12)
    received = _lose(codes, 0.4, seed=2)
    out = _run(LMConcealer(lm), received)
    kept = received != MISSING
    np.testing.assert_array_equal(out[kept], received[kept])
    assert ((out >= 0) & (out < CARD)).all()  # every lost token was filled with a real code


def test_greedy_fill_is_the_argmax_of_the_step_logits(lm):
    concealer = LMConcealer(lm, record_logits=True)
    concealer.step(5, np.full(N_Q - 1, MISSING))
    sem_hat, ac_hat = concealer.step(MISSING, np.array([3, MISSING, 7, MISSING, MISSING, 1, 2]))
    logits = concealer.last_logits
    assert sem_hat == int(logits[0].argmax())
    for k in (2, 4, 5):  # the missing depths (1-based codebook index)
        assert ac_hat[k - 1] == int(logits[k].argmax())


def test_min_confidence_leaves_out_exactly_the_guesses_below_it(lm):
    received = _lose(_codes(14, 12), 0.4, seed=15)
    np.testing.assert_array_equal(_run(LMConcealer(lm, min_confidence=0.0), received), _run(LMConcealer(lm), received))
    ungated = LMConcealer(lm, record_logits=True)
    _run(ungated, received[:1])
    tau = float(torch.softmax(ungated.last_logits[0], -1).max())  # a threshold the LM's scores straddle
    concealer = LMConcealer(lm, record_logits=True, min_confidence=tau)
    left_out = filled = 0
    for n in range(received.shape[0]):
        given = [received[n, 0]] + (received[n - 1, 1:].tolist() if n else [])
        sem_hat, ac_hat = concealer.step(received[n, 0], received[n - 1, 1:] if n else np.full(N_Q - 1, MISSING))
        got = [sem_hat] + (ac_hat.tolist() if n else [])
        for k, token in enumerate(given):
            if token != MISSING:
                assert got[k] == token
                continue
            probs = torch.softmax(concealer.last_logits[k], -1)
            want = int(probs.argmax()) if float(probs.max()) >= tau else MISSING
            assert got[k] == want
            left_out, filled = left_out + (want == MISSING), filled + (want != MISSING)
    assert left_out and filled
    with pytest.raises(ValueError, match="min_confidence"):
        LMConcealer(lm, min_confidence=1.5)


def test_partial_depth_pass_gives_the_same_tokens(lm):
    received = _lose(_codes(12, 10), 0.25, seed=13)
    received[3] = _codes(12, 10)[3]  # one frame with nothing lost
    np.testing.assert_array_equal(_run(LMConcealer(lm), received),
                                  _run(LMConcealer(lm, record_logits=True), received))


def test_causal_with_one_frame_of_semantic_lookahead(lm):
    n = 5
    codes_a, codes_b = _codes(3, 10), _codes(4, 10)
    # identical up to frame n and in frame n+1's semantic token; different afterwards,
    # with a different loss pattern after frame n too
    codes_b[: n + 1] = codes_a[: n + 1]
    codes_b[n + 1, 0] = codes_a[n + 1, 0]
    rec_a = _lose(codes_a, 0.3, seed=5)
    rec_b = _lose(codes_b, 0.6, seed=6)
    rec_b[: n + 1] = rec_a[: n + 1]
    rec_b[n + 1, 0] = rec_a[n + 1, 0]
    out_a = _run(LMConcealer(lm), rec_a)
    out_b = _run(LMConcealer(lm), rec_b)
    np.testing.assert_array_equal(out_a[: n + 1], out_b[: n + 1])
    assert not np.array_equal(out_a[n + 1:], out_b[n + 1:])


def test_sampling_is_reproducible_from_the_generator(lm):
    received = _lose(_codes(7, 8), 0.5, seed=8)
    runs = [_run(LMConcealer(lm, greedy=False, generator=torch.Generator().manual_seed(s)), received)
            for s in (11, 11, 12)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    with pytest.raises(ValueError, match="Generator"):
        LMConcealer(lm, greedy=False)


def test_concealers_sharing_one_lm_do_not_interfere(lm):
    rec_a = _lose(_codes(9, 6), 0.3, seed=10)
    rec_b = _lose(_codes(10, 6), 0.3, seed=11)
    alone_a, alone_b = _run(LMConcealer(lm), rec_a), _run(LMConcealer(lm), rec_b)
    first, second = LMConcealer(lm), LMConcealer(lm)
    out_a, out_b = np.full_like(rec_a, MISSING), np.full_like(rec_b, MISSING)
    for n in range(7):
        for conc, rec, out in ((first, rec_a, out_a), (second, rec_b, out_b)):
            sem, ac = conc.step(rec[n, 0] if n < 6 else MISSING,
                                rec[n - 1, 1:] if n > 0 else np.full(N_Q - 1, MISSING))
            if n < 6:
                out[n, 0] = sem
            if n > 0:
                out[n - 1, 1:] = ac
    np.testing.assert_array_equal(out_a, alone_a)
    np.testing.assert_array_equal(out_b, alone_b)
    assert not lm.is_streaming


def test_lm_concealer_rejects_bad_input(lm):
    concealer = LMConcealer(lm)
    with pytest.raises(ValueError, match="7 tokens"):
        concealer.step(1, np.zeros(8, dtype=int))
    with pytest.raises(ValueError, match="outside"):
        concealer.step(CARD, np.zeros(7, dtype=int))
    wrong = small_lm_kwargs(n_q=4, card=16)
    wrong["delays"] = [0] * 5
    with pytest.raises(ValueError, match="layout"):
        LMConcealer(build_lm(wrong))
    with pytest.raises(ValueError, match="training mode"):
        LMConcealer(build_lm(small_lm_kwargs(n_q=4, card=16)).train())


def test_lookahead_frames():
    assert LMConcealer.lookahead_frames == 1
    assert RepeatConcealer.lookahead_frames == 0 and DropConcealer.lookahead_frames == 0


def test_repeat_concealer():
    rep = RepeatConcealer()
    first = np.array([-1, 5, 6, 7, -1, -1, -1, -1])
    np.testing.assert_array_equal(rep.conceal(first), first)  # nothing to repeat yet
    second = np.array([1, -1, 2, -1, 3, -1, -1, -1])
    np.testing.assert_array_equal(rep.conceal(second), [1, 5, 2, 7, 3, -1, -1, -1])
    # repeats the concealed output, not only what was received
    np.testing.assert_array_equal(rep.conceal(np.full(8, -1)), [1, 5, 2, 7, 3, -1, -1, -1])
    rep.reset()
    np.testing.assert_array_equal(rep.conceal(np.full(8, -1)), np.full(8, -1))
    with pytest.raises(ValueError, match="8 integers"):
        rep.conceal(np.zeros(7, dtype=int))


def test_drop_concealer():
    drop = DropConcealer()
    row = np.array([4, -1, 3, -1, -1, 0, -1, 2])
    out = drop.conceal(row)
    np.testing.assert_array_equal(out, row)
    assert out is not row
    with pytest.raises(ValueError, match="below -1"):
        drop.conceal(np.array([-2, 0, 0, 0, 0, 0, 0, 0]))


def test_lm_configs():
    from moshi.models import loaders

    from simlab.models.lm_config import MOSHIKO_LM_KWARGS

    assert MOSHIKO_LM_KWARGS == loaders._lm_kwargs  # an exact copy of Kyutai's configuration
    kw = small_lm_kwargs()
    assert (kw["n_q"], kw["dep_q"], kw["card"]) == (8, 8, 2048)
    assert kw["delays"] == [0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert (kw["dim"], kw["num_layers"], kw["depformer_dim"], kw["depformer_num_layers"]) == (256, 4, 128, 2)
    with pytest.raises(ValueError, match="n_q"):
        small_lm_kwargs(n_q=1)
    before = torch.random.get_rng_state()
    a, b = build_lm(small_lm_kwargs(n_q=2, card=16), seed=1), build_lm(small_lm_kwargs(n_q=2, card=16), seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not a.training


def test_kv_caches_sized_to_the_call_give_the_same_steps(lm):
    """limit_context: caches for the call's steps instead of the LM's whole context, the same
    tokens and (to float rounding) the same logits; the size survives reset; a started stream refuses."""
    rng = np.random.default_rng(7)
    codes = _codes(7, 40)
    received = np.where(rng.random(codes.shape) < 0.3, MISSING, codes)
    full = LMConcealer(lm, record_logits=True)
    short = LMConcealer(lm, record_logits=True)
    short.limit_context(42)
    assert _cache_steps(short) == 42 < _cache_steps(full) == lm.transformer.layers[0].self_attn.context
    for n in range(41):
        semantic = received[n, 0] if n < 40 else MISSING
        acoustic = received[n - 1, 1:] if n > 0 else np.full(N_Q - 1, MISSING)
        a, b = full.step(semantic, acoustic), short.step(semantic, acoustic)
        assert a[0] == b[0] and np.array_equal(a[1], b[1])
        torch.testing.assert_close(full.last_logits, short.last_logits, rtol=1e-5, atol=1e-5, equal_nan=True)
    with pytest.raises(RuntimeError, match="started"):
        short.limit_context(10)
    short.reset()
    assert _cache_steps(short) == 42


def _cache_steps(concealer) -> int:
    """The longest KV cache in a concealer's state, in steps ([2, B, heads, steps, dim] tensors)."""
    return max(v.shape[-2] for v in _tensors(concealer._state) if v.dim() == 5)


def _tensors(state) -> list:
    """Every tensor in a moshi streaming state (nested dataclasses, dicts)."""
    import dataclasses

    out, todo = [], [state]
    while todo:
        x = todo.pop()
        if isinstance(x, torch.Tensor):
            out.append(x)
        elif isinstance(x, dict):
            todo += list(x.values())
        elif isinstance(x, (list, tuple)):
            todo += list(x)
        elif dataclasses.is_dataclass(x):
            todo += [getattr(x, f.name) for f in dataclasses.fields(x)]
        elif hasattr(x, "__dict__"):
            todo += list(vars(x).values())
    return out
