"""Pydantic's validation errors as the one-line messages users read: the key path and what is
wrong (`network.forward.loss.p: 1.7 is not in [0, 1]`), with a did-you-mean for unknown keys."""
from __future__ import annotations

import difflib
import typing

from pydantic import BaseModel

_TYPE_NAMES = {"float": "a number", "int": "an integer", "bool": "true or false", "string": "a string",
               "dict": "a mapping", "list": "a list", "model": "a mapping"}


#: Error kinds whose message is a template of the value and the error's context.
_PLAIN = {"missing": "missing (required)", "greater_than_equal": "{value!r} is not >= {ge}",
          "less_than_equal": "{value!r} is not <= {le}", "finite_number": "{value!r} is not a finite number",
          "string_too_short": "must not be empty"}


def _models_in(ann) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, lists, dicts)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list = []
    for arg in typing.get_args(ann):
        out += [m for m in _models_in(arg) if m not in out]
    return out


def _tag_of(model: type[BaseModel]) -> str | None:
    """The discriminator value a spec model names itself with (``kind``/``model``, a queue's
    ``discipline``)."""
    for name in ("kind", "model", "discipline"):
        fld = model.model_fields.get(name)
        args = typing.get_args(fld.annotation) if fld is not None else ()
        if len(args) == 1 and isinstance(args[0], str):
            return args[0]
    return None


def _walk(root: type[BaseModel], loc: tuple) -> tuple[tuple, list[str]]:
    """``loc`` without the union tags pydantic puts in it, and the keys the model at its end
    accepts (for did-you-mean)."""
    kept: list = []
    models: list = [root]
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        tagged = [m for m in models if _tag_of(m) == part]
        if len(models) > 1 and tagged:  # a union member, chosen by its tag: not a key
            models = tagged
            continue
        kept.append(part)
        fields = [m.model_fields[part] for m in models if part in m.model_fields]
        models = [x for f in fields for x in _models_in(f.annotation)]
    allowed = list(models[0].model_fields) if len(models) == 1 else []
    return tuple(kept), allowed


def format_error(err: dict, root: type[BaseModel]) -> str:
    """One pydantic error of validating ``root`` (the scenario's model, an experiment's) as one
    line: the key path, then what is wrong with the value (a did-you-mean for unknown keys)."""
    loc, _ = _walk(root, tuple(err["loc"]))
    path = ".".join(str(p) for p in loc) or "(top level)"
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        allowed = [f for f in _walk(root, tuple(err["loc"][:-1]))[1] if f != "base_dir"]
        near = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else f" (known: {', '.join(allowed)})"
        return f"{path}: unknown key{hint}"
    if kind == "literal_error":
        return f"{path}: {value!r} is not one of {err['ctx']['expected'].replace(chr(39), '')}"
    if kind == "union_tag_invalid":
        tags = err["ctx"]["expected_tags"].replace("'", "")
        near = difflib.get_close_matches(str(err["ctx"]["tag"]), tags.split(", "), n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        return f"{path}.{err['ctx']['discriminator'].strip(chr(39))}: {err['ctx']['tag']!r} is not one of {tags}{hint}"
    if kind == "union_tag_not_found":
        return f"{path}: needs {err['ctx']['discriminator']}"
    if kind == "value_error":  # a model-level check's message names its own keys
        msg = err["msg"].removeprefix("Value error, ")
        return f"{path}: {msg}" if loc else msg
    if kind in _PLAIN:
        return f"{path}: " + _PLAIN[kind].format(value=value, **err.get("ctx", {}))
    base = kind.split("_")[0]
    if base in _TYPE_NAMES:
        return f"{path}: expected {_TYPE_NAMES[base]}, got {value!r}"
    return f"{path}: {err['msg']}"


def describe_errors(errors: list[dict], root: type[BaseModel]) -> str:
    """The one line for a failed validation: the most telling error, and how many more there
    are. A misspelt required key is two errors (the key missing, an unknown key beside it):
    the unknown key's did-you-mean is the one that helps."""
    first = errors[0]
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    for e in errors:
        if e["type"] == "extra_forbidden":
            parent, key = tuple(e["loc"][:-1]), str(e["loc"][-1])
            names = [str(m[-1]) for m in missing if m[:-1] == parent]
            if difflib.get_close_matches(key, names, n=1):
                first = e
                break
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return format_error(first, root) + more
