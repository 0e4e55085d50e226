"""Recipe `train controller` (stage 2): the adaptive controller trained end to end with the
LM under packet loss, eq. 20: L = L_recon + γ Σ_i m_i.

Per step: a batch of (latent, tokens) windows; per example L drawn uniformly from
``quantizers`` (1..16) and, with probability ``loss_rate`` for the whole batch, a loss
probability p from [p_min, p_max] (else p = 0, which keeps lossless quality). The controller
gives (I_s, I_c) from (z, p); `copy_masks` gives the first and second copies m_s, m_c
(forward: eq. 5-6's hard mask; gradient: eq. 11's soft step, eq. 13). Each copy arrives
independently with 1 − p. The LM sees arrived tokens and, for the rest, its own predictions
(the two-pass scheme of `simlab.train.conceal`). The LoRA adapter keeps training (``train_lora``).

What the controller sees (issue 7). The first recipe learned to send every token once and
never double. Each choice below removes one cause, by mechanism rather than by the weights
of the day (measured on the CPU small LM, dev speech, per-token CE: speech 4.7 nats, silence
1.9, the last three codebooks in silence 0.7-0.8):
- **Arrival, per copy** (`arrival_probability`): P = 1 − (1 − (1−p) m_s)(1 − (1−p) m_c), exact
  at the corners and with each copy's true marginal worth as its slope: (1 − p) CE for a
  first copy, p (1 − p) CE for a second. The former P(m_s + m_c), piecewise linear, had a kink
  at m = 1 where autograd adds both slopes, so a second copy looked as valuable as a first.
- **Ramps centred on the thresholds** (`copy_masks`): eq. 11's soft step ramps from j to j + 1,
  half a token above eq. 5's hard threshold j, which biased the controller one token high.
- **Eq. 20 in tokens' worth** (`eq20_loss`): eq. 19 averages the CE over the 8 codebooks, so
  dropping one token cost CE/8 ≈ 0.6 nats against γ = 0.1 and doubling p(1 − p) CE/8 ≤ 0.15:
  the price was arbitrary against the weights. L_recon is now Σ_k λ_k (1 − a_k) CE_k / (λ̄ c̄)
  per frame, c̄ = sg(mean CE per token of the batch): eq. 19 × K / c̄, a constant per batch, so
  the optimum is eq. 20's. ``gamma`` is then the price of a copy in average tokens: a second
  copy of an average token pays once p (1 − p) > γ, a first copy of a token is dropped when
  (1 − p) CE_k < γ c̄. γ = 0.2 puts the redundancy threshold at p ≈ 0.27 (inside the trained
  [0, 0.4]) and drops tokens the LM predicts at under a fifth of the average CE. It follows a
  retrained LM: a better LM lowers c̄ and silence CE alike.
- **Learning rates and start** (`warm_start`, ``lr``/``lr_adapter``): all L tokens go only at
  I_s = 1, which a sigmoid reaches only in the limit, so the gradient keeps pushing; Adam turns
  that into steady steps, and at lr 3e-3 the unnormalised 4-layer extractor's output I_sem grew
  to ~10^3 within 15 steps (measured), saturating both sigmoids for good, I_c included (it
  shares I_sem): no gradient, no dependence on p. The extractor now learns at 3e-4 (I_sem stays
  within a few units) and the tiny adapter at 3e-3. The adapter starts at the fixed controller's
  habit (I_s ≈ 0.95, I_c ≈ 0.05: every token once, none doubled) rather than at 0.5/0.5, where
  half the tokens are unsent and both outputs race to saturation; and its weights from p start
  ×``p_gain`` (10): p ∈ [0, 0.4] is small beside I_sem, and Adam moves every weight at a similar
  rate, so with the default scale the bias (pushed down by the many p < p* examples) won before
  the slope on p could form. With these, I_c rises from ~0 to ~1 across p* (measured).
- τ = 2: sharp enough that the surrogate stays near the hard step, smooth enough that an
  importance at 0 still gets a quarter of the peak gradient (τ = 4 with the uncentred ramp:
  0.07 %, so I_c = 0 was final).
Unchanged, as the paper has them: L uniform in 1..16, loss in 75 % of the batches, p up to 0.4.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from simlab.actors.controller import AdaptiveController, hard_mask, soft_step
from simlab.errors import UserError
from simlab.models.checkpoint import save_state_dict
from simlab.train import config as cfg
from simlab.models.profiles import get_profile
from simlab.train.conceal import ADAPTER_DIR, attach_adapter, fill_from_predictions, load_base
from simlab.train.lm_io import depth_weights, teacher_forced
from simlab.train.state import StepPlan, load_state, lr_schedule, prepare, save_state, seeded_torch, train_loop
from simlab.train.tokens import cached_tokens, codec_key, token_batch

WEIGHTS_FILE = "controller.safetensors"


def copy_masks(i_s: torch.Tensor, i_c: torch.Tensor, quantizers, n_q: int,
               tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The two copies of eq. 5-6 as separate straight-through masks [..., n_q] in {0, 1}:
    m_s = H(L·I_s) (first copies) and m_c = H(L·I_c) (second copies), kept apart so that
    `arrival_probability` knows which copy a change moves.

    Forward: the hard step of eq. 5-6 exactly (token j goes when j ≤ L·I). Gradient: eq. 11's
    soft step at L·I + ½. Eq. 11 ramps from i = j to j + 1, centred half a token *above* the
    hard threshold j, so its gradient keeps crediting token j after the hard mask already
    sends it, and the controller settles one token too high (a token worth nothing still gets
    sent). The ½ shift centres each ramp on its threshold."""
    levels = torch.arange(1, n_q + 1, device=i_s.device, dtype=i_s.dtype)
    L = torch.as_tensor(quantizers, dtype=i_s.dtype, device=i_s.device)
    zero = torch.zeros_like(i_s)

    def one(i: torch.Tensor) -> torch.Tensor:
        soft = soft_step((L * i)[..., None] + 0.5, levels, tau)
        return hard_mask(i, zero, quantizers, n_q).to(soft.dtype) + (soft - soft.detach())

    return one(i_s), one(i_c)


def arrival_probability(m_s: torch.Tensor, m_c: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """P(a token arrives) = 1 − (1 − (1−p)·m_s)(1 − (1−p)·m_c): each copy arrives
    independently with 1 − p. Exact at m ∈ {0, 1}² (0, 1 − p, 1 − p²), and its slopes there
    are each copy's true marginal worth: ∂/∂m_s = 1 − p while m_c = 0, ∂/∂m_c = p(1 − p) while
    m_s = 1. (A piecewise-linear P(m_s + m_c) has a kink at m = 1 where autograd takes both
    slopes at once, pricing a second copy like a first.)"""
    q = 1 - p
    return 1 - (1 - q * m_s) * (1 - q * m_c)


class Eq20(NamedTuple):
    """The terms of one step's eq. 20 loss (all scalars)."""

    loss: torch.Tensor  #: L_recon / sg(c̄) · K + γ · mean Σ_i m_i: what is minimised
    recon: torch.Tensor  #: eq. 19 as the paper writes it (per-frame λ-weighted mean CE of lost tokens)
    sent: torch.Tensor  #: mean Σ_i m_i per frame (copies)
    unit: torch.Tensor  #: c̄, the λ-weighted mean CE per token over the batch (detached)


def eq20_loss(logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor, arrived_st: torch.Tensor,
              mask: torch.Tensor, weights: torch.Tensor, gamma: float) -> Eq20:
    """Eq. 20 with L_recon counted in tokens' worth: per frame Σ_k λ_k (1 − a_k) CE_k / (λ̄ c̄),
    c̄ = sg(λ-weighted mean CE per token of the batch), λ̄ = mean λ; i.e. eq. 19 × K / c̄, so
    ``gamma`` is the price of one copy as a fraction of what an average token's loss costs.
    ``logits`` [B, K, T, card]; ``targets``, ``valid``, ``arrived_st`` (straight-through
    arrival), ``mask`` (m̃ = m_s + m_c) all [B, K, T]."""
    B, K, T, card = logits.shape
    ce = F.cross_entropy(logits.float().reshape(-1, card), targets.reshape(-1), reduction="none").view(B, K, T)
    lam = weights.to(ce).view(1, K, 1) * valid.to(ce)
    frames = valid.any(dim=1)  # [B, T]
    unit = ((lam * ce).sum() / lam.sum().clamp_min(1e-5)).detach().clamp_min(1e-3)
    lost = (lam * (1 - arrived_st) * ce).sum(dim=1)  # [B, T]
    n_frames = frames.sum().clamp_min(1)
    recon_tokens = (lost * frames).sum() / n_frames / (weights.to(ce).mean() * unit)
    recon = ((lost / lam.sum(dim=1).clamp_min(1e-5)) * frames).sum() / n_frames
    sent = mask.sum(dim=1).mean()
    return Eq20(recon_tokens + gamma * sent, recon.detach(), sent, unit)


def check(config: dict) -> None:
    cfg.check_training(config)
    for key, low, high, integer in (("batch", 1, 4096, True), ("frames", 4, 10**5, True),
                                    ("lr", 1e-9, 1.0, False), ("lr_adapter", 1e-9, 1.0, False), ("p_gain", 0.0, 1e3, False),
                                    ("lr_lora", 0.0, 1.0, False), ("rank", 1, 4096, True), ("alpha", 1, 10**6, True),
                                    ("gamma", 0.0, 100.0, False), ("loss_rate", 0.0, 1.0, False),
                                    ("p_min", 0.0, 0.99, False), ("p_max", 0.0, 0.99, False),
                                    ("tau", 1e-3, 1e3, False), ("max_minutes", 0.01, 10**5, False)):
        cfg.check_range(config, key, low, high, integer)
    if config["p_min"] > config["p_max"]:
        raise UserError(f"config p_min={config['p_min']!r}, p_max={config['p_max']!r}: need p_min <= p_max")
    quantizers = config["quantizers"]
    if not (len(quantizers) == 2 and 1 <= quantizers[0] <= quantizers[1] <= 16):
        raise UserError(f"config quantizers={quantizers!r}: [low, high] ints with 1 <= low <= high <= 16 "
                        f"(L is drawn from this range per example)")
    start = config["start_importances"]
    if not (len(start) == 2 and all(0.0 < v < 1.0 for v in start)):
        raise UserError(f"config start_importances={start!r}: [I_s, I_c], each strictly between 0 and 1")
    lora = config["lora"]
    if lora is not None and not (Path(lora).expanduser() / "adapter_config.json").is_file():
        raise UserError(f"config lora={lora!r}: no LoRA adapter folder there (adapter_config.json); "
                        f"give the `train lora` output's adapter folder, or null")


def check_ship(config: dict, profile) -> None:
    """`ship.ship` packages the small profile (its Mimi layout, a float32 LM stored in float16,
    the name ``small``): refuse ``ship_dir`` for any other base before training, not after."""
    from simlab.models.mimi_config import small_mimi_kwargs

    if config["ship_dir"] is not None and (profile.mimi_kwargs != small_mimi_kwargs()
                                           or profile.lm_dtype != "float32"):
        raise UserError(f"config ship_dir={config['ship_dir']!r}: ship_dir packages the small profile only, and "
                        f"profile {config['profile']!r} is not one; set ship_dir: null and use the trained "
                        f"<out_dir>/adapter and controller.safetensors from a profile.yaml (docs/models.md)")


def new_controller(config: dict) -> AdaptiveController:
    try:
        return AdaptiveController(**config["controller_kwargs"], seed=config["seed"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"config controller_kwargs={config['controller_kwargs']!r}: {exc}") from None


def warm_start(controller: AdaptiveController, start: list[float], p_gain: float) -> None:
    """Initialise the channel adapter for training: its output biases put (I_s, I_c) near
    ``start`` (e.g. [0.95, 0.05]: send every token once, double none, the fixed controller's
    habit), and the weights from p in its first convolution are scaled by ``p_gain`` so that
    p ∈ [0, 0.4] moves the hidden units about as much as I_sem does."""
    with torch.no_grad():
        controller.adapter[-1].bias.copy_(torch.logit(torch.tensor(start, dtype=torch.float32)))
        controller.adapter[0].weight[:, 1].mul_(p_gain)


def train_controller(config: dict, resume: bool = False) -> Path:
    """Run stage 2; returns ``<out_dir>/controller.safetensors`` (adapter in ``<out_dir>/adapter``)."""
    check(config)
    profile = get_profile(config["profile"])
    check_ship(config, profile)
    device, out_dir, rng = prepare(config)
    with seeded_torch(config["seed"], device):
        mimi, lm = load_base(profile, device, config["seed"])
        streams, latents = cached_tokens(mimi, codec_key(profile.mimi_checkpoint, profile.name), config["data"],
                                         config["max_minutes"], config["seed"], config["cache_dir"], latents=True)
        del mimi
        start_adapter = config["lora"] if config["lora"] is not None else profile.lora_adapter
        model = attach_adapter(lm, start_adapter, config["rank"], config["alpha"])
        train_lora = bool(config["train_lora"])
        for name, param in model.named_parameters():
            param.requires_grad_(train_lora and "lora_" in name)
        model.train()
        controller = new_controller(config).to(device).train()
        warm_start(controller, config["start_importances"], config["p_gain"])
        groups = [{"params": list(controller.extractor.parameters()), "lr": config["lr"]},
                  {"params": list(controller.adapter.parameters()), "lr": config["lr_adapter"]}]
        if train_lora:
            groups.append({"params": [p for p in model.parameters() if p.requires_grad], "lr": config["lr_lora"]})
        opt = torch.optim.AdamW(groups, weight_decay=config["weight_decay"])
        modules = {"controller": controller, "lora": model}
        plan = StepPlan.from_config(config)
        start = load_state(out_dir, modules, opt, rng, plan)[0] if resume else 0
        sched = lr_schedule(opt, config["warmup"], plan, start)
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
            m_s, m_c = (m.permute(0, 2, 1) for m in copy_masks(i_s, i_c, L[:, None], K, config["tau"]))  # [B, K, T]
            u = torch.from_numpy(rng.random((2, B, K, T))).to(device)
            pk = p.view(B, 1, 1)
            arrived = (m_s.detach().bool() & (u[0] >= pk)) | (m_c.detach().bool() & (u[1] >= pk))
            prob = arrival_probability(m_s, m_c, pk)
            arrived_st = arrived.to(prob) + (prob - prob.detach())
            inputs = fill_from_predictions(model, codes, arrived)
            if train_lora:
                logits, valid = teacher_forced(model, inputs)
            else:
                with torch.no_grad():
                    logits, valid = teacher_forced(model, inputs)
            loss, recon, sent, unit = eq20_loss(logits, codes, valid, arrived_st, m_s + m_c, weights, config["gamma"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grad_ctrl = torch.sqrt(sum((q.grad ** 2).sum() for q in controller.parameters() if q.grad is not None))
            torch.nn.utils.clip_grad_norm_([q for g in groups for q in g["params"]], config["grad_clip"])
            opt.step()
            sched.step()
            return {"loss": loss.item(), "recon": recon.item(), "sent": sent.item(), "ce_unit": unit.item(),
                    "p": float(p_np.mean()), "arrived": arrived.float().mean().item(),
                    "i_s": i_s.mean().item(), "i_c": i_c.mean().item(), "grad_ctrl": grad_ctrl.item()}

        t0 = time.perf_counter()
        train_loop(plan, start, step, lambda s: save_state(out_dir, s, modules, opt, rng, plan=plan),
                   config["checkpoint_every"], "train controller", out_dir / "log.jsonl")
        controller.eval()
        path = out_dir / WEIGHTS_FILE
        save_state_dict(controller.state_dict(), path)
        from simlab.models.lora import save_lora

        save_lora(model, out_dir / ADAPTER_DIR)
        (out_dir / "time.txt").write_text(f"{time.perf_counter() - t0:.1f} s for steps {start}..{plan.steps}\n")
        if config["ship_dir"]:
            from simlab.train.ship import ship

            ship(config, profile, out_dir)
    return path
