"""Recipe `train lm`: pretrain the small `LMModel` (Moshi's layout: semantic token, acoustic
tokens delayed one step, no text) on the codec's token streams of the training speech.

Teacher-forced next-token training over every codebook with eq. 19's per-depth weights;
the tokens are encoded once by the trained codec and cached (`simlab.train.tokens`).

A seeded ``val_fraction`` of the utterances is held out; every ``eval_every`` steps the
loss on fixed windows of them is measured, and the weights with the lowest held-out loss
are the recipe's result. Why: the LM is small but the corpus is smaller (2.5 h of speech is
~1 M tokens), so a long run (a GPU budget) overfits; the held-out loss says when.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from simlab.errors import UserError
from simlab.models.checkpoint import load_state_dict, save_state_dict
from simlab.models.lm_config import build_lm, small_lm_kwargs
from simlab.models.mimi_config import FRAME_SAMPLES, build_mimi, drop_codebook_cache, small_mimi_kwargs
from simlab.train import config as cfg
from simlab.train.profile_io import write_profile
from simlab.train.lm_io import depth_weights, lm_loss
from simlab.train.state import (StepPlan, load_state, lr_schedule, make_optimizer, prepare, save_state,
                                seeded_torch, train_loop)
from simlab.train.tokens import cached_tokens, codec_key, corpus_loader, token_batch

WEIGHTS_FILE = "lm.safetensors"
BEST_FILE = "lm-best.safetensors"
KWARGS_FILE = "lm_kwargs.json"


def lm_kwargs(overrides: dict) -> dict:
    """`small_lm_kwargs()` updated by ``overrides`` (the recipe's ``lm_kwargs``)."""
    kwargs = small_lm_kwargs()
    unknown = sorted(set(overrides) - set(kwargs))
    if unknown:
        raise UserError(f"config lm_kwargs: unknown key {unknown[0]} (moshi LMModel kwargs: {', '.join(sorted(kwargs))})")
    kwargs.update(overrides)
    return kwargs


def load_codec(path: str | Path, device: str):
    """The small Mimi with the weights at ``path`` (the codec recipe's output), in eval mode."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"codec weights {path} not found: run `simlab train codec` first or set codec=PATH")
    mimi = build_mimi(small_mimi_kwargs(), device)
    mimi.load_state_dict(load_state_dict(path, device))
    drop_codebook_cache(mimi)
    return mimi.eval()


def split_utterances(count: int, config: dict) -> tuple[list[int], list[int]]:
    """(training, held-out) utterance indices: a seeded ``val_fraction`` held out (at least one
    when the fraction is > 0 and two or more exist)."""
    n_val = int(round(config["val_fraction"] * count))
    if config["val_fraction"] > 0 and count > 1:
        n_val = min(max(n_val, 1), count - 1)
    order = np.random.default_rng([config["seed"], 1]).permutation(count)
    return sorted(order[n_val:].tolist()), order[:n_val].tolist()


def hold_out(streams: list, config: dict, device: str,
             shifted: list[list] = ()) -> tuple[list, "torch.Tensor | None"]:
    """(training streams, fixed held-out windows [n, dep_q, frames] on ``device`` or None).

    ``val_batches`` x ``batch`` windows drawn once from the held-out utterances (see
    `split_utterances`). ``shifted``: the same utterances tokenized on other frame grids
    (`cached_tokens(shift=...)`); their training utterances join the training streams and
    their held-out ones are left out, so no held-out speech is ever trained on."""
    train_idx, val_idx = split_utterances(len(streams), config)
    train = [s[i] for s in (streams, *shifted) for i in train_idx]
    if not val_idx:
        return train, None
    windows = token_batch([streams[i] for i in val_idx], config["val_batches"] * config["batch"],
                          config["frames"], np.random.default_rng([config["seed"], 2]))
    return train, torch.from_numpy(windows).to(device)


@torch.no_grad()
def held_out_loss(lm, val_codes: torch.Tensor, weights: torch.Tensor, batch: int = 32) -> dict[str, float]:
    """Eq. 19 loss and token accuracy of ``lm`` on the held-out windows (eval mode inside)."""
    was_training = lm.training
    lm.eval()
    total = hits = count = 0.0
    for chunk in val_codes.split(batch):
        loss, pred, mask = lm_loss(lm, chunk, chunk, torch.ones_like(chunk, dtype=torch.bool), weights)
        total += loss.item() * len(chunk)
        hits += ((pred == chunk) & mask).sum().item()
        count += mask.sum().item()
    lm.train(was_training)
    return {"val_loss": total / len(val_codes), "val_acc": hits / max(count, 1.0)}


def grid_shifts(count: int) -> list[int]:
    """``count`` frame-grid offsets in samples, evenly over one frame: 0, 1920/count, ..."""
    return [i * FRAME_SAMPLES // count for i in range(count)]


def check(config: dict) -> None:
    cfg.check_range(config, "shifts", 1, 64, integer=True)
    cfg.check_range(config, "val_fraction", 0.0, 0.5)
    cfg.check_range(config, "val_batches", 1, 1000, integer=True)
    cfg.check_range(config, "eval_every", 1, 10**7, integer=True)
    cfg.check_training(config)
    for key, low, high, integer in (("batch", 1, 4096, True), ("frames", 4, 10**5, True),
                                    ("lr", 1e-8, 1.0, False), ("max_minutes", 0.01, 10**5, False)):
        cfg.check_range(config, key, low, high, integer)
    for key, value in config["lm_kwargs"].items():
        if not isinstance(value, bool) and isinstance(value, int) and value < 1:
            raise UserError(f"config lm_kwargs.{key}={value!r}: must be >= 1")


def train_lm(config: dict, resume: bool = False) -> Path:
    """Run the recipe; returns ``<out_dir>/lm.safetensors`` (kwargs beside it in lm_kwargs.json)."""
    check(config)
    device, out_dir, rng = prepare(config)
    kwargs = lm_kwargs(config["lm_kwargs"])
    with seeded_torch(config["seed"], device):
        mimi = load_codec(config["codec"], device)
        key = codec_key(Path(config["codec"]).expanduser(), "")
        audio = corpus_loader(config["data"], config["max_minutes"], config["seed"])
        encodings = [cached_tokens(mimi, key, config["data"], config["max_minutes"], config["seed"],
                                   config["cache_dir"], shift=s, corpus=audio) for s in grid_shifts(config["shifts"])]
        del mimi
        streams, val_codes = hold_out(encodings[0], config, device, encodings[1:])
        lm = build_lm(kwargs, device=device, seed=config["seed"]).train()
        weights = depth_weights(config["lambda_semantic"], config["lambda_acoustic"], lm.dep_q)
        opt = make_optimizer(lm.parameters(), config["lr"], config["weight_decay"])
        plan = StepPlan.from_config(config)
        start, extra = load_state(out_dir, {"lm": lm}, opt, rng, plan) if resume else (0, {})
        best = {"val": extra.get("best_val", float("inf"))}
        best_path = out_dir / BEST_FILE
        sched = lr_schedule(opt, config["warmup"], plan, start)

        def step(i: int) -> dict[str, float]:
            codes = torch.from_numpy(token_batch(streams, config["batch"], config["frames"], rng)).to(device)
            loss, pred, mask = lm_loss(lm, codes, codes, torch.ones_like(codes, dtype=torch.bool), weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), config["grad_clip"])
            opt.step()
            sched.step()
            hits = (pred == codes) & mask
            stats = {"loss": loss.item(), "acc0": (hits[:, 0].sum() / mask[:, 0].sum()).item(),
                     "acc": (hits.sum() / mask.sum()).item()}
            if val_codes is not None and ((i + 1) % config["eval_every"] == 0 or i + 1 == plan.steps):
                stats.update(held_out_loss(lm, val_codes, weights))
                if stats["val_loss"] < best["val"]:
                    best["val"] = stats["val_loss"]
                    save_state_dict(lm.state_dict(), best_path)
            return stats

        t0 = time.perf_counter()
        train_loop(plan, start, step,
                   lambda s: save_state(out_dir, s, {"lm": lm}, opt, rng, {"best_val": best["val"]}, plan),
                   config["checkpoint_every"], "train lm", out_dir / "log.jsonl")
        lm.eval()
        path = out_dir / WEIGHTS_FILE
        if best_path.is_file():  # the held-out minimum
            best_path.replace(path)
        else:
            save_state_dict(lm.state_dict(), path)
        (out_dir / KWARGS_FILE).write_text(json.dumps(kwargs, indent=1))
        write_profile(Path(config["stage_dir"]).expanduser(), "small-stage-lm", Path(config["codec"]).expanduser(),
                      path, kwargs, trained=False)
        (out_dir / "time.txt").write_text(f"{time.perf_counter() - t0:.1f} s for steps {start}..{plan.steps}\n")
    return path
