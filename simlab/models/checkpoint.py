"""Reading and writing weights without ever unpickling arbitrary code.

Checkpoints are safetensors files. A ``.pt``/``.pth``/``.bin`` file is accepted only through
``torch.load(weights_only=True)``, which refuses pickled objects other than tensors and plain
containers; anything else, a missing file or a corrupt one is a `UserError` naming the file.
"""
from __future__ import annotations

from pathlib import Path

import torch

from simlab.errors import UserError

SAFETENSORS_SUFFIXES = (".safetensors", ".sft", ".sfts")
TORCH_SUFFIXES = (".pt", ".pth", ".bin")


def load_state_dict(path: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The flat ``name -> tensor`` mapping stored in ``path`` (tensors on ``device``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SAFETENSORS_SUFFIXES + TORCH_SUFFIXES:
        raise UserError(f"{path}: not a weights file (expected {', '.join(SAFETENSORS_SUFFIXES + TORCH_SUFFIXES)})")
    if not path.is_file():
        raise UserError(f"{path}: weights file not found")
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors.torch import load_file

        try:
            state = load_file(str(path), device=str(device))
        except Exception as exc:  # safetensors' message says what is wrong with the header
            raise UserError(f"{path}: not a valid safetensors file ({_one_line(exc)})") from None
    else:
        try:
            state = torch.load(str(path), map_location=device, weights_only=True)
        except Exception as exc:  # pickled code, truncated zip, ...: refuse, never unpickle
            raise UserError(f"{path}: refused, not a plain tensor checkpoint ({_one_line(exc)})") from None
    return _flat_tensors(state, path)


def save_state_dict(state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write ``state`` as safetensors (tensors made contiguous and moved to CPU; shared
    storage is cloned, since safetensors refuses aliased tensors)."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        raise UserError(f"{path}: weights are saved as safetensors (suffix .safetensors)")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}, str(path))


def _flat_tensors(state: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise UserError(f"{path}: expected a flat mapping of names to tensors")
    return state


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
