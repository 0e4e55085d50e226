"""YAML as simlab reads it: safe, and a key given twice in one mapping is an error.

PyYAML keeps the last of two equal keys without a word, so ``seed: 1`` ... ``seed: 2`` would run
with seed 2 while the file seems to say 1. Scenarios, experiments, recipe configs and latency
profiles all go through `load_yaml` (or `UniqueKeyLoader`), which refuses that in one line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from simlab.errors import UserError

_MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping that names one key twice; ``key`` and ``problem_mark`` say which and where."""

    def __init__(self, key: Any, mark):
        super().__init__(None, None, f"duplicate key {key!r}", mark)
        self.key = key


class UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that raises `DuplicateKeyError` for a key repeated in a mapping.

    Keys brought in by a ``<<`` merge may be overridden (that is what merges are for): only the
    keys written in the mapping itself are compared."""

    def flatten_mapping(self, node):
        # Check before the first flattening: it writes merged keys into the node itself (and a
        # merged node is flattened again wherever an alias of it is used).
        checked = self.__dict__.setdefault("_checked", set())
        if id(node) not in checked:
            checked.add(id(node))
            self._check_unique(node)
        super().flatten_mapping(node)

    def _check_unique(self, node) -> None:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: SafeLoader's own error says so
                continue
            if duplicate:
                raise DuplicateKeyError(key, key_node.start_mark)
            seen.add(key)


def load_yaml(text: str, source: str) -> Any:
    """``text`` parsed; `UserError` naming ``source`` (a file, ``--set X``) and the line when it
    is not valid YAML or repeats a key."""
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as exc:
        raise UserError(f"{source}: duplicate key {exc.key!r} at line {exc.problem_mark.line + 1}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{source}: not valid YAML{where}") from None


def read_yaml_file(path: str | Path) -> Any:
    """The YAML file at ``path``; `UserError` when it is missing, unreadable or not valid YAML."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    return load_yaml(text, str(path))
