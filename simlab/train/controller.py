"""Recipe `train controller` (stage 2): the adaptive controller trained end to end with the
LM under packet loss, eq. 20: L = L_recon + γ Σ_i m_i.

Per step: a batch of (latent, tokens) windows; per example L drawn uniformly from
``quantizers`` (1..16) and, with probability ``loss_rate`` for the whole batch, a loss
probability p from [p_min, p_max] (else p = 0, which keeps lossless quality). The controller
gives (I_s, I_c) from (z, p); `soft_mask` gives m (forward: the hard mask; gradient: the soft
step, eq. 11-13). Each token with m copies arrives unless all its copies are lost
(independently with p). The LM sees arrived tokens and, for the rest, its own predictions
(the two-pass scheme of `simlab.train.conceal`).

How m reaches the loss (the paper leaves this open): a token's arrival is a straight-through
variable a = arrived + (P(m) − sg(P(m))), with P the piecewise-linear interpolation of
P(arrive | m copies) = 1 − p^m between m = 0, 1, 2. L_recon is eq. 19's weighted CE counted
where the token did not arrive, weighted by (1 − a): sending a token (or a second copy) lowers
the loss by what its CE says it is worth, and γ Σ m charges for every copy. Tokens that
the LM predicts well from context (silence) are worth little and get dropped; redundancy
pays off as p grows. The LoRA adapter keeps training with the controller (``train_lora``).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from simlab.actors.controller import AdaptiveController, soft_mask
from simlab.models.checkpoint import save_state_dict
from simlab.train import config as cfg
from simlab.train.codec import lr_schedule
from simlab.train.conceal import ADAPTER_DIR, attach_adapter, fill_from_predictions, load_base
from simlab.train.lm_io import depth_weights, teacher_forced
from simlab.train.state import load_state, prepare, save_state, seeded_torch, train_loop
from simlab.train.tokens import cached_tokens, codec_key, token_batch

WEIGHTS_FILE = "controller.safetensors"


def arrival_probability(m: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """P(arrive | m copies) = 1 − p^m at m = 0, 1, 2, linear in between (differentiable in m)."""
    return (1 - p) * m.clamp(0, 1) + p * (1 - p) * (m - 1).clamp(0, 1)


def eq20_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, arrived_st: torch.Tensor,
              mask: torch.Tensor, weights: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(L, L_recon, mean Σ_i m_i per frame). ``logits`` [B, K, T, card]; ``targets``, ``valid``,
    ``arrived_st`` (straight-through arrival), ``mask`` (m̃) all [B, K, T]."""
    B, K, T, card = logits.shape
    ce = F.cross_entropy(logits.float().reshape(-1, card), targets.reshape(-1), reduction="none").view(B, K, T)
    lam = weights.to(ce).view(1, K, 1) * valid.to(ce)
    frames = valid.any(dim=1)  # [B, T]
    per_frame = (lam * (1 - arrived_st) * ce).sum(dim=1) / lam.sum(dim=1).clamp_min(1e-5)
    recon = (per_frame * frames).sum() / frames.sum().clamp_min(1)
    sent = mask.sum(dim=1).mean()
    return recon + gamma * sent, recon, sent


def check(config: dict) -> None:
    for key, low, high, integer in (("steps", 1, 10**7, True), ("batch", 1, 4096, True), ("frames", 4, 10**5, True),
                                    ("lr", 1e-9, 1.0, False), ("lr_lora", 0.0, 1.0, False),
                                    ("gamma", 0.0, 100.0, False), ("loss_rate", 0.0, 1.0, False),
                                    ("p_min", 0.0, 0.99, False), ("p_max", 0.0, 0.99, False),
                                    ("tau", 1e-3, 1e3, False), ("checkpoint_every", 1, 10**7, True),
                                    ("seed", 0, 2**32 - 1, True)):
        cfg.check_range(config, key, low, high, integer)
    lo, hi = config["quantizers"]
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= 16):
        from simlab.errors import UserError

        raise UserError(f"config quantizers={config['quantizers']!r}: [low, high] ints with 1 <= low <= high <= 16")


def train_controller(config: dict, resume: bool = False) -> Path:
    """Run stage 2; returns ``<out_dir>/controller.safetensors`` (adapter in ``<out_dir>/adapter``)."""
    check(config)
    device, out_dir, rng = prepare(config)
    with seeded_torch(config["seed"], device):
        mimi, lm, profile = load_base(config["profile"], device, config["seed"])
        streams, latents = cached_tokens(mimi, codec_key(profile.mimi_checkpoint, profile.name), config["data"],
                                         config["max_minutes"], config["seed"], config["cache_dir"], latents=True)
        del mimi
        start_adapter = config["lora"] if config["lora"] is not None else profile.lora_adapter
        model = attach_adapter(lm, start_adapter, config["rank"], config["alpha"])
        train_lora = bool(config["train_lora"])
        for name, param in model.named_parameters():
            param.requires_grad_(train_lora and "lora_" in name)
        model.train()
        controller = AdaptiveController(**config["controller_kwargs"], seed=config["seed"]).to(device).train()
        groups = [{"params": list(controller.parameters()), "lr": config["lr"]}]
        if train_lora:
            groups.append({"params": [p for p in model.parameters() if p.requires_grad], "lr": config["lr_lora"]})
        opt = torch.optim.AdamW(groups, weight_decay=config["weight_decay"])
        modules = {"controller": controller, "lora": model}
        start = load_state(out_dir, modules, opt, rng)[0] if resume else 0
        sched = lr_schedule(opt, config["warmup"], config["steps"], start)
        weights = depth_weights(config["lambda_semantic"], config["lambda_acoustic"], lm.dep_q)
        lo, hi = config["quantizers"]

        def step(i: int) -> dict[str, float]:
            codes, z = token_batch(streams, config["batch"], config["frames"], rng, latents=latents)
            codes, z = torch.from_numpy(codes).to(device), torch.from_numpy(z).to(device)
            B, K, T = codes.shape
            L = torch.from_numpy(rng.integers(lo, hi + 1, size=B)).to(device, torch.float32)
            lossy = rng.random() < config["loss_rate"]
            p_np = rng.uniform(config["p_min"], config["p_max"], size=B) if lossy else np.zeros(B)
            p = torch.from_numpy(p_np).to(device, torch.float32)
            i_s, i_c = controller(z, p)  # [B, T]
            m = soft_mask(i_s, i_c, L[:, None], K, tau=config["tau"]).permute(0, 2, 1)  # [B, K, T]
            hard = m.detach().round().long()
            u = torch.from_numpy(rng.random((2, B, K, T))).to(device)
            pk = p.view(B, 1, 1)
            arrived = ((hard >= 1) & (u[0] >= pk)) | ((hard >= 2) & (u[1] >= pk))
            prob = arrival_probability(m, pk)
            arrived_st = arrived.to(prob) + (prob - prob.detach())
            inputs = fill_from_predictions(model, codes, arrived)
            if train_lora:
                logits, valid = teacher_forced(model, inputs)
            else:
                with torch.no_grad():
                    logits, valid = teacher_forced(model, inputs)
            loss, recon, sent = eq20_loss(logits, codes, valid, arrived_st, m, weights, config["gamma"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([q for g in groups for q in g["params"]], config["grad_clip"])
            opt.step()
            sched.step()
            return {"loss": loss.item(), "recon": recon.item(), "sent": sent.item(), "p": float(p_np.mean()),
                    "arrived": arrived.float().mean().item()}

        t0 = time.perf_counter()
        train_loop(config["steps"], start, step, lambda s: save_state(out_dir, s, modules, opt, rng),
                   config["checkpoint_every"], "train controller", out_dir / "log.jsonl")
        controller.eval()
        path = out_dir / WEIGHTS_FILE
        save_state_dict(controller.state_dict(), path)
        from simlab.models.lora import save_lora

        save_lora(model, out_dir / ADAPTER_DIR)
        (out_dir / "time.txt").write_text(f"{time.perf_counter() - t0:.1f} s for steps {start}..{config['steps']}\n")
        if config["ship_dir"]:
            from simlab.train.ship import ship

            ship(config, profile, out_dir)
    return path
