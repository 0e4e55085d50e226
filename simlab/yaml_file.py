"""YAML as simlab reads it: safe, and a key given twice in one mapping is an error.

PyYAML keeps the last of two equal keys without a word, so ``seed: 1`` ... ``seed: 2`` would run
with seed 2 while the file seems to say 1. Scenarios, experiments, recipe configs and latency
profiles all go through `load_yaml` (or `UniqueKeyLoader`), which refuses that in one line.

Numbers are read as engineers write them: PyYAML follows YAML 1.1, whose floats need a dot and a
signed exponent (``1e6``, ``1.0e15``, ``-2E-3`` and ``-.5`` are strings there); `UniqueKeyLoader`
also reads every float of YAML 1.2's core schema as a float (``.inf`` and ``.nan`` as before).
"""
from __future__ import annotations

import re
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


# YAML 1.2 core schema floats (https://yaml.org/spec/1.2.2/#1023-core-schema); tried after
# SafeLoader's own resolvers, so integers stay integers and YAML 1.1 floats resolve as before.
UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."))


#: Limits that keep a malformed or hostile file from hanging a command: simlab's YAML files are a
#: few kilobytes, a few levels deep (a scenario six), and aliases must not multiply them.
MAX_YAML_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000


def _tag_name(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _check_shape(data: Any, source: str) -> None:
    """`UserError` for data nested deeper than `MAX_DEPTH`, holding itself (``a: &x [*x]``) or
    larger than `MAX_NODES` once aliases are expanded (as validation and JSON output expand them)."""
    sizes: dict[int, int] = {}

    def size(node: Any, depth: int, path: set[int]) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in path:
            raise UserError(f"{source}: an alias refers to a mapping or list that holds it (a cycle)")
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            raise UserError(f"{source}: nested more than {MAX_DEPTH} levels deep")
        path.add(id(node))
        items = [*node.keys(), *node.values()] if isinstance(node, dict) else node
        total = 1
        for item in items:
            total += size(item, depth + 1, path)
            if total > MAX_NODES:
                raise UserError(f"{source}: more than {MAX_NODES} values (aliases expanded)")
        path.discard(id(node))
        sizes[id(node)] = total
        return total

    size(data, 0, set())


def load_yaml(text: str, source: str) -> Any:
    """``text`` parsed; `UserError` naming ``source`` (a file, ``--set X``) and the line when it
    is not valid YAML, repeats a key, uses a tag SafeLoader does not know (``!!python/object``),
    or is nested or aliased beyond what a simlab file needs (`_check_shape`)."""
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except DuplicateKeyError as exc:
        raise UserError(f"{source}: duplicate key {exc.key!r} at line {exc.problem_mark.line + 1}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        tag = re.match(r"could not determine a constructor for the tag '(.*)'$", getattr(exc, "problem", "") or "")
        if tag:
            raise UserError(f"{source}: the tag {_tag_name(tag.group(1))}{where} is not allowed (simlab reads plain "
                            f"YAML: mappings, lists, strings, numbers, booleans)") from None
        raise UserError(f"{source}: not valid YAML{where}") from None
    except RecursionError:
        raise UserError(f"{source}: nested more than {MAX_DEPTH} levels deep") from None
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        # PyYAML's constructors raise these for an explicit tag on a value it cannot take (!!float x)
        why = str(exc).splitlines()[0] if isinstance(exc, ValueError) and str(exc) else "a tagged value it cannot read"
        raise UserError(f"{source}: not valid YAML ({why})") from None
    _check_shape(data, source)
    return data


def read_yaml_file(path: str | Path) -> Any:
    """The YAML file at ``path``; `UserError` when it is missing or not a regular file (saying
    which: a directory, a device, a symbolic link loop), unreadable, too large or not valid YAML."""
    from simlab.file_kind import not_a_file

    path = Path(path)
    what = not_a_file(path)
    if what == "does not exist":
        raise UserError(f"{path}: file not found")
    if what is not None:
        raise UserError(f"{path}: {what}, not a YAML file")
    if path.stat().st_size > MAX_YAML_BYTES:
        raise UserError(f"{path}: {path.stat().st_size} bytes; a YAML file simlab reads is at most {MAX_YAML_BYTES}")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    return load_yaml(text, str(path))
