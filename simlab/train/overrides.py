"""``--set key=value`` overrides of a recipe config, shared by `simlab train` (`simlab.train.cli`)
and ``python -m simlab.train.evaluate`` (neither imports the other for it)."""
from __future__ import annotations

from typing import Any

from simlab.errors import UserError
from simlab.yaml_file import load_yaml


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b": {"c": "x"}}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--set {item!r}: expected KEY=VALUE")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = load_yaml(value, f"--set {item}")
    return out
