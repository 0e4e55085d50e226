"""What every recipe shares: device choice, seeded torch randomness, resumable checkpoints
and the tqdm progress loop.

A training checkpoint (``<out>/train_state.pt``) holds the trained tensors of the models
(`trained_state`: frozen parameters are rebuilt, not saved), the optimizer state, the step,
the state and spawn counter of the recipe's numpy `Generator`, torch's generator states and
a budget's fixed step count (`StepPlan.state`); it is written atomically every
``checkpoint_every`` steps and read back with ``torch.load(weights_only=True)`` (plain
tensors and containers only, never pickled code). Resuming from it continues the exact same
random sequence: on the same device the result equals an uninterrupted run, and the log's
rows after the checkpoint are replaced (`trim_log`).

Torch's global generator: moshi's quantizer draws from it (k-means init, dead-code
replacement) and its modules initialise from it. Recipes run inside `seeded_torch`
(`torch.random.fork_rng` seeded from the recipe seed), so those draws are reproducible and
the caller's global state is left exactly as it was.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from simlab.errors import UserError

STATE_FILE = "train_state.pt"


def pick_device(name: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cpu'/'cuda[:N]' as given (checked)."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu" or (name.startswith("cuda") and torch.cuda.is_available()):
        return name
    raise UserError(f"device {name!r}: expected 'auto', 'cpu' or an available 'cuda[:N]'")


@contextlib.contextmanager
def seeded_torch(seed: int, device: str) -> Iterator[None]:
    """Torch's global generators (CPU, and CUDA when used) seeded with ``seed`` for the block,
    restored afterwards."""
    devices = [torch.device(device)] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def file_hash(path: str | Path, length: int = 16) -> str:
    """SHA-256 prefix of a file's bytes (keys token caches to the codec that made them)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def save_state(out_dir: Path, step: int, modules: dict[str, torch.nn.Module],
               optimizer: torch.optim.Optimizer, rng: np.random.Generator, extra: dict | None = None,
               plan: "StepPlan | None" = None) -> None:
    """Write the training checkpoint atomically (a crash mid-write leaves the previous one)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "modules": {k: trained_state(m) for k, m in modules.items()},
        "optimizer": optimizer.state_dict(),
        "numpy_rng": json.dumps(rng.bit_generator.state),
        "numpy_seed_seq": json.dumps(_seed_seq_state(rng)),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_available() else torch.zeros(0, dtype=torch.uint8),
        "extra": json.dumps(extra or {}),
        "plan": json.dumps(plan.state() if plan is not None else {}),
    }
    tmp = out_dir / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out_dir / STATE_FILE)


def trained_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict without its frozen parameters: a resumed run rebuilds those
    exactly as the first run did (from the seed or the profile's files), and a LoRA
    checkpoint of Moshi-7B would otherwise carry the 15 GB base model every time.
    Buffers stay (the codec's codebook statistics change while it trains)."""
    frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
    return {k: v for k, v in module.state_dict().items() if k not in frozen}


def _load_trained_state(module: torch.nn.Module, saved: dict[str, torch.Tensor], key: str, path: Path) -> None:
    """Load what `trained_state` wrote; every entry it would write now must be there."""
    missing = sorted(set(trained_state(module)) - set(saved))
    if missing:
        raise UserError(f"{path}: the checkpoint's {key} lacks trained tensors ({', '.join(missing[:3])}); "
                        f"it was written by another configuration")
    try:
        module.load_state_dict(saved, strict=False)
    except RuntimeError as exc:
        raise UserError(f"{path}: the checkpoint's {key} does not fit ({str(exc).splitlines()[0][:160]})") from None


def _seed_seq_state(rng: np.random.Generator) -> dict:
    """The generator's seed sequence, whose spawn counter ``bit_generator.state`` leaves out:
    `Generator.spawn` (the Gilbert-Elliott channels of burst erasures) derives its children
    from it, so a resumed run must go on counting where the first one stopped."""
    seq = rng.bit_generator.seed_seq
    return {"entropy": str(seq.entropy), "spawn_key": list(seq.spawn_key), "pool_size": seq.pool_size,
            "n_children_spawned": seq.n_children_spawned}


def _restore_seed_seq(rng: np.random.Generator, saved: dict, path: Path) -> None:
    """Advance ``rng``'s spawn counter (a fresh generator of the same seed) to the saved one."""
    seq = rng.bit_generator.seed_seq
    mine = _seed_seq_state(rng)
    if any(mine[k] != saved[k] for k in ("entropy", "spawn_key", "pool_size")):
        raise UserError(f"{path}: the checkpoint was written with another seed; resume with the seed it used")
    if saved["n_children_spawned"] < seq.n_children_spawned:
        raise UserError(f"{path}: cannot resume: the generator already spawned more children than the checkpoint's")
    seq.spawn(saved["n_children_spawned"] - seq.n_children_spawned)  # only the counter matters


def load_state(out_dir: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
               rng: np.random.Generator, plan: "StepPlan | None" = None) -> tuple[int, dict]:
    """Restore a checkpoint written by `save_state` into ``modules``, ``optimizer``, ``rng``
    (and torch's generator) and ``plan`` (a budget's fixed step count); returns (step, extra).
    `UserError` if there is none."""
    path = out_dir / STATE_FILE
    if not path.is_file():
        raise UserError(f"--resume: no checkpoint {path} (run without --resume first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{path}: cannot read the training checkpoint ({str(exc).splitlines()[0][:160]})") from None
    for key, module in modules.items():
        _load_trained_state(module, state["modules"][key], key, path)
    optimizer.load_state_dict(state["optimizer"])
    rng.bit_generator.state = json.loads(state["numpy_rng"])
    if "numpy_seed_seq" in state:  # (absent from checkpoints written before it was kept)
        _restore_seed_seq(rng, json.loads(state["numpy_seed_seq"]), path)
    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and state["cuda_rng"].numel():
        torch.cuda.set_rng_state(state["cuda_rng"])
    if plan is not None:
        plan.restore(json.loads(state.get("plan", "{}")))
    return int(state["step"]), json.loads(state["extra"])


class StepPlan:
    """How many steps a run takes: ``steps``, or fewer when a wall-clock ``budget_s`` says so.

    With a budget, the loop times ``probe`` steps (after two warm-up steps that pay for
    allocation and kernel selection), then fixes ``steps`` to what fits in the budget (never
    more than the configured number). The learning-rate schedules read ``plan.steps`` when
    called, so the cosine decay ends where the run ends. Recipes keep ``probe`` within their
    warm-up, where the schedule does not depend on the total: such a run then equals a run
    with ``steps`` set to the printed number (its exact rerun).
    """

    def __init__(self, steps: int, budget_s: float | None = None, probe: int = 20):
        self.steps, self.budget_s, self.probe = int(steps), budget_s, int(probe)
        self.fitted = False  # ``steps`` fixed by the budget (after the probe)

    @property
    def probing(self) -> bool:
        """Whether the loop still has to time steps to fix ``steps``."""
        return self.budget_s is not None and not self.fitted

    @classmethod
    def from_config(cls, config: dict) -> "StepPlan":
        budget = config.get("budget_s")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0):
            raise UserError(f"config budget_s={budget!r}: must be null or a number of seconds > 0")
        return cls(config["steps"], budget, max(2, min(20, int(config.get("warmup", 22)) - 2)))

    def fit(self, done: int, elapsed_s: float, per_step_s: float) -> None:
        """Fix ``steps`` after ``done`` steps in ``elapsed_s`` at ``per_step_s`` each."""
        left = max(0.0, self.budget_s - elapsed_s)
        self.steps = min(self.steps, done + max(1, int(left / max(per_step_s, 1e-9))))
        self.fitted = True

    def state(self) -> dict:
        """What a checkpoint keeps: a budget's fixed step count (timing is not reproducible,
        so a resumed run must not probe again)."""
        return {"steps": self.steps, "fitted": self.fitted}

    def restore(self, saved: dict) -> None:
        """Take a checkpoint's fixed step count (when this run has a budget too; a later
        ``steps`` that is smaller still wins)."""
        if self.budget_s is not None and saved.get("fitted"):
            self.steps, self.fitted = min(self.steps, int(saved["steps"])), True


def lr_schedule(opt: torch.optim.Optimizer, warmup: int, plan: StepPlan, start: int):
    """Linear warm-up then cosine decay to 10 % of the peak learning rate over ``plan.steps``
    (read at each step: a budgeted plan fixes it after its probe), positioned at step ``start``
    (a resumed optimizer's groups carry their ``initial_lr``)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(warmup, plan), last_epoch=start - 1)


def _warmup_cosine(warmup: int, plan: StepPlan):
    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        t = min(1.0, (i - warmup) / max(1, plan.steps - warmup))
        return float(0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * t)))
    return factor


def train_loop(plan: StepPlan, start: int, step_fn: Callable[[int], dict[str, float]],
               checkpoint: Callable[[int], None], checkpoint_every: int, desc: str,
               log_path: Path | None = None) -> list[dict]:
    """Run ``step_fn(step)`` for step = start .. plan.steps-1 under a tqdm bar, checkpointing every
    ``checkpoint_every`` steps and at the end; appends one JSON line per step to ``log_path``.
    With a budget (`StepPlan`), the number of steps is fixed after the probe and printed."""
    from tqdm import tqdm

    history = []
    t0 = time.perf_counter()
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if start:
            trim_log(log_path, start)
    log = open(log_path, "a" if start else "w") if log_path is not None else None
    probe_from = probe_t0 = None
    try:
        with tqdm(total=plan.steps, initial=start, desc=desc, mininterval=5.0, dynamic_ncols=True) as bar:
            step = start
            while step < plan.steps:
                stats = step_fn(step)
                stats = {k: float(v) for k, v in stats.items()}
                history.append(stats)
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(stats.items())[:4]}, refresh=False)
                bar.update(1)
                if log is not None:
                    log.write(json.dumps({"step": step, "elapsed_s": round(time.perf_counter() - t0, 2), **stats}) + "\n")
                    log.flush()
                step += 1
                if plan.probing and step - start == 2:
                    probe_from, probe_t0 = step, time.perf_counter()
                elif probe_from is not None and step - probe_from == plan.probe:
                    now = time.perf_counter()
                    plan.fit(step, now - t0, (now - probe_t0) / plan.probe)
                    probe_from = None
                    bar.total = plan.steps
                    bar.write(f"{desc}: budget {plan.budget_s:g} s -> {plan.steps} steps "
                              f"({(now - probe_t0) / plan.probe * 1e3:.1f} ms/step); rerun exactly with steps={plan.steps}")
                if step % checkpoint_every == 0 or step == plan.steps:
                    checkpoint(step)
    finally:
        if log is not None:
            log.close()
    return history


def trim_log(log_path: Path, start: int) -> None:
    """Drop the log's rows of steps >= ``start`` (written after the checkpoint a run resumes
    from; the resumed run logs them again), atomically."""
    if not log_path.is_file():
        return
    rows = log_path.read_text().splitlines(keepends=True)
    kept = [row for row in rows if _logged_step(row) < start]
    if len(kept) < len(rows):
        tmp = log_path.with_name(log_path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, log_path)


def _logged_step(row: str) -> float:
    try:
        return int(json.loads(row)["step"])
    except (ValueError, KeyError, TypeError):
        return float("inf")  # a torn last line (killed mid-write): dropped with the later steps


def make_optimizer(params, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.999)
                   ) -> torch.optim.Optimizer:
    """AdamW (the paper's optimizer for both stages)."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise UserError("nothing to train: no parameter requires a gradient")
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))


def set_threads(threads: int) -> None:
    """Torch CPU threads for this process (the recipes default to 1: the machine is shared)."""
    if threads > 0:
        torch.set_num_threads(threads)


def prepare(config: dict) -> tuple[str, "Path", np.random.Generator]:
    """What every recipe sets up first: torch threads, the device, the output folder and the
    recipe's numpy generator (seeded from the config)."""
    from pathlib import Path

    set_threads(int(config["threads"]))
    device = pick_device(config["device"])
    if device.startswith("cuda"):
        # TF32 matmuls/convolutions. (cuDNN autotuning only where shapes are fixed: the codec
        # recipe; encoding utterances of varying length re-tuned for each one, 0.5 s apiece.)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return device, Path(config["out_dir"]).expanduser(), np.random.default_rng(config["seed"])
