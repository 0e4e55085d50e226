"""Recipe configurations: YAML files shipped in `simlab/train/configs/`, merged over defaults.

A recipe's config is a flat mapping (plus nested mappings where a recipe says so). Unknown
keys are refused, so a typo never silently trains with a default.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from simlab.errors import UserError

CONFIG_DIR = Path(__file__).with_name("configs")
RECIPES = ("codec", "lm", "lora", "controller", "evaluate")


def default_config_path(recipe: str) -> Path:
    """The shipped YAML of ``recipe``."""
    if recipe not in RECIPES:
        raise UserError(f"unknown recipe {recipe!r} (known: {', '.join(RECIPES)})")
    return CONFIG_DIR / f"{recipe}.yaml"


def load_config(recipe: str, path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict:
    """The shipped config of ``recipe``, updated by the YAML at ``path`` and then ``overrides``.

    Every key of ``path`` and ``overrides`` must exist in the shipped config (typos are errors).
    """
    from simlab.yaml_file import read_yaml_file

    config = read_yaml_file(default_config_path(recipe)) or {}
    layers: list[tuple[str, dict]] = []
    if path is not None:
        layers.append((str(path), read_yaml_file(path) or {}))
    if overrides:
        layers.append(("command line", overrides))
    for where, layer in layers:
        if not isinstance(layer, dict):
            raise UserError(f"{where}: a recipe config must be a mapping")
        _merge(config, layer, where, "")
    return config


def _merge(config: dict, layer: dict, where: str, prefix: str) -> None:
    for key, value in layer.items():
        if key not in config:
            raise UserError(f"{where}: unknown key {prefix}{key} (allowed: {', '.join(sorted(config))})")
        if isinstance(config[key], dict) and isinstance(value, dict):
            _merge(config[key], value, where, f"{prefix}{key}.")
        else:
            config[key] = copy.deepcopy(value)


def check_range(config: dict, key: str, low: float, high: float, integer: bool = False) -> None:
    """`UserError` unless ``config[key]`` is a number (an int if asked) in [low, high]."""
    value = config.get(key)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not low <= value <= high:
        kind = "an int" if integer else "a number"
        raise UserError(f"config {key}={value!r}: must be {kind} in [{low}, {high}]")
