"""LargeSC, registered like any plugin: Mimi tokens, the adaptive controller, LM concealment
(moshi's models on torch), and its training recipes as the ``simlab train`` command. Without the
``models`` extra (torch) the entry still validates scenarios; building it says what to install."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import model_validator

from simlab.registry import CommandEntry, SystemEntry
from simlab.scenario_bounds import N_Q
from simlab.spec import Strict, in_range


class LargeSCSpec(Strict):
    kind: Literal["largesc"]
    profile: str = "small"
    quantizers: Annotated[int, in_range(1, 2 * N_Q)] = 8
    controller: Literal["learned", "fixed"] = "learned"
    redundant: Annotated[int, in_range(0, 8)] = 0
    concealer: Literal["lm", "repeat", "drop"] = "lm"
    greedy: bool = True
    min_confidence: Annotated[float, in_range(0.0, 1.0)] = 0.0  # lm: leave out guesses the LM rates below this

    @model_validator(mode="after")
    def _controller_limits(self):
        # simlab.actors.largesc.LargeSCSystem refuses these too, but only once its models are
        # loaded: here `simlab check` and a run's validation see them first.
        if self.controller == "fixed" and self.quantizers > N_Q:
            raise ValueError(f"quantizers: {self.quantizers} is not in [1, {N_Q}] with controller: fixed "
                             f"(only the learned controller sends up to {2 * N_Q}, as second copies)")
        if self.controller == "learned" and self.redundant:
            raise ValueError("redundant: the learned controller decides it; use controller: fixed to set it")
        return self


def _torch(ctx) -> None:
    """torch is there (else say what to install), with the run's intra-op threads."""
    from simlab.errors import UserError

    try:
        import torch
    except ImportError:
        raise UserError("system largesc needs torch and moshi: pip install 'simlab[models]' and moshi==0.2.13 "
                        "--no-deps (install.sh does both)") from None
    torch.set_num_threads(ctx.threads)


def build(spec: LargeSCSpec, ctx):
    _torch(ctx)
    from simlab.actors.largesc import LargeSCSystem
    from simlab.models.profiles import load_profile

    models = load_profile(spec.profile, device=ctx.device, seed=ctx.seed)
    return LargeSCSystem(models, quantizers=spec.quantizers, controller=spec.controller, redundant=spec.redundant,
                         concealer=spec.concealer, greedy=spec.greedy, seed=ctx.seed,
                         min_confidence=spec.min_confidence)


def build_batch(spec: LargeSCSpec, ctx, seeds: list[int], batch_costs=None) -> list:
    """``compute.batch``: one call per seed, all on one set of models, their model calls batched
    (`simlab.actors.largesc_batch`); the calls' `System`s, in order."""
    from simlab.errors import UserError

    _torch(ctx)
    from simlab.actors.largesc_batch import LargeSCGroup
    from simlab.models.profiles import load_profile

    models = load_profile(spec.profile, device=ctx.device, seed=ctx.seed)
    if models.random_parts and len(seeds) > 1:
        raise UserError(f"compute.batch: profile {spec.profile} has parts drawn from each call's seed "
                        f"({', '.join(models.random_parts)}), so the calls cannot share one set of models")
    group = LargeSCGroup(models, seeds, quantizers=spec.quantizers, controller=spec.controller,
                         redundant=spec.redundant, concealer=spec.concealer, greedy=spec.greedy,
                         min_confidence=spec.min_confidence, batch_costs=batch_costs)
    return group.members


build.batch = build_batch  # simlab.build.build_batched finds a system's batched factory here


#: torch, moshi and the first call's working memory, once a run (measured: 0.23 GB; 0.42 GB while
#: runs imported peft and transformers).
TORCH_BYTES = 0.23e9
#: The `small` profile's models (Mimi, LM with LoRA, controller), once a run: the flows share them
#: (`LargeSCSystem.sibling`, ``compute.batch``). Measured: 107 MB for one flow, less its state.
SMALL_MODEL_BYTES = 86e6
#: One `small` call's own state on those models (Mimi's streaming buffers, the LM's KV caches over
#: its 3000-step context, 18 MB of it): measured 21 MB a flow (peak RSS of 17 flows less 1 flow, 2 s,
#: batched or not; 102 MB a flow when every flow loaded its own models).
SMALL_BYTES = 21e6
#: moshiko: the bf16 LM (15.4 GB) and Mimi (0.39 GB) files Kyutai publishes, plus 10 % of state.
MOSHIKO_BYTES = 1.1 * (15.4e9 + 0.39e9)
#: moshiko's KV caches per call (not measured): keys and values, 3000 steps x 32 layers x 4096, bf16.
MOSHIKO_STATE_BYTES = 2 * 3000 * 32 * 4096 * 2
#: A folder profile's memory per byte of its safetensors files (small: 107 MB from 39 MB of files).
FOLDER_RATIO = 2.7


def memory(spec: LargeSCSpec) -> tuple[float, float]:
    """Bytes once (torch, and the models every flow shares) and per flow (its streaming state),
    estimated without loading the models: measured for the small profile, from the files for a
    folder (whose per-flow state is taken as small's; a folder with a part drawn at random loads
    that set per flow, so its models count per flow); 0 for what is not known."""
    from pathlib import Path

    if spec.profile == "small":
        return TORCH_BYTES + SMALL_MODEL_BYTES, SMALL_BYTES
    if spec.profile == "moshiko" or spec.profile.startswith("moshiko:"):
        return TORCH_BYTES + MOSHIKO_BYTES, MOSHIKO_STATE_BYTES
    try:
        folder = Path(spec.profile).expanduser()
        files = sum(f.stat().st_size for f in folder.glob("*.safetensors")) if folder.is_dir() else 0
        ratio = 1.1 if (folder / "model.safetensors").is_file() else FOLDER_RATIO  # moshiko's: bf16 as stored
        names = {f.name for f in folder.glob("*.safetensors")}
    except (OSError, RuntimeError, ValueError):  # not a folder this machine can read: the run says so
        return TORCH_BYTES, 0.0
    if not files:
        return TORCH_BYTES, 0.0
    shared = {"mimi.safetensors", "lm.safetensors", "controller.safetensors"} <= names or ratio == 1.1
    return (TORCH_BYTES + ratio * files, SMALL_BYTES) if shared else (TORCH_BYTES, ratio * files + SMALL_BYTES)


ENTRY = SystemEntry("largesc", LargeSCSpec, build, uses_torch=True, memory=memory,
                    profile_key=lambda spec: f"largesc/{spec.profile}")


def _add_train(sub) -> None:
    from simlab.train.cli import add_parser

    add_parser(sub)


TRAIN = CommandEntry("train", _add_train)
