"""Pydantic's validation errors as the one-line messages users read: the key path and what is
wrong (`network.forward.loss.p: 1.7 is not in [0, 1]`), with a did-you-mean for unknown keys."""
from __future__ import annotations

import difflib
from typing import Any, Callable

from pydantic import BaseModel

_UNION_TAGS = {"uniform", "gilbert_elliott", "trace", "synthetic", "largesc", "opus", "aac", "ewma", "window"}
_TYPE_NAMES = {"float": "a number", "int": "an integer", "bool": "true or false", "string": "a string",
               "dict": "a mapping", "list": "a list", "model": "a mapping"}


def _fields_at(loc: tuple) -> list[str]:
    """The keys the model at ``loc`` accepts (for did-you-mean)."""
    from simlab.scenario import Scenario

    model: Any = Scenario
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        if part in _UNION_TAGS:
            model = _tagged(part)
            continue
        field = model.model_fields.get(part) if hasattr(model, "model_fields") else None
        if field is None:
            return []
        model = _model_of(field.annotation)
    return list(model.model_fields) if hasattr(model, "model_fields") else []


def _tagged(tag: str):
    from simlab.scenario import (AacSystem, Ewma, GilbertElliottLoss, LargeSCSystem, OpusSystem, SyntheticSystem,
                                 TraceLoss, UniformLoss, WindowEstimator)

    for cls in (UniformLoss, GilbertElliottLoss, TraceLoss, SyntheticSystem, LargeSCSystem, OpusSystem,
                AacSystem, Ewma, WindowEstimator):
        lit = cls.model_fields.get("model") or cls.model_fields.get("kind")
        if lit is not None and tag in getattr(lit.annotation, "__args__", ()):
            return cls
    return None


def _model_of(ann):
    import typing

    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        m = _model_of(arg)
        if m is not None:
            return m
    return None


def format_error(err: dict, fields_at: Callable[[tuple], list[str]] | None = None) -> str:
    """One pydantic error as one line: the key path, then what is wrong with the value.

    ``fields_at(loc)`` lists the keys the model at ``loc`` accepts (for did-you-mean); by
    default the scenario's. Other YAML files (experiments) pass their own."""
    loc = tuple(p for p in err["loc"] if p not in _UNION_TAGS)
    path = ".".join(str(p) for p in loc) or "(top level)"
    kind, value = err["type"], err.get("input")
    if kind == "extra_forbidden":
        key = str(err["loc"][-1])
        allowed = [f for f in (fields_at or _fields_at)(err["loc"][:-1]) if f != "base_dir"]
        near = difflib.get_close_matches(key, allowed, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else f" (known: {', '.join(allowed)})"
        return f"{path}: unknown key{hint}"
    if kind == "missing":
        return f"{path}: missing (required)"
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
    if kind == "greater_than_equal":
        return f"{path}: {value!r} is not >= {err['ctx']['ge']}"
    if kind == "less_than_equal":
        return f"{path}: {value!r} is not <= {err['ctx']['le']}"
    if kind == "finite_number":
        return f"{path}: {value!r} is not a finite number"
    if kind == "string_too_short":
        return f"{path}: must not be empty"
    base = kind.split("_")[0]
    if base in _TYPE_NAMES:
        return f"{path}: expected {_TYPE_NAMES[base]}, got {value!r}"
    return f"{path}: {err['msg']}"
