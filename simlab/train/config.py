"""Recipe configurations: YAML files shipped in `simlab/train/configs/`, merged over defaults.

A recipe's config is a flat mapping (plus nested mappings where a recipe says so). Unknown
keys are refused, so a typo never silently trains with a default.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from simlab.errors import UserError

CONFIG_DIR = Path(__file__).with_name("configs")
RECIPES = ("codec", "lm", "lora", "controller", "evaluate")
#: Written at the start of a path in a config, it stands for `train_dir()`.
TRAIN_DIR = "{train_dir}"


def train_dir() -> Path:
    """Where the recipes keep their stages and caches by default: the user's cache folder
    (``$XDG_CACHE_HOME/simlab/train``, else ``~/.cache/simlab/train``), never a fixed machine path."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simlab" / "train"


def _expand_train_dir(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _expand_train_dir(v) for k, v in node.items()}
    if isinstance(node, str) and node.startswith(TRAIN_DIR):
        return str(train_dir()) + node[len(TRAIN_DIR):]
    return node


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
    return _expand_train_dir(config)


#: Keys that may be null whatever their shipped value (and the type they take otherwise).
NULLABLE = {"budget_s": (int, float), "init": str, "lora": str, "ship_dir": str}
#: Keys shipped as whole numbers that take any real number.
REAL = {"max_minutes", "erasures.burst", "burst.length", "silence_db", "speech_db"}


def _merge(config: dict, layer: dict, where: str, prefix: str) -> None:
    for key, value in layer.items():
        if key not in config:
            raise UserError(f"{where}: unknown key {prefix}{key} (allowed: {', '.join(sorted(config))})")
        if isinstance(config[key], dict) and config[key] and isinstance(value, dict):
            _merge(config[key], value, where, f"{prefix}{key}.")
        else:
            value = _real_from_text(config[key], value, f"{prefix}{key}")
            check_type(config[key], value, f"{prefix}{key}", where)
            config[key] = copy.deepcopy(value)


def _real_from_text(default: Any, value: Any, key: str) -> Any:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string: where a real number belongs, take it as one."""
    if isinstance(value, str) and _expected(default, key) == (int, float):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def check_type(default: Any, value: Any, key: str, where: str) -> None:
    """`UserError` unless ``value`` has the type of the shipped ``default`` of ``key`` (the
    recipes' range checks assume it: a string where a number belongs would otherwise fail
    deep inside training with a traceback)."""
    if value is None and (default is None or key in NULLABLE):
        return
    expected = _expected(default, key)
    if expected is not None and not _is(value, expected):
        raise UserError(f"{where}: config {key}={value!r}: must be {_describe(expected)}")
    if isinstance(default, list) and default:  # elements typed like the shipped first one
        for i, item in enumerate(value):
            check_type(default[0], item, f"{key}[{i}]", where)


def _expected(default: Any, key: str) -> type | tuple | None:
    if default is None:
        return NULLABLE.get(key)
    if isinstance(default, bool):
        return bool
    if isinstance(default, (int, float)):
        return int if isinstance(default, int) and key.split("[")[0] not in REAL else (int, float)
    return dict if isinstance(default, dict) else list if isinstance(default, (list, tuple)) else type(default)


def _is(value: Any, expected: type | tuple) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # YAML's true/false are no numbers here
    return isinstance(value, kinds)


def _describe(expected: type | tuple) -> str:
    names = {bool: "true or false", int: "an int", str: "a string", dict: "a mapping", list: "a list",
             (int, float): "a number"}
    return names.get(expected, getattr(expected, "__name__", str(expected)))


def check_training(config: dict) -> None:
    """Range checks of the keys every training recipe shares."""
    for key, low, high, integer in (("steps", 1, 10**7, True), ("checkpoint_every", 1, 10**7, True),
                                    ("warmup", 0, 10**7, True), ("seed", 0, 2**32 - 1, True),
                                    ("threads", 0, 1024, True), ("grad_clip", 1e-9, 1e9, False),
                                    ("weight_decay", 0.0, 10.0, False)):
        check_range(config, key, low, high, integer)


def check_range(config: dict, key: str, low: float, high: float, integer: bool = False) -> None:
    """`UserError` unless ``config[key]`` is a number (an int if asked) in [low, high]."""
    value = config.get(key)
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok or not low <= value <= high:
        kind = "an int" if integer else "a number"
        raise UserError(f"config {key}={value!r}: must be {kind} in [{low}, {high}]")
