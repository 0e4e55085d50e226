"""YAML scenario -> typed, validated `Scenario`. Every error names its key path, in one line.

The format is declared once, as pydantic models: validation, defaults and the JSON Schema that
`simlab schema` prints all come from these classes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from simlab.errors import UserError
from simlab.scenario_bounds import (
    MAX_BANDWIDTH_BPS, MAX_DELAY_S, MAX_DURATION_S, MAX_NAME_CHARS, MAX_THREADS, MIN_BANDWIDTH_BPS, MIN_HOP_S,
    MIN_INTERVAL_S, N_Q, Delay, Instant, Prob, _ge, _in)
from simlab.scenario_errors import format_error
from simlab.yaml_file import load_yaml, read_yaml_file


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


# -- loss models (channels/) -------------------------------------------------------------------
class UniformLoss(Strict):
    model: Literal["uniform"]
    p: Prob = 0.0


class GilbertElliottLoss(Strict):
    """Either the chain (p, r, loss_good, loss_bad) or an average loss and a mean burst length."""

    model: Literal["gilbert_elliott"]
    p: Optional[Prob] = None
    r: Optional[Prob] = None
    loss_good: Prob = 0.0
    loss_bad: Prob = 1.0
    loss: Optional[Annotated[float, _in(0, 0.999)]] = None
    burst: Optional[Annotated[float, _ge(1)]] = None

    @model_validator(mode="after")
    def _one_form(self):
        if self.loss is not None or self.burst is not None:
            if self.loss is None or self.burst is None:
                raise ValueError("give both loss and burst, or p and r")
            if self.p is not None or self.r is not None:
                raise ValueError("give loss and burst, or p and r, not both")
        elif self.p is None or self.r is None:
            raise ValueError("give p and r (transition probabilities), or loss and burst")
        elif self.p + self.r == 0:
            raise ValueError("p and r are both 0: the chain never moves")
        return self


class TraceLoss(Strict):
    model: Literal["trace"]
    file: str
    loop: bool = True


LossSpec = Annotated[Union[UniformLoss, GilbertElliottLoss, TraceLoss], Field(discriminator="model")]


class Phase(Strict):
    until_s: Instant
    loss: LossSpec


class Link(Strict):
    bandwidth_bps: Annotated[float, _in(MIN_BANDWIDTH_BPS, MAX_BANDWIDTH_BPS)] = 1_000_000.0
    delay_s: Delay = 0.02
    jitter_s: Delay = 0.0
    queue_packets: Optional[Annotated[int, _ge(1)]] = None  # FIFO cap; None = unbounded
    loss: LossSpec = UniformLoss(model="uniform", p=0.0)
    schedule: list[Phase] = []

    @model_validator(mode="after")
    def _increasing(self):
        ends = [ph.until_s for ph in self.schedule]
        if any(b <= a for a, b in zip(ends, ends[1:])):
            raise ValueError("schedule: until_s must increase from phase to phase")
        return self


class Rohc(Strict):
    steady_bytes: Annotated[int, _ge(1)] = 3
    refresh_bytes: Annotated[int, _ge(1)] = 44
    refresh_every: Annotated[int, _ge(0)] = 32


class Network(Strict):
    headers: Literal["ipv4", "ipv6", "rohc"] = "ipv4"
    rohc: Rohc = Rohc()
    forward: Link = Link()
    reverse: Link = Link()
    # per_flow: each flow (call) has a forward link of its own with these settings; shared: the
    # flows' forward packets cross one link (one FIFO, one bandwidth, one loss process), as calls
    # through one bottleneck do. Reports go back on each flow's own reverse path either way.
    bottleneck: Literal["per_flow", "shared"] = "per_flow"


# -- systems (simlab/actors/) -------------------------------------------------------------------
class SyntheticSystem(Strict):
    """Tokens drawn from the seed, a fixed controller: the network alone, no audio."""

    kind: Literal["synthetic"]
    quantizers: Annotated[int, _in(0, 8)] = 8
    redundant: Annotated[int, _in(0, 8)] = 0


class LargeSCSystem(Strict):
    kind: Literal["largesc"]
    profile: str = "small"
    quantizers: Annotated[int, _in(1, 2 * N_Q)] = 8
    controller: Literal["learned", "fixed"] = "learned"
    redundant: Annotated[int, _in(0, 8)] = 0
    concealer: Literal["lm", "repeat", "drop"] = "lm"
    greedy: bool = True
    min_confidence: Annotated[float, _in(0.0, 1.0)] = 0.0  # lm: leave out guesses the LM rates below this

    @model_validator(mode="after")
    def _controller_limits(self):
        # simlab.actors.largesc.LargeSCSystem refuses these too, but only once its models are
        # loaded: here `simlab check` and a run's validation see them first.
        if self.controller == "fixed" and self.quantizers > N_Q:
            raise ValueError(f"quantizers: {self.quantizers} is not in [1, {N_Q}] with controller: fixed "
                             f"(only the learned controller sends up to {2 * N_Q}, as second copies)")
        if self.controller == "learned" and self.redundant:
            raise ValueError("redundant: the learned controller decides it; use controller: fixed to set it")
        return self


class OpusSystem(Strict):
    kind: Literal["opus"]
    bitrate_bps: Annotated[int, _in(6000, 510000)] = 8000
    frame_ms: Literal[20, 40, 60] = 60
    fec: bool = True
    application: Literal["voip", "audio", "restricted_lowdelay"] = "voip"


class AacSystem(Strict):
    kind: Literal["aac"]
    bitrate_bps: Annotated[int, _in(4000, 144000)] = 16000  # AAC-LC mono at 24 kHz tops out at 144 kbit/s


SystemSpec = Annotated[Union[SyntheticSystem, LargeSCSystem, OpusSystem, AacSystem], Field(discriminator="kind")]


class Packetization(Strict):
    frames_per_packet: Annotated[int, _in(1, 64)] = 2
    interleave: bool = False
    redundancy: Literal["same", "next", "own"] = "next"


class Ewma(Strict):
    kind: Literal["ewma"]
    alpha: Annotated[float, _in(1e-6, 1)] = 0.1


class WindowEstimator(Strict):
    kind: Literal["window"]
    window_s: Instant = 1.0


Estimator = Annotated[Union[Ewma, WindowEstimator], Field(discriminator="kind")]


class Feedback(Strict):
    interval_s: Annotated[float, _in(MIN_INTERVAL_S, MAX_DELAY_S)] = 0.1
    report_bytes: Annotated[int, _in(1, 1500)] = 1
    estimator: Estimator = Ewma(kind="ewma")
    accounting: Literal["payload", "rtcp"] = "payload"
    initial_p: Prob = 0.0  # what the sender assumes before the first report arrives


class Receiver(Strict):
    playout_delay_s: Delay = 0.4


class Compute(Strict):
    timing: Literal["profile", "measured"] = "profile"
    profile: Optional[str] = None  # latency profile file; None: compute takes no simulated time
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # torch intra-op threads for the model stages: one frame's work is too small to gain from more,
    # and extra threads stall badly when another process holds a core (measured: 17 ms vs 636 ms).
    threads: Annotated[int, _in(1, MAX_THREADS)] = 1


class Outputs(Strict):
    pcap: bool = False
    audio: bool = True  # received.wav / reference.wav when the system makes audio


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
    system: SystemSpec = SyntheticSystem(kind="synthetic")
    packetization: Packetization = Packetization()
    network: Network = Network()
    feedback: Feedback = Feedback()
    receiver: Receiver = Receiver()
    compute: Compute = Compute()
    outputs: Outputs = Outputs()
    metrics: list[str] = []  # quality metrics (simlab.metrics), one summary.csv column each
    recognizer: str = "pocketsphinx"  # offline ASR used by the wer metric
    windows: Windows = Windows()
    base_dir: str = Field(default=".", exclude=True, description="folder relative paths start from")

    @model_validator(mode="after")
    def _pcap_ports(self):
        if self.outputs.pcap and self.flows > MAX_PCAP_FLOWS:  # flow k is RTP on UDP port 5004 + 2k
            raise ValueError(f"outputs.pcap: a pcap holds at most {MAX_PCAP_FLOWS} flows (flow k on UDP port "
                             f"5004 + 2k); flows is {self.flows}")
        return self

    def path(self, p: str) -> Path:
        """A path from the scenario, relative to the scenario file's folder; ``package:NAME`` is a
        file shipped in simlab/data, ``shared:SUB`` one in ../shared/speech."""
        from simlab.audio import SHARED_SPEECH, SHIPPED_CLIP

        if p.startswith("package:"):
            return SHIPPED_CLIP.parent / p[len("package:"):]
        if p.startswith("shared:"):
            return SHARED_SPEECH / p[len("shared:"):]
        q = Path(p).expanduser()
        return q if q.is_absolute() else Path(self.base_dir) / q

    def audio_path(self) -> Path | None:
        if self.audio is None:
            return None
        cands = [self.audio] if isinstance(self.audio, str) else self.audio
        for c in cands:
            if self.path(c).is_file():
                return self.path(c)
        raise UserError(f"audio: none of {', '.join(cands)} exists")

    def resolved(self) -> dict:
        return self.model_dump(mode="json")


def parse_scenario(data: Any, base_dir: str | Path = ".", source: str = "scenario") -> Scenario:
    if data is None:
        raise UserError(f"{source}: scenario is empty")
    if not isinstance(data, dict):
        raise UserError(f"{source}: a scenario is a mapping of keys, got {type(data).__name__}")
    try:
        return Scenario.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        errors = exc.errors()
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise UserError(f"{source}: {format_error(errors[0])}{more}") from None


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


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``a.b.c=value`` (value parsed as YAML; list items by index: ``schedule.0.until_s=5``)."""
    import copy

    data = copy.deepcopy(data) if data is not None else {}
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item}: expected KEY.PATH=VALUE")
        key, raw = item.split("=", 1)
        set_path(data, key, load_yaml(raw, f"--set {item}"))
    return data


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    path = Path(path)
    data = read_yaml(path)
    if data is None:
        raise UserError(f"{path}: scenario is empty")
    if not isinstance(data, dict):
        raise UserError(f"{path}: a scenario is a mapping of keys, got {type(data).__name__}")
    data = apply_overrides(data, overrides or [])
    return parse_scenario(data, path.parent, str(path))


def json_schema() -> dict:
    schema = Scenario.model_json_schema()
    schema.get("properties", {}).pop("base_dir", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "simlab scenario"
    return schema
