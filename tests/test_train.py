"""Training recipes (`simlab.train`): losses and erasures against their definitions, each
recipe for a few steps on a tiny slice of the real speech with resume, and the shipped small
profile against its recorded reference outputs."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from simlab.errors import UserError
from simlab.train import data as train_data
from simlab.train.config import load_config

HAVE_SPEECH = train_data.speech_available("train")
needs_speech = pytest.mark.skipif(not HAVE_SPEECH, reason="real speech ../shared/speech/train is absent "
                                  "(LibriSpeech, only beside the development checkout)")
SMALL = Path(__file__).resolve().parents[1] / "simlab" / "models" / "small"


# -- definitions -----------------------------------------------------------------------------
def test_weighted_token_ce_is_eq19_over_masked_positions():
    from simlab.train.losses import weighted_token_ce

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, generator=g)
    targets = torch.randint(0, 5, (2, 3, 4), generator=g)
    mask = torch.rand(2, 3, 4, generator=g) > 0.4
    lam = torch.tensor([2.0, 1.0, 0.5])
    ce = torch.nn.functional.cross_entropy(logits.permute(0, 3, 1, 2), targets, reduction="none")
    frames = []
    for b in range(2):
        for t in range(4):
            ks = [k for k in range(3) if mask[b, k, t]]
            if ks:
                frames.append(sum(lam[k] * ce[b, k, t] for k in ks) / sum(lam[k] for k in ks))
    expected = torch.stack(frames).mean()
    assert torch.allclose(weighted_token_ce(logits, targets, mask, lam), expected, atol=1e-6)


def test_stft_and_mel_losses_vanish_only_on_identity():
    from simlab.train.losses import MelLoss, MultiResolutionSTFTLoss

    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4800, generator=g) * 0.1
    stft, mel = MultiResolutionSTFTLoss([(512, 128), (256, 64)]), MelLoss(24000, 512, 128, 40)
    assert stft(x, x).item() == pytest.approx(0.0, abs=1e-6) and mel(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y = x + 0.05 * torch.randn(2, 4800, generator=g)
    assert stft(y, x).item() > 0.05 and mel(y, x).item() > 0.01


def test_arrival_probability_is_independent_copies_with_true_marginal_slopes():
    from simlab.train.controller import arrival_probability

    for p in (0.0, 0.1, 0.3):
        for s in (0, 1):
            for c in (0, 1):
                got = arrival_probability(torch.tensor(float(s)), torch.tensor(float(c)), torch.tensor(p)).item()
                assert got == pytest.approx(1 - p ** (s + c) if s + c else 0.0, abs=1e-7)
        # slopes at the vertices: a first copy is worth 1 - p, a second one p (1 - p)
        # (at m = (1, 0): removing the only copy vs adding a second)
        m_s, m_c = torch.tensor(1.0, requires_grad=True), torch.tensor(0.0, requires_grad=True)
        arrival_probability(m_s, m_c, torch.tensor(p)).backward()
        assert m_c.grad.item() == pytest.approx(p * (1 - p)) and m_s.grad.item() == pytest.approx(1 - p)
        m_s, m_c = torch.tensor(0.0, requires_grad=True), torch.tensor(0.0, requires_grad=True)
        arrival_probability(m_s, m_c, torch.tensor(p)).backward()
        assert m_s.grad.item() == pytest.approx(1 - p) and m_c.grad.item() == pytest.approx(1 - p)


def test_copy_masks_are_eq5_forward_with_ramps_centred_on_the_thresholds():
    from simlab.actors.controller import hard_mask
    from simlab.train.controller import copy_masks

    g = torch.Generator().manual_seed(3)
    i_s, i_c = torch.rand(4, 20, generator=g), torch.rand(4, 20, generator=g)
    L = torch.tensor([1.0, 5.0, 8.0, 16.0])[:, None]
    m_s, m_c = copy_masks(i_s, i_c, L, 8, tau=2.0)
    assert torch.equal((m_s + m_c).detach().long(), hard_mask(i_s, i_c, L, 8))
    # the gradient is symmetric about each hard threshold L·I = j (largest right at it)
    grads = []
    for x in (3.0 - 0.3, 3.0, 3.0 + 0.3):
        i = torch.tensor([x / 8], requires_grad=True)
        copy_masks(i, torch.zeros(1), 8, 8, tau=2.0)[0][0, 2].backward()  # token j = 3
        grads.append(i.grad.item())
    assert grads[0] == pytest.approx(grads[2], rel=1e-6) and grads[1] > grads[0] > 0


def _eq20_toy(p: float, ce_tokens: torch.Tensor, gamma: float, m_s: float, m_c: float):
    """One frame of 8 tokens with the given CE each (logits over 4 classes): eq. 20 and its
    gradient with respect to each token's two copies."""
    from simlab.train.controller import arrival_probability, eq20_loss

    K, card = len(ce_tokens), 4
    # logits [0, b, b, b] give CE = log(1 + 3 e^b) on target 0: solve for b
    b = torch.log((torch.exp(ce_tokens) - 1) / 3)
    logits = torch.stack([torch.zeros(K), b, b, b], dim=-1).view(1, K, 1, card)
    ms = torch.full((1, K, 1), m_s, requires_grad=True)
    mc = torch.full((1, K, 1), m_c, requires_grad=True)
    prob = arrival_probability(ms, mc, torch.tensor(p))
    arrived_st = torch.zeros_like(prob) + (prob - prob.detach())  # forward: nothing arrived
    out = eq20_loss(logits, torch.zeros(1, K, 1, dtype=torch.long), torch.ones(1, K, 1, dtype=torch.bool),
                    arrived_st, ms + mc, torch.ones(K), gamma)
    out.loss.backward()
    return out, ms.grad[0, :, 0], mc.grad[0, :, 0]


def test_eq20_counts_recon_in_tokens_worth_and_prices_copies_by_their_marginal_value():
    ce = torch.tensor([3.0, 3.0, 1.0, 1.0, 3.0, 3.0, 0.5, 0.5])
    out, g_s, g_c = _eq20_toy(0.2, ce, gamma=0.16, m_s=1.0, m_c=0.0)
    assert out.unit.item() == pytest.approx(ce.mean().item(), rel=1e-4)
    assert out.recon.item() == pytest.approx(ce.mean().item(), rel=1e-4)  # eq. 19: per-frame mean CE
    assert out.loss.item() == pytest.approx(len(ce) + 0.16 * 8, rel=1e-4)  # every token lost: K tokens' worth
    # d loss / d m_c = γ − p(1 − p) CE_k / c̄: a second copy pays only for expensive tokens
    expected = 0.16 - 0.2 * 0.8 * ce / ce.mean()
    assert torch.allclose(g_c, expected, atol=1e-5)
    assert (g_c[ce == 3.0] < 0).all() and (g_c[ce <= 1.0] > 0).all()
    # and with nothing sent the first copy is worth (1 − p) CE_k / c̄
    _, g_s, _ = _eq20_toy(0.2, ce, gamma=0.16, m_s=0.0, m_c=0.0)
    assert torch.allclose(g_s, 0.16 - 0.8 * ce / ce.mean(), atol=1e-5)


def _descend(p: float, ce_tail: float, steps: int = 200) -> tuple[float, float]:
    """Free importances (I_s starts high, I_c low) of 8 frames trained on eq. 20 at a fixed
    loss rate p, L = 8: 5 tokens with CE log 4, the last 3 with CE ``ce_tail``. Returns the
    mean tokens sent and doubled per frame."""
    from simlab.train.controller import arrival_probability, copy_masks, eq20_loss

    K, T, card = 8, 8, 4
    logits = torch.zeros(1, K, T, card)
    logits[0, 5:, :, 0] = math.log(3 / (math.exp(ce_tail) - 1)) if ce_tail > 0 else 50.0
    targets = torch.zeros(1, K, T, dtype=torch.long)
    x = torch.tensor([[2.0] * T, [-2.0] * T], requires_grad=True)
    opt = torch.optim.Adam([x], lr=0.05)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        m_s, m_c = (m.permute(0, 2, 1) for m in copy_masks(torch.sigmoid(x[:1]), torch.sigmoid(x[1:]), 8, K, 2.0))
        u = torch.rand(2, 1, K, T, generator=g)
        arrived = (m_s.detach().bool() & (u[0] >= p)) | (m_c.detach().bool() & (u[1] >= p))
        prob = arrival_probability(m_s, m_c, torch.tensor(p))
        out = eq20_loss(logits, targets, torch.ones(1, K, T, dtype=torch.bool), arrived.float() + prob - prob.detach(),
                        m_s + m_c, torch.ones(K), gamma=0.16)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    m = (m_s + m_c).detach()[0]
    return (m >= 1).sum(0).float().mean().item(), (m == 2).sum(0).float().mean().item()


def test_eq20_descent_drops_cheap_tokens_and_doubles_as_loss_rises():
    """The mechanism the recipe relies on, without an LM: tokens the LM would predict (CE ~ 0)
    are dropped, redundancy appears once p (1 − p) CE / c̄ exceeds γ and not before."""
    sent_cheap, doubled_cheap = _descend(0.0, ce_tail=0.0)
    sent_dear, _ = _descend(0.0, ce_tail=math.log(4))
    assert 5 <= sent_cheap <= 6 and doubled_cheap == 0 and sent_dear == 7  # 8 needs I_s = 1 exactly
    assert _descend(0.05, ce_tail=math.log(4))[1] == 0
    assert _descend(0.4, ce_tail=math.log(4))[1] == 7


def test_erasures_follow_the_channel_rates():
    from simlab.train.erasures import draw_lost

    spec = {"kinds": {"uniform": 1.0}, "p_min": 0.25, "p_max": 0.25, "burst": 3, "frames_per_packet": 2}
    lost = draw_lost(spec, 64, 8, 200, np.random.default_rng(0))
    assert lost.mean() == pytest.approx(0.25, abs=0.02)
    assert (lost == lost[:, :1]).all()  # a lost packet takes every token of its frames
    assert (lost[:, 0, 0::2] == lost[:, 0, 1::2]).all()  # two frames per packet
    spec["kinds"] = {"burst": 1.0}
    burst = draw_lost(spec, 64, 8, 200, np.random.default_rng(0))[:, 0, ::2]
    runs = [len(r) for row in burst for r in "".join("1" if v else "0" for v in row).split("0") if r]
    assert burst.mean() == pytest.approx(0.25, abs=0.04) and np.mean(runs) == pytest.approx(3, rel=0.2)
    a = draw_lost({**spec, "kinds": {"token": 1.0}}, 4, 8, 50, np.random.default_rng(5))
    b = draw_lost({**spec, "kinds": {"token": 1.0}}, 4, 8, 50, np.random.default_rng(5))
    assert (a == b).all() and not (a == a[:, :1]).all()


def test_config_refuses_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(UserError, match="unknown key stepz"):
        load_config("codec", overrides={"stepz": 3})
    bad = tmp_path / "c.yaml"
    bad.write_text("loss_weights: {mell: 1}\n")
    with pytest.raises(UserError, match="loss_weights.mell"):
        load_config("codec", bad)
    from simlab.train.codec import check

    with pytest.raises(UserError, match="lr=-1"):
        check(load_config("codec", overrides={"lr": -1}))


def test_absent_speech_is_a_clear_user_error(monkeypatch):
    monkeypatch.setattr(train_data, "shared_speech", lambda sub="": None)
    with pytest.raises(UserError, match="real speech not found"):
        train_data.list_files("train")
    assert train_data.speech_available("train") is False


def test_cli_parses_recipes_and_overrides():
    import argparse

    from simlab.train.cli import add_parser
    from simlab.train.overrides import parse_overrides

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "lora", "--set", "rank=4", "--set", "erasures.burst=2", "--resume"])
    assert args.recipe == "lora" and args.resume and callable(args.fn)
    assert parse_overrides(args.set) == {"rank": 4, "erasures": {"burst": 2}}
    with pytest.raises(UserError, match="KEY=VALUE"):
        parse_overrides(["rank"])


# -- recipes on a tiny slice -----------------------------------------------------------------
def _tiny(recipe: str, tmp: Path, **over) -> dict:
    base = {"threads": 1, "device": "cpu", "max_minutes": 0.15, "checkpoint_every": 1}
    if recipe != "codec":
        base.update(frames=8, batch=2, cache_dir=str(tmp / "cache"))
    return load_config(recipe, overrides={**base, **over})


def _log_steps(folder: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (folder / "log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """codec -> lm -> lora -> controller (+ ship), 2 steps each, each then resumed to 3."""
    from simlab.train.codec import train_codec
    from simlab.train.conceal import train_lora
    from simlab.train.controller import train_controller
    from simlab.train.lm import train_lm

    tmp = tmp_path_factory.mktemp("train")
    out = {"tmp": tmp}
    codec = _tiny("codec", tmp, steps=2, batch=2, segment_frames=4, out_dir=str(tmp / "codec"))
    train_codec(codec)
    out["codec"] = train_codec({**codec, "steps": 3}, resume=True)
    lm = _tiny("lm", tmp, steps=2, codec=str(out["codec"]), out_dir=str(tmp / "lm"), stage_dir=str(tmp / "stage"))
    train_lm(lm)
    out["lm"] = train_lm({**lm, "steps": 3}, resume=True)
    lora = _tiny("lora", tmp, steps=2, rank=2, profile=str(tmp / "stage"), out_dir=str(tmp / "lora"))
    train_lora(lora)
    out["lora"] = train_lora({**lora, "steps": 3}, resume=True)
    ctrl = _tiny("controller", tmp, steps=2, profile=str(tmp / "stage"), lora=str(out["lora"]),
                 out_dir=str(tmp / "controller"), ship_dir=str(tmp / "ship"))
    train_controller(ctrl)
    out["controller"] = train_controller({**ctrl, "steps": 3}, resume=True)
    return out


@needs_speech
@pytest.mark.slow
def test_codec_resume_equals_an_uninterrupted_run(tmp_path):
    from simlab.models.checkpoint import load_state_dict
    from simlab.train.codec import train_codec

    cfg = _tiny("codec", tmp_path, steps=3, batch=2, segment_frames=4, out_dir=str(tmp_path / "a"))
    a = load_state_dict(train_codec(cfg))
    train_codec({**cfg, "steps": 2, "out_dir": str(tmp_path / "b")})
    b = load_state_dict(train_codec({**cfg, "out_dir": str(tmp_path / "b")}, resume=True))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed training diverged from the uninterrupted run"
    assert _log_steps(tmp_path / "b") == [0, 1, 2]


@needs_speech
@pytest.mark.slow
def test_each_recipe_trains_and_resumes(chain):
    tmp = chain["tmp"]
    for name in ("codec", "lm", "lora", "controller"):
        assert _log_steps(tmp / name) == [0, 1, 2], name
        logged = [json.loads(line)["loss"] for line in (tmp / name / "log.jsonl").read_text().splitlines()]
        assert all(math.isfinite(v) for v in logged), name
    assert (chain["lora"] / "adapter_model.safetensors").is_file()
    assert len(list((tmp / "cache").glob("tokens-*.npz"))) == 1  # encoded once, reused by every LM recipe


@needs_speech
@pytest.mark.slow
def test_lora_resume_with_burst_erasures_equals_an_uninterrupted_run(chain, tmp_path):
    from simlab.models.checkpoint import load_state_dict
    from simlab.train.conceal import train_lora

    cfg = _tiny("lora", tmp_path, steps=3, rank=2, profile=str(chain["tmp"] / "stage"), out_dir=str(tmp_path / "a"),
                cache_dir=str(chain["tmp"] / "cache"), erasures={"kinds": {"burst": 1.0, "token": 0.0, "uniform": 0.0}})
    a = load_state_dict(train_lora(cfg) / "adapter_model.safetensors")
    train_lora({**cfg, "steps": 2, "out_dir": str(tmp_path / "b")})
    saved = torch.load(tmp_path / "b" / "train_state.pt", weights_only=True)["modules"]["lora"]
    assert saved and all("lora_" in k for k in saved)  # the frozen base LM stays out of checkpoints
    b = load_state_dict(train_lora({**cfg, "out_dir": str(tmp_path / "b")}, resume=True) / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "resumed lora run diverged"
    assert _log_steps(tmp_path / "b") == [0, 1, 2]


@needs_speech
@pytest.mark.slow
def test_lm_shifts_tokenize_each_utterance_on_another_frame_grid(chain, tmp_path):
    from simlab.train.lm import load_codec, train_lm
    from simlab.train.tokens import cached_tokens, codec_key

    lm = _tiny("lm", tmp_path, steps=1, shifts=2, codec=str(chain["codec"]), cache_dir=str(tmp_path / "cache"),
               out_dir=str(tmp_path / "lm"), stage_dir=str(tmp_path / "stage"))
    train_lm(lm)
    assert len(list((tmp_path / "cache").glob("tokens-*.npz"))) == 2  # one cache per frame grid
    mimi = load_codec(chain["codec"], "cpu")
    key = codec_key(chain["codec"], "")
    plain = cached_tokens(mimi, key, "train", lm["max_minutes"], lm["seed"], tmp_path / "cache")
    half = cached_tokens(mimi, key, "train", lm["max_minutes"], lm["seed"], tmp_path / "cache", shift=960)
    assert len(plain) == len(half)
    # the same speech half a frame later: as many frames or one fewer, and other tokens
    assert all(a.shape[1] - b.shape[1] in (0, 1) for a, b in zip(plain, half))
    assert any(not np.array_equal(a[:, :b.shape[1]], b) for a, b in zip(plain, half))
    with pytest.raises(ValueError, match="shift"):
        cached_tokens(mimi, key, "train", lm["max_minutes"], lm["seed"], tmp_path / "cache", shift=1920)


@needs_speech
@pytest.mark.slow
def test_shipped_folder_loads_and_reproduces_its_reference(chain):
    from simlab.models.profiles import load_profile
    from simlab.train.ship import reference_outputs

    ship = chain["tmp"] / "ship"
    modules = json.loads((ship / "adapter_config.json").read_text())["target_modules"]
    assert modules == sorted(modules)  # a stable file: peft's own order varies by process
    models = load_profile(str(ship), device="cpu")
    assert models.trained and not models.random_parts
    with torch.no_grad():
        _check_reference(reference_outputs(models), json.loads((ship / "reference.json").read_text()))


def test_recipes_refuse_a_profile_without_weights(tmp_path):
    from simlab.train.conceal import train_lora

    cfg = _tiny("lora", tmp_path, steps=1, profile="small", out_dir=str(tmp_path / "x"))
    if (SMALL / "profile.yaml").is_file():
        pytest.skip("the small profile ships trained weights")
    with pytest.raises(UserError, match="no trained weights"):
        train_lora(cfg)


# -- the shipped weights ---------------------------------------------------------------------
def _check_reference(got: dict, want: dict) -> None:
    for key in ("tokens", "masks", "concealed_steps"):
        assert got[key] == want[key], key
    assert got["decoded_rms"] == pytest.approx(want["decoded_rms"], abs=2e-4)
    assert np.allclose(got["decoded_head"], want["decoded_head"], atol=2e-3)


@pytest.mark.skipif(not (SMALL / "profile.yaml").is_file(), reason="no shipped small weights")
def test_shipped_small_profile_gives_the_recorded_outputs():
    from simlab.models.profiles import load_profile
    from simlab.train.ship import reference_outputs

    total = sum(f.stat().st_size for f in SMALL.iterdir() if f.is_file())
    assert total < 40_000_000, f"shipped small weights take {total / 1e6:.1f} MB"
    state = torch.random.get_rng_state()
    models = load_profile("small", device="cpu")
    assert torch.equal(torch.random.get_rng_state(), state), "loading must leave torch's global RNG alone"
    assert models.trained and not models.random_parts and models.profile.lora_adapter is not None
    with torch.no_grad():
        _check_reference(reference_outputs(models), json.loads((SMALL / "reference.json").read_text()))


@pytest.mark.skipif(not (SMALL / "profile.yaml").is_file(), reason="no shipped small weights")
def test_codec_can_continue_from_the_shipped_weights(tmp_path):
    from simlab.models.checkpoint import load_state_dict, save_state_dict
    from simlab.models.mimi_config import build_mimi, small_mimi_kwargs
    from simlab.train.codec import start_from

    mimi = build_mimi(small_mimi_kwargs(), "cpu")
    start_from(mimi, SMALL / "mimi.safetensors", "cpu")
    want = load_state_dict(SMALL / "mimi.safetensors")
    got = mimi.state_dict()
    assert all(torch.equal(got[k], want[k].to(got[k].dtype)) for k in want)
    save_state_dict({"not": torch.zeros(2)}, tmp_path / "other.safetensors")
    with pytest.raises(UserError, match="init=.*not weights of the small Mimi"):
        start_from(mimi, tmp_path / "other.safetensors", "cpu")
