"""Recipe `train lora` (stage 1): LoRA on a profile's LM for lost-token prediction (eq. 19).

Works on any profile (`load_profile` names: the small one, or Moshi-7B with real weights):
the recipe reads the profile's Mimi and base LM, adds peft LoRA adapters (rank ``rank``,
default 8) and trains only them.

Trained the way it is used. At inference (`LMConcealer`) a lost token is predicted from a
context in which every earlier lost token is the concealer's own prediction (temporal
context and lower depths alike). Each training step approximates that in two passes:
1. no gradient: the LM sees the batch with lost tokens *absent* (-1, a zero embedding) and
   its argmax fills them (a pessimistic context: what it knows without its own guesses);
2. with gradient: the LM sees received tokens as they are and lost ones as pass 1's
   predictions, and eq. 19 (per-depth λ) is taken on the true tokens at the lost positions
   (plus ``received_weight`` times the loss at received positions, keeping the LM an LM).
Erasures are drawn like the channel's (`simlab.train.erasures`).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch

from simlab.errors import UserError
from simlab.models.lora import add_lora, save_lora
from simlab.models.profiles import get_profile
from simlab.train import config as cfg
from simlab.train.erasures import check_erasure_config, draw_lost
from simlab.train.lm_io import depth_weights, teacher_forced
from simlab.train.losses import weighted_token_ce
from simlab.train.state import (StepPlan, load_state, lr_schedule, make_optimizer, prepare, save_state,
                                seeded_torch, train_loop)
from simlab.train.tokens import cached_tokens, codec_key, token_batch

ADAPTER_DIR = "adapter"


def load_base(profile, device: str, seed: int):
    """(Mimi, base LM without any adapter) of ``profile``; the profile's own LoRA adapter (if
    any, in ``profile.lora_adapter``) is not merged."""
    from simlab.models import profiles

    base = dataclasses.replace(profile, lora_adapter=None)
    parts: list[str] = []
    mimi = profiles._load_mimi(base, device, seed, parts)
    lm = profiles._load_lm(base, device, seed, parts)
    if parts:
        raise UserError(f"profile {profile.name!r}: no trained weights for {', '.join(parts)}; "
                        f"training on random models is meaningless")
    return mimi, lm


def attach_adapter(lm, start: str | Path | None, rank: int, alpha: int):
    """peft model around ``lm``: the adapter in ``start`` (trainable) or a fresh one."""
    if start is None:
        return add_lora(lm, rank=rank, alpha=alpha)
    from peft import PeftModel

    return PeftModel.from_pretrained(lm, str(start), is_trainable=True)


@torch.no_grad()
def fill_from_predictions(lm, codes: torch.Tensor, arrived: torch.Tensor) -> torch.Tensor:
    """Pass 1: tokens that did not arrive replaced by the LM's argmax given the arrived ones
    (and nothing for the rest)."""
    logits, _ = teacher_forced(lm, torch.where(arrived, codes, torch.full_like(codes, -1)))
    return torch.where(arrived, codes, logits.argmax(dim=-1))


def check(config: dict) -> None:
    cfg.check_training(config)
    for key, low, high, integer in (("batch", 1, 4096, True), ("frames", 4, 10**5, True),
                                    ("lr", 1e-9, 1.0, False), ("rank", 1, 4096, True), ("alpha", 1, 10**6, True),
                                    ("received_weight", 0.0, 10.0, False), ("max_minutes", 0.01, 10**5, False)):
        cfg.check_range(config, key, low, high, integer)
    check_erasure_config(config["erasures"])


def train_lora(config: dict, resume: bool = False) -> Path:
    """Run stage 1; returns the adapter folder ``<out_dir>/adapter``."""
    check(config)
    device, out_dir, rng = prepare(config)
    with seeded_torch(config["seed"], device):
        profile = get_profile(config["profile"])
        mimi, lm = load_base(profile, device, config["seed"])
        streams = cached_tokens(mimi, codec_key(profile.mimi_checkpoint, profile.name), config["data"],
                                config["max_minutes"], config["seed"], config["cache_dir"])
        del mimi
        model = attach_adapter(lm, None, config["rank"], config["alpha"])
        model.train()
        weights = depth_weights(config["lambda_semantic"], config["lambda_acoustic"], lm.dep_q)
        opt = make_optimizer(model.parameters(), config["lr"], config["weight_decay"])
        plan = StepPlan.from_config(config)
        start = load_state(out_dir, {"lora": model}, opt, rng, plan)[0] if resume else 0
        sched = lr_schedule(opt, config["warmup"], plan, start)

        def step(i: int) -> dict[str, float]:
            codes = torch.from_numpy(token_batch(streams, config["batch"], config["frames"], rng)).to(device)
            lost = torch.from_numpy(draw_lost(config["erasures"], codes.shape[0], codes.shape[1], codes.shape[2],
                                              rng)).to(device)
            inputs = fill_from_predictions(model, codes, ~lost)
            logits, valid = teacher_forced(model, inputs)
            mask = lost & valid
            loss_lost = weighted_token_ce(logits, codes, mask, weights)
            loss = loss_lost
            if config["received_weight"] > 0:
                loss = loss + config["received_weight"] * weighted_token_ce(logits, codes, ~lost & valid, weights)
            pred = logits.argmax(dim=-1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
            opt.step()
            sched.step()
            hits = ((pred == codes) & mask).sum()
            return {"loss": loss.item(), "lost_ce": loss_lost.item(),
                    "lost_acc": (hits / mask.sum().clamp_min(1)).item()}

        t0 = time.perf_counter()
        train_loop(plan, start, step, lambda s: save_state(out_dir, s, {"lora": model}, opt, rng, plan=plan),
                   config["checkpoint_every"], "train lora", out_dir / "log.jsonl")
        folder = save_lora(model, out_dir / ADAPTER_DIR)
        (out_dir / "time.txt").write_text(f"{time.perf_counter() - t0:.1f} s for steps {start}..{plan.steps}\n")
    return folder
