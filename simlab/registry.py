"""Everything simlab can plug in, by name: systems, loss models (channels), link models,
feedback estimators, metrics, recognizers and command-line commands.

Each is one registered *entry*: a name, a pydantic spec model (the mapping a scenario writes,
whose discriminator ``kind``/``model`` is the name), a factory and its traits. Entries come from
Python entry points (group ``simlab.systems``, ``simlab.channels``, ...), simlab's own exactly
like a third-party plugin's, or from `register` at run time. The scenario's unions, the JSON
Schema, did-you-mean messages, input checks, batch's device decisions, latency profiles and
plots are all derived from here: the core never asks ``kind == ...``.

A plugin that fails to load, or whose name clashes with one already known, is reported in one
line on stderr naming its distribution and entry point; the rest of simlab keeps working.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Iterable, Optional

#: Registry group -> entry point group and the spec field that names an entry.
GROUPS = {"systems": "kind", "channels": "model", "links": "model", "estimators": "kind",
          "metrics": None, "recognizers": None, "commands": None}


def _no_files(spec) -> list[str]:
    return []


@dataclass(frozen=True)
class SystemEntry:
    """A speech system. ``factory(spec, ctx: BuildContext) -> System`` (simlab.actors.base).

    Traits: ``needs_audio`` (False: it makes its own units, like ``synthetic``); ``uses_torch``
    (it runs models on a torch device: ``compute.device`` applies, batch asks Dask for a GPU
    when the device is cuda, the worker sets torch's threads); ``profile_key(spec)``, the name a
    latency profile files its stages under; ``files(spec)``, files it reads (paths as the
    scenario writes them); ``check(spec, scenario)``, input checks beyond the spec's own (no
    model loaded), raising ``ValueError`` with a message; ``memory(spec) -> (once, each)``, the
    bytes its libraries and shared state take once per run and those each flow's instance adds
    (its models), estimated without loading anything (`simlab.run_memory` refuses a run that
    would not fit); ``emodel(spec)``, the codec's E-model factors for this setting, an
    `simlab.metrics.emodel_codecs.Impairment` (Ie, Bpl and where they come from, e.g. G.113's
    table ``G113``) or None where none is known (the ``emodel`` metric then leaves R empty)."""

    name: str
    spec: type
    factory: Callable
    needs_audio: bool = True
    uses_torch: bool = False
    profile_key: Optional[Callable[[Any], str]] = None
    files: Callable[[Any], list[str]] = _no_files
    check: Optional[Callable[[Any, Any], None]] = None
    memory: Optional[Callable[[Any], tuple[float, float]]] = None
    emodel: Optional[Callable[[Any], Any]] = None
    group = "systems"

    def key(self, spec) -> str:
        return self.profile_key(spec) if self.profile_key is not None else self.name


@dataclass(frozen=True)
class ChannelEntry:
    """A loss model. ``factory(spec, rng, resolve) -> LossModel`` (channels.base): ``rng`` a
    ``numpy.random.Generator`` of its own, ``resolve(path)`` a scenario path made absolute.

    Traits: ``files(spec)``; ``nominal_loss(spec)``, the average loss the parameters ask for
    (NaN when unknown: plots then cannot put it on a loss axis); ``carries_state``: a model of
    this kind hands its state (``state``, ``continue_from(state)``) to the next schedule phase
    when that phase is of the same kind (a Gilbert-Elliott burst does not end because the
    parameters changed)."""

    name: str
    spec: type
    factory: Callable
    files: Callable[[Any], list[str]] = _no_files
    nominal_loss: Callable[[Any], float] = lambda spec: float("nan")
    carries_state: bool = False
    group = "channels"


@dataclass(frozen=True)
class LinkEntry:
    """A link model. ``factory(spec, params: LinkParams, env) -> element``: an element like
    `simlab.sim.link.Link` (subclass it): ``put(pkt)`` hands a packet over at ``env.now``,
    ``out.put(pkt)`` delivers it, ``recorder.packet(pkt)`` reports every packet's fate once, and
    ``transmit(pkt, t) -> bool`` decides a fate without an event (the feedback path calls it).
    ``params`` (`simlab.sim.link.LinkParams`) holds the scenario's bandwidth, delay, jitter,
    queue cap, loss model, a jitter generator, link overhead and MTU, and ``resolve(path)`` for
    the files its spec names (``files(spec)``, paths as the scenario writes them). A
    ``ValueError`` from the factory is the scenario's error (``network.forward.link: ...``)."""

    name: str
    spec: type
    factory: Callable
    files: Callable[[Any], list[str]] = _no_files
    group = "links"


@dataclass(frozen=True)
class EstimatorEntry:
    """A loss estimator at the receiver. ``factory(spec, initial_p)`` -> an object with
    ``update(t, expected, received) -> p_hat``."""

    name: str
    spec: type
    factory: Callable
    group = "estimators"


@dataclass(frozen=True)
class MetricEntry:
    """A quality metric: ``func(MetricInput) -> {column: value}`` filling ``columns``;
    ``windowed``: it makes sense on a sliding window; ``higher_is_better``; ``scores_tables``: it
    scores the run's packets.csv and frames.csv (``MetricInput.run``, a
    `simlab.metrics.run_tables.RunTables`, cut to the window per window), not its audio, so it
    runs without audio too. ``scale``: (low, high) that every column's values lie in (MOS 1-5, WER
    0-inf); plots clip confidence bands to it (None: unbounded)."""

    name: str
    func: Callable
    columns: tuple[str, ...]
    windowed: bool = True
    higher_is_better: bool = True
    scores_tables: bool = False
    scale: Optional[tuple[float, float]] = None
    group = "metrics"


@dataclass(frozen=True)
class RecognizerEntry:
    """An offline speech recognizer for WER: ``transcribe(16 kHz float audio) -> text``;
    ``settings()`` describes it, recorded beside every WER it produces."""

    name: str
    transcribe: Callable
    settings: Callable[[], str]
    group = "recognizers"


@dataclass(frozen=True)
class CommandEntry:
    """A ``simlab`` subcommand: ``add_parser(subparsers)`` adds it (and sets its ``fn``)."""

    name: str
    add_parser: Callable
    group = "commands"


ENTRY_TYPES = {c.group: c for c in (SystemEntry, ChannelEntry, LinkEntry, EstimatorEntry, MetricEntry,
                                    RecognizerEntry, CommandEntry)}


@dataclass
class _State:
    entries: dict[str, dict[str, Any]] = field(default_factory=lambda: {g: {} for g in GROUPS})
    origins: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    loaded: bool = False
    version: int = 0


_STATE = _State()


def report_problem(line: str) -> None:
    """A plugin that cannot be used: one line on stderr, kept for `problems`."""
    _warn(line)


def _warn(line: str) -> None:
    _STATE.problems.append(line)
    print(f"simlab: warning: {line}", file=sys.stderr)


def _check_entry(group: str, entry: Any) -> str | None:
    """What is wrong with ``entry`` for ``group``, or None."""
    cls = ENTRY_TYPES[group]
    if not isinstance(entry, cls):
        return f"is a {type(entry).__name__}, not a simlab.registry.{cls.__name__}"
    if not isinstance(entry.name, str) or not entry.name.isidentifier() and not entry.name.replace("-", "_").isidentifier():
        return f"name {entry.name!r} is not a plain identifier"
    tag = GROUPS[group]
    if tag is not None:
        fld = getattr(entry.spec, "model_fields", {}).get(tag)
        if fld is None or getattr(fld.annotation, "__args__", None) != (entry.name,):
            return f"spec {getattr(entry.spec, '__name__', entry.spec)!r} needs a field {tag}: Literal[{entry.name!r}]"
    return None


def _add(group: str, entry: Any, origin: str, replace: bool = False) -> bool:
    problem = _check_entry(group, entry)
    if problem:
        _warn(f"{origin}: {problem}: ignored")
        return False
    known = _STATE.entries[group]
    if entry.name in known and not replace:
        _warn(f"{origin}: {group[:-1]} {entry.name!r} is already provided by {_STATE.origins[group, entry.name]}: "
              f"ignored")
        return False
    known[entry.name] = entry
    _STATE.origins[group, entry.name] = origin
    _STATE.version += 1
    return True


def _own_first(eps: Iterable) -> list:
    """simlab's own entry points first, so a plugin cannot shadow a built-in by load order."""
    def dist(ep) -> str:
        return getattr(getattr(ep, "dist", None), "name", "") or ""
    return sorted(eps, key=lambda ep: (dist(ep) != "simlab", dist(ep), ep.name))


def _load() -> None:
    if _STATE.loaded:
        return
    _STATE.loaded = True
    for group in GROUPS:
        for ep in _own_first(metadata.entry_points(group=f"simlab.{group}")):
            dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
            origin = f"{dist} (entry point {ep.name} = {ep.value} in simlab.{group})"
            try:
                entry = ep.load()
            except Exception as exc:  # a broken plugin must not take simlab down with it
                msg = str(exc).splitlines()[0] if str(exc) else ""
                _warn(f"{origin} failed to load: {type(exc).__name__}: {msg}")
                continue
            if getattr(entry, "name", ep.name) != ep.name:
                _warn(f"{origin}: the entry point is named {ep.name!r} but its entry {entry.name!r}: ignored")
                continue
            _add(group, entry, origin)
    if not _STATE.entries["systems"]:
        _warn("no systems are registered: simlab's entry points are missing (reinstall it: pip install -e .)")


def register(entry: Any, replace: bool = False) -> None:
    """Make ``entry`` (a `SystemEntry`, `ChannelEntry`, ...) known from Python, without an entry
    point: scenarios loaded afterwards accept it. A name already known is refused (ValueError)
    unless ``replace``."""
    _load()
    group = getattr(entry, "group", None)
    if group not in ENTRY_TYPES:
        raise ValueError(f"{entry!r} is not a simlab registry entry")
    problem = _check_entry(group, entry)
    if problem:
        raise ValueError(f"{group[:-1]} {getattr(entry, 'name', '?')!r}: {problem}")
    if entry.name in _STATE.entries[group] and not replace:
        raise ValueError(f"{group[:-1]} {entry.name!r} is already registered by "
                         f"{_STATE.origins[group, entry.name]} (pass replace=True)")
    _add(group, entry, "register() from Python", replace=True)


def unregister(group: str, name: str) -> None:
    """Forget an entry (tests, notebooks)."""
    _load()
    if _STATE.entries[group].pop(name, None) is not None:
        _STATE.origins.pop((group, name), None)
        _STATE.version += 1


def entries(group: str) -> dict[str, Any]:
    """Name -> entry of one group ('systems', 'channels', ...), in registration order."""
    _load()
    return dict(_STATE.entries[group])


def get(group: str, name: str) -> Any:
    """The entry, or KeyError naming the known ones."""
    _load()
    try:
        return _STATE.entries[group][name]
    except KeyError:
        known = ", ".join(_STATE.entries[group]) or "none"
        raise KeyError(f"unknown {group[:-1]} {name!r}; known: {known}") from None


def system(spec) -> SystemEntry:
    return get("systems", spec.kind)


def channel(spec) -> ChannelEntry:
    return get("channels", spec.model)


def origin(group: str, name: str) -> str:
    _load()
    return _STATE.origins[group, name]


def version() -> int:
    """Changes whenever an entry is added or removed (models built from the registry cache on it)."""
    _load()
    return _STATE.version


def problems() -> list[str]:
    """The one-line reports of plugins that were ignored."""
    _load()
    return list(_STATE.problems)


def plugin_files(group: str, spec) -> list[str]:
    """Files an entry's spec names (as the scenario writes them)."""
    return list(get(group, getattr(spec, GROUPS[group])).files(spec))


__all__ = ["SystemEntry", "ChannelEntry", "LinkEntry", "EstimatorEntry", "MetricEntry", "RecognizerEntry",
           "CommandEntry", "register", "unregister", "entries", "get", "system", "channel", "origin", "version",
           "problems", "plugin_files"]
