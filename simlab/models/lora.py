"""LoRA adapters for moshi's `LMModel` through `peft` (paper: W = W_0 + BA, rank r = 8).

moshi's layers are plain `nn.Linear` modules, so peft wraps them directly. moshi's streaming
code refuses wrapped layers, so an adapter is merged into the base weights
(`merge_and_unload`) before inference; training uses the teacher-forced `lm(codes)` path,
which works on the wrapped model and gives the same logits as the streaming steps.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi compiles on first call otherwise (~20 s)

from torch import nn  # noqa: E402

from simlab.errors import UserError  # noqa: E402

#: Last name components of the moshi linears LoRA adapts by default: attention projections
#: (one per depformer step with weights per step), the gated feed-forward, the projections
#: into the depth transformer and the per-codebook output heads. The text head and the
#: embeddings stay frozen (no text is used).
DEFAULT_TARGET_SUFFIXES = ("in_projs", "out_projs", "linear_in", "linear_out", "depformer_in",
                           "linears")

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def default_target_modules(lm: nn.Module) -> list[str]:
    """Full names of the `nn.Linear` modules of ``lm`` that LoRA adapts by default."""
    names = []
    for name, module in lm.named_modules():
        parts = name.split(".")
        owner = parts[-2] if len(parts) >= 2 and parts[-1].isdigit() else parts[-1]
        if isinstance(module, nn.Linear) and owner in DEFAULT_TARGET_SUFFIXES:
            names.append(name)
    return names


def add_lora(lm: nn.Module, rank: int = 8, alpha: int = 16, dropout: float = 0.0,
             target_modules: list[str] | str | None = None):
    """Wrap ``lm`` (modified in place) with fresh LoRA adapters; returns the `peft.PeftModel`.

    Only the adapter weights are trainable. ``target_modules``: peft's syntax (names, name
    suffixes, or one regular expression); None = `default_target_modules(lm)`.
    """
    from peft import LoraConfig, get_peft_model

    if not isinstance(rank, int) or rank < 1:
        raise ValueError(f"add_lora: rank={rank!r} must be an int >= 1")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"add_lora: dropout={dropout!r} must be in [0, 1)")
    targets = default_target_modules(lm) if target_modules is None else target_modules
    if not targets:
        raise ValueError("add_lora: no target modules (the model has no matching nn.Linear)")
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets,
                        bias="none")
    return get_peft_model(lm, config)


def save_lora(model, folder: str | Path) -> Path:
    """Write the adapter of peft ``model`` to ``folder`` (config JSON + safetensors weights)."""
    folder = Path(folder)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def load_lora(lm: nn.Module, folder: str | Path):
    """Load the adapter in ``folder`` onto base ``lm`` and merge it: returns a plain `LMModel`
    (W_0 + BA in its linears) that streams. ``lm`` itself is modified.

    A plain adapter on a float32 LM (the shipped ones) is merged here, with peft's arithmetic
    (`_merge_plain`): importing peft (and transformers with it) costs ~3.5 s of a 15 s run.
    Anything else (DoRA, rsLoRA, rank patterns, other dtypes, ...) goes through peft."""
    folder = Path(folder)
    missing = [f for f in ADAPTER_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"LoRA adapter folder {folder}: missing {', '.join(missing)}")
    if _merge_plain(lm, folder):
        return lm.eval()
    from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(lm, str(folder), is_trainable=False)
    except Exception as err:  # peft raises many kinds for a corrupt or mismatched adapter
        raise UserError(f"LoRA adapter folder {folder}: cannot load it onto this LM "
                        f"({type(err).__name__}: {_first_reason(err)})") from err
    return model.merge_and_unload().eval()


#: adapter_config.json keys a plain merge understands, with the values it supports; any other key
#: set to something other than None / {} / [] / False sends the adapter through peft.
_PLAIN_CONFIG = {"peft_type": ("LORA",), "bias": ("none",), "fan_in_fan_out": (False,), "use_dora": (False,),
                 "use_rslora": (False,), "lora_bias": (False,)}
#: keys that do not change a merge: initialisation (overwritten by the weights), dropout (off
#: at inference), bookkeeping.
_MERGE_NEUTRAL = {"r", "lora_alpha", "target_modules", "init_lora_weights", "lora_dropout", "inference_mode",
                  "auto_mapping", "base_model_name_or_path", "revision", "task_type", "peft_version",
                  "megatron_core", "qalora_group_size", "loftq_config"}


def _merge_plain(lm: nn.Module, folder: Path) -> bool:
    """Merge a plain LoRA adapter into float32 ``lm`` as peft's ``merge_and_unload`` does
    (W += (B @ A) * alpha / r, per adapted linear, on the weight's device), bit for bit; False
    (``lm`` untouched) when the adapter or the LM is anything else, for peft to handle."""
    import json

    import torch

    from simlab.models.checkpoint import load_state_dict

    try:
        config = json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError):
        return False  # peft reports it
    if not isinstance(config, dict) or any(config.get(k) not in ok for k, ok in _PLAIN_CONFIG.items()):
        return False
    if any(v not in (None, {}, [], False) for k, v in config.items() if k not in _PLAIN_CONFIG and k not in _MERGE_NEUTRAL):
        return False
    rank, alpha, targets = config.get("r"), config.get("lora_alpha"), config.get("target_modules")
    if (not isinstance(rank, int) or rank < 1 or not isinstance(alpha, (int, float))
            or not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)):
        return False
    modules = dict(lm.named_modules())
    # peft's matching of a list: a module's full name equals a target or ends with "." + target
    chosen = {name for name in modules if any(name == t or name.endswith("." + t) for t in targets)}
    if not chosen or any(type(modules[n]) is not nn.Linear or modules[n].weight.dtype != torch.float32
                         for n in chosen):
        return False
    try:
        state = load_state_dict(folder / "adapter_model.safetensors")
    except UserError:
        return False  # peft reports it, in its words
    prefix = "base_model.model."
    pairs = {n: (state.get(f"{prefix}{n}.lora_A.weight"), state.get(f"{prefix}{n}.lora_B.weight")) for n in chosen}
    if len(state) != 2 * len(chosen) or any(a is None or b is None for a, b in pairs.values()):
        return False
    scaling = alpha / rank
    with torch.no_grad():
        for name, (a, b) in pairs.items():
            weight = modules[name].weight
            if a.shape != (rank, weight.shape[1]) or b.shape != (weight.shape[0], rank):
                return False  # before any weight changed: pairs are checked in full first
        for name, (a, b) in pairs.items():
            weight = modules[name].weight
            # peft holds the adapter in the base layer's dtype and device, then adds B @ A * scaling
            a, b = a.to(weight.device, torch.float32), b.to(weight.device, torch.float32)
            weight.data += (b @ a) * scaling
    # peft leaves the base model frozen; so does this (and some kernels differ in the last bit
    # for weights that require grad, even under no_grad)
    lm.requires_grad_(False)
    return True


def _first_reason(err: Exception) -> str:
    """The informative line of a (possibly multi-line) error: a size mismatch if named."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "size mismatch" in line:
            return line
    return lines[0] if lines else ""
