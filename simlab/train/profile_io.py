"""Writing profile folders (``profile.yaml``, read by `simlab.models.profiles`).

Recipes chain through them: `train lm` writes a staging profile (codec + base LM) that
`train lora` and `train controller` take as ``profile``; `simlab.train.ship` writes the
shipped ``simlab/models/small/`` the same way. Paths are written relative to the folder when
the file lies inside it, absolute otherwise.
"""
from __future__ import annotations

from pathlib import Path

import yaml


def _rel(folder: Path, path: Path | str | None) -> str | None:
    if path is None:
        return None
    path = Path(path).resolve()
    try:
        rel = path.relative_to(folder.resolve())
        return str(rel) if str(rel) != "." else "."
    except ValueError:
        return str(path)


def write_profile(folder: str | Path, name: str, mimi: Path | str, lm: Path | str, lm_kwargs: dict | str,
                  mimi_kwargs: dict | str = "small", lora: Path | str | None = None,
                  controller: Path | str | None = None, controller_kwargs: dict | None = None,
                  lm_dtype: str = "float32", trained: bool = True) -> Path:
    """Write ``folder/profile.yaml``; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    spec = {
        "name": name,
        "trained": trained,
        "mimi": {"checkpoint": _rel(folder, mimi), "kwargs": mimi_kwargs},
        "lm": {"checkpoint": _rel(folder, lm), "kwargs": lm_kwargs, "dtype": lm_dtype},
        "controller": {"kwargs": controller_kwargs or {}},
    }
    if lora is not None:
        spec["lm"]["lora"] = _rel(folder, lora)
    if controller is not None:
        spec["controller"]["checkpoint"] = _rel(folder, controller)
    path = folder / "profile.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
