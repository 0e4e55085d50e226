"""Experiment files (``experiments/*.yaml``): a base scenario and the coordinates to sweep.

An experiment names a base scenario, a ``grid`` of dotted scenario keys and the values each
takes, optionally a list of ``systems`` (each with its own label, system mapping and grid), a
set of ``audio`` files, a number of ``repeats`` and a ``seed``. Expansion into runs lives in
`simlab.batch.expand`; this module only reads and validates, with one-line `UserError`
messages that name the key path, the way `simlab.scenario` does.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from simlab.errors import UserError
from simlab.scenario import read_yaml
from simlab.scenario_errors import format_error

#: Coordinate names that are not grid keys; grid keys always contain a dot or are scenario keys.
LABEL, AUDIO, REPEAT = "label", "audio", "repeat"
#: Scenario keys a grid may not sweep: the batch sets them itself.
_RESERVED = {"seed": "the batch derives each run's seed", "system": "use systems: instead",
             "audio": "use the experiment's audio: instead", "transcript": "set from the audio's .trans.txt",
             "base_dir": "internal", "name": "runs keep the experiment's name"}


def _check_grid(grid: dict[str, list]) -> dict[str, list]:
    import json

    for key, values in grid.items():
        if not key or any(not part for part in key.split(".")):
            raise ValueError(f"{key!r} is not a dotted key path like network.forward.loss.p")
        if key in _RESERVED:
            raise ValueError(f"{key}: cannot be swept ({_RESERVED[key]})")
        if not values:
            raise ValueError(f"{key}: needs at least one value")
        seen = [json.dumps(v, sort_keys=True) for v in values]
        dup = next((v for i, v in enumerate(seen) if v in seen[:i]), None)
        if dup is not None:
            raise ValueError(f"{key}: value {dup} is listed twice")
    return grid


Grid = Annotated[dict[str, list[Any]], AfterValidator(_check_grid)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SystemEntry(Strict):
    """One system of the sweep: its label (a coordinate), its ``system:`` mapping and a grid that
    applies to it alone (e.g. Opus bitrates, LargeSC quantizers)."""

    label: Annotated[str, Field(min_length=1)]
    spec: dict[str, Any]
    overrides: dict[str, Any] = {}  # fixed dotted scenario keys for this system (e.g. its packetization)
    grid: Grid = {}

    @model_validator(mode="after")
    def _has_kind(self):
        if "kind" not in self.spec:
            raise ValueError("spec: needs kind (synthetic, largesc, opus or aac)")
        for key in self.overrides:
            if key in _RESERVED or key.split(".")[0] == "system":
                raise ValueError(f"overrides: {key}: cannot be set here (put system keys in spec)")
        return self


class Experiment(Strict):
    name: str = "experiment"
    description: str = ""
    base: Union[str, dict[str, Any]]  # a scenario file (relative to the experiment) or a mapping
    grid: Grid = {}
    systems: list[SystemEntry] = []
    audio: Optional[Union[str, list[str]]] = None  # folder, glob or file; each file is a coordinate
    audio_limit: Optional[Annotated[int, Field(ge=1)]] = None  # the first N files (sorted) only
    transcripts: bool = True  # look up each audio file's line in a LibriSpeech .trans.txt beside it
    repeats: Annotated[int, Field(ge=1, le=100000)] = 1
    seed: Annotated[int, Field(ge=0)] = 0
    #: Coordinates left out of the seed: runs differing only there share a seed (common random
    #: numbers, e.g. every system sees the same loss pattern).
    same_seed_across: list[str] = []
    base_dir: str = Field(default=".", exclude=True)

    @model_validator(mode="after")
    def _consistent(self):
        labels = [s.label for s in self.systems]
        dup = next((x for i, x in enumerate(labels) if x in labels[:i]), None)
        if dup is not None:
            raise ValueError(f"systems: label {dup!r} is used twice")
        for i, s in enumerate(self.systems):
            both = sorted(set(s.grid) & set(self.grid))
            if both:
                raise ValueError(f"systems.{i}.grid: {both[0]} is also in the experiment's grid")
        known = set(self.grid) | {k for s in self.systems for k in s.grid}
        known |= {LABEL} if self.systems else set()
        known |= {AUDIO} if self.audio is not None else set()
        for name in self.same_seed_across:
            if name == REPEAT:
                raise ValueError("same_seed_across: repeat cannot be shared (repeats would be identical)")
            if name not in known:
                near = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean '{near[0]}'?" if near else f" (coordinates: {', '.join(sorted(known))})"
                raise ValueError(f"same_seed_across: {name!r} is not a coordinate{hint}")
        return self


def parse_experiment(data: Any, base_dir: str | Path = ".", source: str = "experiment") -> Experiment:
    """Validate an experiment mapping; relative paths in it start from ``base_dir``."""
    if not isinstance(data, dict):
        got = "nothing" if data is None else type(data).__name__
        raise UserError(f"{source}: an experiment is a mapping of keys, got {got}")
    try:
        return Experiment.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        errors = exc.errors()
        # A union (str | mapping) reports one error per branch: keep the first, say "a path or a mapping".
        first = errors[0]
        if first["loc"] and first["loc"][0] == "base" and len(first["loc"]) <= 2:
            raise UserError(f"{source}: base: expected a scenario file or a mapping, "
                            f"got {first.get('input')!r}") from None
        if first["loc"] and first["loc"][0] == "audio" and len(first["loc"]) <= 2:
            raise UserError(f"{source}: audio: expected a folder, glob or file, or a list of them, "
                            f"got {first.get('input')!r}") from None
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"{source}: {format_error(first, Experiment)}{more}") from None


def load_experiment(path: str | Path, overrides: list[str] | None = None) -> Experiment:
    """Read and validate an experiment file; its name defaults to the file's stem. ``overrides``
    are ``KEY=VALUE`` for top-level keys (``audio_limit=2``, ``repeats=1``)."""
    from simlab.scenario import apply_overrides

    path = Path(path)
    data = read_yaml(path)
    for item in overrides or []:
        key = item.split("=", 1)[0]
        if "." in key:
            raise UserError(f"--set {item}: only top-level experiment keys (audio_limit, repeats, seed, ...)")
    if overrides and isinstance(data, dict):
        data = apply_overrides(data, overrides)
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": path.stem}
    return parse_experiment(data, path.parent, str(path))
