"""Recipe `train lm`: pretrain the small `LMModel` (Moshi's layout: semantic token, acoustic
tokens delayed one step, no text) on the codec's token streams of the training speech.

Teacher-forced next-token training over every codebook with eq. 19's per-depth weights;
the tokens are encoded once by the trained codec and cached (`simlab.train.tokens`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from simlab.errors import UserError
from simlab.models.checkpoint import load_state_dict, save_state_dict
from simlab.models.lm_config import build_lm, small_lm_kwargs
from simlab.models.mimi_config import build_mimi, drop_codebook_cache, small_mimi_kwargs
from simlab.train import config as cfg
from simlab.train.codec import lr_schedule
from simlab.train.profile_io import write_profile
from simlab.train.lm_io import depth_weights, lm_loss
from simlab.train.state import load_state, make_optimizer, prepare, save_state, seeded_torch, train_loop
from simlab.train.tokens import cached_tokens, codec_key, token_batch

WEIGHTS_FILE = "lm.safetensors"
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


def check(config: dict) -> None:
    for key, low, high, integer in (("steps", 1, 10**7, True), ("batch", 1, 4096, True), ("frames", 4, 10**5, True),
                                    ("lr", 1e-8, 1.0, False), ("max_minutes", 0.01, 10**5, False),
                                    ("checkpoint_every", 1, 10**7, True), ("seed", 0, 2**32 - 1, True)):
        cfg.check_range(config, key, low, high, integer)


def train_lm(config: dict, resume: bool = False) -> Path:
    """Run the recipe; returns ``<out_dir>/lm.safetensors`` (kwargs beside it in lm_kwargs.json)."""
    check(config)
    device, out_dir, rng = prepare(config)
    kwargs = lm_kwargs(config["lm_kwargs"])
    with seeded_torch(config["seed"], device):
        mimi = load_codec(config["codec"], device)
        streams = cached_tokens(mimi, codec_key(Path(config["codec"]).expanduser(), ""), config["data"],
                                config["max_minutes"], config["seed"], config["cache_dir"])
        del mimi
        lm = build_lm(kwargs, device=device, seed=config["seed"]).train()
        weights = depth_weights(config["lambda_semantic"], config["lambda_acoustic"], lm.dep_q)
        opt = make_optimizer(lm.parameters(), config["lr"], config["weight_decay"])
        start = load_state(out_dir, {"lm": lm}, opt, rng)[0] if resume else 0
        sched = lr_schedule(opt, config["warmup"], config["steps"], start)

        def step(i: int) -> dict[str, float]:
            codes = torch.from_numpy(token_batch(streams, config["batch"], config["frames"], rng)).to(device)
            loss, pred, mask = lm_loss(lm, codes, codes, torch.ones_like(codes, dtype=torch.bool), weights)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), config["grad_clip"])
            opt.step()
            sched.step()
            hits = (pred == codes) & mask
            return {"loss": loss.item(), "acc0": (hits[:, 0].sum() / mask[:, 0].sum()).item(),
                    "acc": (hits.sum() / mask.sum()).item()}

        t0 = time.perf_counter()
        train_loop(config["steps"], start, step, lambda s: save_state(out_dir, s, {"lm": lm}, opt, rng),
                   config["checkpoint_every"], "train lm", out_dir / "log.jsonl")
        lm.eval()
        path = out_dir / WEIGHTS_FILE
        save_state_dict(lm.state_dict(), path)
        (out_dir / KWARGS_FILE).write_text(json.dumps(kwargs, indent=1))
        write_profile(Path(config["stage_dir"]).expanduser(), "small-stage-lm", Path(config["codec"]).expanduser(),
                      path, kwargs, trained=False)
        (out_dir / "time.txt").write_text(f"{time.perf_counter() - t0:.1f} s for steps {start}..{config['steps']}\n")
    return path
