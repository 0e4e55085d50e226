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
    (W_0 + BA in its linears) that streams. ``lm`` itself is modified."""
    from peft import PeftModel

    folder = Path(folder)
    missing = [f for f in ADAPTER_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"LoRA adapter folder {folder}: missing {', '.join(missing)}")
    try:
        model = PeftModel.from_pretrained(lm, str(folder), is_trainable=False)
    except Exception as err:  # peft raises many kinds for a corrupt or mismatched adapter
        raise UserError(f"LoRA adapter folder {folder}: cannot load it onto this LM "
                        f"({type(err).__name__}: {_first_reason(err)})") from err
    return model.merge_and_unload().eval()


def _first_reason(err: Exception) -> str:
    """The informative line of a (possibly multi-line) error: a size mismatch if named."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines:
        if "size mismatch" in line:
            return line
    return lines[0] if lines else ""
