"""YAML scenario -> typed, validated `Scenario`. Every error names its key path, in one line.

The format is declared once, as pydantic models: validation, defaults and the JSON Schema that
`simlab schema` prints all come from these classes. The parts a plugin can add (systems, loss
models, link models, estimators) are unions built from `simlab.registry`: `scenario_model`
builds the model for the entries registered now (cached until the registry changes); the
classes below are its bases (``isinstance(sc, Scenario)`` holds for every scenario).
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, Field, ValidationError, create_model, model_validator

from simlab import registry
from simlab.errors import UserError
from simlab.scenario_bottleneck import Bottleneck, BottleneckSpec, Offsets, check_calls
from simlab.scenario_compute import check_batch
from simlab.scenario_bounds import (
    MAX_BANDWIDTH_BPS, MAX_DELAY_S, MAX_DURATION_S, MAX_NAME_CHARS, MAX_THREADS, MIN_BANDWIDTH_BPS, MIN_HOP_S,
    MIN_INTERVAL_S, Delay, Instant, Prob, _ge, _gt, _in)
from simlab.scenario_errors import describe_errors
from simlab.spec import Strict
from simlab.yaml_file import load_yaml, read_yaml_file


class Phase(Strict):
    until_s: Instant
    loss: Any  # a loss model of the registry (`scenario_model` narrows it)


class Link(Strict):
    bandwidth_bps: Annotated[float, _in(MIN_BANDWIDTH_BPS, MAX_BANDWIDTH_BPS)] = 1_000_000.0
    delay_s: Delay = 0.02
    jitter_s: Delay = 0.0
    queue_packets: Optional[Annotated[int, _ge(1)]] = None  # FIFO cap; None = unbounded
    # the link layer's bytes per packet on the wire (Ethernet 38, PPP 8), counted in serialization
    link_overhead_bytes: Annotated[int, _in(0, 65535)] = 0
    mtu_bytes: Optional[Annotated[int, _in(68, 65535)]] = None  # a packet larger is refused (dropped)
    link: Any = None  # the link model (registry group links; default fifo)
    loss: Any = None  # the loss model (registry group channels; default uniform, p 0)
    schedule: list[Any] = []

    @model_validator(mode="after")
    def _increasing(self):
        ends = [ph.until_s for ph in self.schedule]
        if any(b <= a for a, b in zip(ends, ends[1:])):
            raise ValueError("schedule: until_s must increase from phase to phase")
        return self


class Rohc(Strict):
    steady_bytes: Annotated[int, _ge(1)] = 3
    refresh_bytes: Annotated[int, _ge(1)] = 44
    refresh_every: Annotated[int, _ge(1)] = 32  # packets between IR headers (the first packet is one)


class Network(Strict):
    headers: Literal["ipv4", "ipv6", "rohc"] = "ipv4"
    rohc: Rohc = Rohc()
    forward: Any = None
    reverse: Any = None
    # per_flow: each flow (call) has a forward link of its own with these settings; shared: the
    # flows' forward packets cross one link (one FIFO, one bandwidth, one loss process), as calls
    # through one bottleneck do. Reports go back on each flow's own reverse path either way.
    # A mapping adds a queue discipline and cross traffic (simlab.scenario_bottleneck).
    bottleneck: Bottleneck = BottleneckSpec(mode="per_flow")
    start_offsets: Offsets = None  # when each call starts: {model: uniform|even, max_s} or one per flow
    send_jitter_s: Delay = 0.0  # each packet handed to the link up to this late (uniform)


class Packetization(Strict):
    frames_per_packet: Annotated[int, _in(1, 64)] = 2
    interleave: bool = False
    redundancy: Literal["same", "next", "own"] = "next"


class Feedback(Strict):
    interval_s: Annotated[float, _in(MIN_INTERVAL_S, MAX_DELAY_S)] = 0.1
    report_bytes: Annotated[int, _in(1, 1500)] = 1
    estimator: Any = None  # a loss estimator of the registry (default ewma)
    # payload: the report's bytes alone (eq. 24); rtcp: an RTCP compound RR + SDES/CNAME in UDP/IP
    # (RFC 3550); rtcp_reduced: the RR alone (RFC 5506). Sizes in simlab.rtcp.
    accounting: Literal["payload", "rtcp", "rtcp_reduced"] = "payload"
    initial_p: Prob = 0.0  # what the sender assumes before the first report arrives
    # Count a silence of this long (no packet arrived) as loss, report by report, so p-hat rises
    # during an outage; None: only sequence gaps count (RTCP's way), seen when packets return.
    outage_s: Optional[Annotated[float, _gt(0, MAX_DELAY_S)]] = None
    # fixed: a report every interval_s; rfc3550: RFC 3550's RTCP interval (5 % of session_bps, at least
    # 5 s, or 360 / session kbit/s with reduced_minimum; randomised, reconsidered; simlab.sim.rtcp_interval)
    interval: Literal["fixed", "rfc3550"] = "fixed"
    session_bps: Optional[Annotated[float, _in(MIN_BANDWIDTH_BPS, MAX_BANDWIDTH_BPS)]] = None
    reduced_minimum: bool = False

    @model_validator(mode="after")
    def _interval_rule(self):
        if self.interval == "rfc3550" and self.session_bps is None:
            raise ValueError("session_bps: interval rfc3550 needs the session bandwidth (RTCP gets 5 % of it)")
        if self.interval == "fixed" and (self.session_bps is not None or self.reduced_minimum):
            raise ValueError("session_bps, reduced_minimum: only with interval: rfc3550 (interval_s sets a fixed one)")
        return self


class FixedBuffer(Strict):
    """A constant playout deadline: receiver.playout_delay_s after capture (plus the lookahead)."""

    kind: Literal["fixed"]


class AdaptiveBuffer(Strict):
    """NetEq-like: the delay follows the ``quantile`` of the delays recent packets needed (over
    ``window_s``) plus ``margin_s``, within [min_s, max_s], moving by at most ``stretch`` of a
    frame per frame (accounted time-stretching); it starts at receiver.playout_delay_s."""

    kind: Literal["adaptive"]
    quantile: Annotated[float, _in(0.5, 1.0)] = 0.95
    window_s: Instant = 2.0
    margin_s: Delay = 0.01
    min_s: Delay = 0.0
    max_s: Delay = 2.0
    stretch: Annotated[float, _in(0.01, 0.5)] = 0.1

    @model_validator(mode="after")
    def _ordered(self):
        if self.min_s > self.max_s:
            raise ValueError(f"min_s: {self.min_s} is above max_s ({self.max_s})")
        return self


class Receiver(Strict):
    playout_delay_s: Delay = 0.4  # the fixed deadline, or where the adaptive buffer starts
    jitter_buffer: Annotated[Union[FixedBuffer, AdaptiveBuffer], Field(discriminator="kind")] = FixedBuffer(
        kind="fixed")


class Compute(Strict):
    timing: Literal["profile", "measured"] = "profile"
    profile: Optional[str] = None  # latency profile file; None: compute takes no simulated time
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch intra-op threads for the model stages: one frame's work is too small to gain from more,
    # and extra threads stall badly when another process holds a core (measured: 17 ms vs 636 ms).
    threads: Annotated[int, _in(1, MAX_THREADS)] = 1
    # flows: N with largesc: one set of models, each instant's frames one batched model call per stage
    batch: bool = False


class Outputs(Strict):
    # true or both: forward.pcap (sender side) and receiver.pcap (receiver side); sender, receiver: one
    pcap: Union[bool, Literal["sender", "receiver", "both"]] = False
    audio: bool = True  # received.wav / reference.wav when the system makes audio
    # packets and frames tables: csv, or parquet (pyarrow; for tables of gigabytes)
    format: Literal["csv", "parquet"] = "csv"


class Windows(Strict):
    """Sliding-window traces (windows.csv): metrics, bitrate, loss and decisions over time."""

    window_s: Instant = 2.5
    hop_s: Annotated[float, _in(MIN_HOP_S, MAX_DURATION_S)] = 0.5  # at most 100 rows a second
    metrics: bool = True  # quality metrics per window too (costly); false: network columns only


def _check_name(name: str) -> str:
    """The name is the default output folder, ``results/<name>``, which ``--force`` replaces:
    it must be one ordinary folder name, never empty (``results/`` itself) nor ``..``."""
    if not name.strip():
        raise ValueError("must not be empty (it names the output folder results/<name>)")
    if any(c in name for c in "/\\\0"):
        raise ValueError(f"{name!r} must be a plain folder name, without '/', '\\' or NUL")
    if name.startswith("."):
        raise ValueError(f"{name!r} must not start with '.' (it names the output folder results/<name>)")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"{len(name)} characters; at most {MAX_NAME_CHARS}")
    return name


#: Flows a pcap can tell apart: flow k's RTP goes to UDP port 5004 + 2k (simlab.report.pcap).
MAX_PCAP_FLOWS = (65535 - 5004) // 2 + 1


class Scenario(Strict):
    name: Annotated[str, AfterValidator(_check_name)] = "scenario"
    seed: Annotated[int, _ge(0)] = 0
    duration_s: Optional[Instant] = None  # default: the audio's length, or 60 s without audio
    audio: Optional[Union[str, list[str]]] = None  # the first file that exists is used
    transcript: Optional[str] = None
    flows: Annotated[int, _in(1, 100000)] = 1
    system: Any = None  # a system of the registry (default synthetic)
    packetization: Packetization = Packetization()
    network: Any = None
    feedback: Any = None
    receiver: Receiver = Receiver()
    compute: Compute = Compute()
    outputs: Outputs = Outputs()
    metrics: list[str] = []  # quality metrics (simlab.metrics), one summary.csv column each
    recognizer: str = "faster-whisper"  # offline ASR used by the wer metric (pocketsphinx: weaker, lighter)
    windows: Windows = Windows()
    base_dir: str = Field(default=".", exclude=True, description="folder relative paths start from")

    @model_validator(mode="after")
    def _pcap_ports(self):
        if self.outputs.pcap and self.flows > MAX_PCAP_FLOWS:  # flow k is RTP on UDP port 5004 + 2k
            raise ValueError(f"outputs.pcap: a pcap holds at most {MAX_PCAP_FLOWS} flows (flow k on UDP port "
                             f"5004 + 2k); flows is {self.flows}")
        return self

    @model_validator(mode="after")
    def _batch(self):
        check_batch(self)  # compute.batch: the calls in lockstep, a system that batches
        return self

    @model_validator(mode="after")
    def _calls(self):
        net = self.network
        if net is not None and not isinstance(net, dict):
            check_calls(self.flows, net.start_offsets, net.bottleneck, net.forward)
        return self

    def path(self, p: str) -> Path:
        """A path from the scenario, relative to the scenario file's folder; ``package:NAME`` is a
        file shipped in simlab/data, ``shared:SUB`` one in ../shared/speech, ``traces:SUB`` a link
        trace in ../shared/traces."""
        from simlab.audio import SHARED_SPEECH, SHIPPED_CLIP

        if p.startswith("package:"):
            return SHIPPED_CLIP.parent / p[len("package:"):]
        if p.startswith("shared:"):
            return SHARED_SPEECH / p[len("shared:"):]
        if p.startswith("traces:"):
            return SHARED_SPEECH.parent / "traces" / p[len("traces:"):]
        try:
            q = Path(p).expanduser()
        except RuntimeError:  # ~name of a user this machine does not know: an ordinary name then
            q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q

    def audio_path(self) -> Path | None:
        """The first of ``audio`` that is a file; `UserError` saying what each one is otherwise."""
        from simlab.file_kind import not_a_file

        if self.audio is None:
            return None
        cands = [self.audio] if isinstance(self.audio, str) else self.audio
        for c in cands:
            if self.path(c).is_file():
                return self.path(c)
        if not cands:
            raise UserError("audio: an empty list (name a file, or leave audio out)")
        odd = [f"{c} {what}" for c in cands if (what := not_a_file(self.path(c))) != "does not exist"]
        if not odd:
            raise UserError(f"audio: none of {', '.join(cands)} exists")
        rest = " (the others do not exist)" if len(odd) < len(cands) else ""
        raise UserError(f"audio: {'; '.join(odd)}{rest}")

    def resolved(self) -> dict:
        return self.model_dump(mode="json")


def _union(group: str):
    """The discriminated union of a registry group's spec models."""
    specs = tuple(e.spec for e in registry.entries(group).values())
    if not specs:
        raise UserError(f"no {group} are registered: simlab's entry points are missing (reinstall simlab)")
    return Annotated[Union[specs], Field(discriminator=registry.GROUPS[group])]


def _default(group: str, name: str):
    entry = registry.entries(group).get(name)
    return entry.spec(**{registry.GROUPS[group]: name}) if entry is not None else None


_MODELS: dict[int, type] = {}


def scenario_model() -> type[Scenario]:
    """The `Scenario` model whose unions hold the registry's entries as they are now."""
    version = registry.version()
    model = _MODELS.get(version)
    if model is not None:
        return model
    loss = _union("channels")
    phase = create_model("Phase", __base__=Phase, loss=(loss, ...))
    link = create_model("Link", __base__=Link, link=(_union("links"), _default("links", "fifo")),
                        loss=(loss, _default("channels", "uniform")), schedule=(list[phase], []))
    network = create_model("Network", __base__=Network, forward=(link, link()), reverse=(link, link()))
    feedback = create_model("Feedback", __base__=Feedback,
                            estimator=(_union("estimators"), _default("estimators", "ewma")))
    model = create_model("Scenario", __base__=Scenario, system=(_union("systems"), _default("systems", "synthetic")),
                         network=(network, network()), feedback=(feedback, feedback()))
    _MODELS.clear()
    _MODELS[version] = model
    return model


def parse_scenario(data: Any, base_dir: str | Path = ".", source: str = "scenario") -> Scenario:
    """A validated scenario from a mapping; `UserError` naming ``source`` and the key path."""
    if data is None:
        raise UserError(f"{source}: scenario is empty")
    if not isinstance(data, dict):
        raise UserError(f"{source}: a scenario is a mapping of keys, got {type(data).__name__}")
    model = scenario_model()
    try:
        return model.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        raise UserError(f"{source}: {describe_errors(exc.errors(), model)}") from None


def read_yaml(path: str | Path) -> Any:
    """A scenario or experiment file (duplicate keys refused; see `simlab.yaml_file`)."""
    return read_yaml_file(path)


def set_path(data: dict, key: str, value: Any, where: str = "--set") -> None:
    """Set ``a.b.c`` in nested mappings (list items by index: ``schedule.0.until_s``), creating
    mappings on the way; ``where`` prefixes error messages (``--set``, ``grid``)."""
    import copy

    parts = key.strip().split(".")
    node: Any = data
    for i, part in enumerate(parts):
        if isinstance(node, list):
            try:
                idx = int(part)
                node[idx]
            except (ValueError, IndexError):
                raise UserError(f"{where} {key}: {part!r} is not an index of the list at "
                                f"{'.'.join(parts[:i])}") from None
            part = idx
        elif not isinstance(node, dict):
            raise UserError(f"{where} {key}: {'.'.join(parts[:i])} is not a mapping")
        if i == len(parts) - 1:
            node[part] = copy.deepcopy(value)
        else:
            if isinstance(node, dict) and not isinstance(node.get(part), (dict, list)):
                node[part] = {}
            node = node[part]


def apply_overrides(data: dict, overrides: list[str] | dict[str, Any]) -> dict:
    """Overrides as ``["a.b.c=value", ...]`` (values parsed as YAML, as ``--set`` gives them) or
    as a mapping ``{"a.b.c": value}`` (values as they are); list items by index
    (``schedule.0.until_s``)."""
    import copy

    data = copy.deepcopy(data) if data is not None else {}
    if isinstance(overrides, dict):
        for key, value in overrides.items():
            set_path(data, str(key), value, where="overrides:")
        return data
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item}: expected KEY.PATH=VALUE")
        key, raw = item.split("=", 1)
        set_path(data, key, load_yaml(raw, f"--set {item}"))
    return data


def _is_yaml_text(source: str) -> bool:
    return "\n" in source or (":" in source and not source.endswith((".yaml", ".yml")) and not Path(source).exists())


def load_scenario(source: str | Path | dict | Scenario, overrides: list[str] | dict[str, Any] | None = None) -> Scenario:
    """A validated `Scenario` from a file path, a YAML string, a mapping or a `Scenario` (a variant
    of it), with ``overrides``
    (``{"network.forward.loss.p": 0.2}``, or ``["network.forward.loss.p=0.2"]`` as ``--set``
    writes them). Relative paths in a file are relative to its folder, else to the working one."""
    if isinstance(source, Scenario):  # a variant of a scenario: its resolved keys, validated again
        data, base, name = source.resolved(), Path(source.base_dir), source.name
    elif isinstance(source, dict):
        data, base, name = source, Path("."), "scenario"
    elif isinstance(source, str) and _is_yaml_text(source):
        data, base, name = load_yaml(source, "scenario"), Path("."), "scenario"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        data, base, name = read_yaml(path), path.parent, str(path)
    else:
        raise UserError(f"a scenario is a path, a YAML string or a mapping, got {type(source).__name__}")
    if data is None:
        raise UserError(f"{name}: scenario is empty")
    if not isinstance(data, dict):
        raise UserError(f"{name}: a scenario is a mapping of keys, got {type(data).__name__}")
    data = apply_overrides(data, overrides or [])
    return parse_scenario(data, base, name)


def json_schema() -> dict:
    """The scenario format as JSON Schema (draft 2020-12), the registry's entries included."""
    schema = scenario_model().model_json_schema()
    schema.get("properties", {}).pop("base_dir", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "simlab scenario"
    return schema
