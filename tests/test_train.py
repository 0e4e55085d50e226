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


def test_arrival_probability_matches_one_minus_p_to_the_m():
    from simlab.train.controller import arrival_probability

    for p in (0.0, 0.1, 0.3):
        for m in (0, 1, 2):
            got = arrival_probability(torch.tensor(float(m)), torch.tensor(p)).item()
            assert got == pytest.approx(1 - p ** m if m else 0.0, abs=1e-7)


def test_eq20_gradient_prices_copies_against_the_ce_they_save():
    """A copy of a token the LM predicts badly is worth sending (gradient pushes m up); a copy
    of a token it predicts perfectly only costs γ (gradient pushes m down)."""
    from simlab.train.controller import arrival_probability, eq20_loss

    card = 4
    logits = torch.zeros(1, 2, 1, card)
    logits[0, 1, 0, 2] = 50.0  # token 1 is predicted with certainty
    targets = torch.tensor([[[1], [2]]])
    m = torch.zeros(1, 2, 1, requires_grad=True)  # nothing sent
    p = torch.tensor(0.2)
    prob = arrival_probability(m, p)
    arrived_st = torch.zeros_like(m) + (prob - prob.detach())
    loss, recon, sent = eq20_loss(logits, targets, torch.ones(1, 2, 1, dtype=torch.bool), arrived_st, m,
                                  torch.ones(2), gamma=0.1)
    loss.backward()
    assert recon.item() == pytest.approx(math.log(card) / 2, rel=1e-5)
    assert m.grad[0, 0, 0] < 0 < m.grad[0, 1, 0]  # send the unpredictable token, not the other


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


def test_arrivals_second_copy_in_next_packet():
    from simlab.train.simulate import arrivals

    masks = np.array([[2, 1, 0], [2, 1, 0], [1, 1, 1], [2, 2, 2]])
    lost = np.array([True, False, True])  # packet 0 lost, packet 1 arrives, packet 2 lost
    got = arrivals(masks, lost, frames_per_packet=2)
    expected = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 1], [1, 1, 1]], dtype=bool)
    assert (got == expected).all()


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

    from simlab.train.cli import add_parser, parse_overrides

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
def test_shipped_folder_loads_and_reproduces_its_reference(chain):
    from simlab.models.profiles import load_profile
    from simlab.train.ship import reference_outputs

    ship = chain["tmp"] / "ship"
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
