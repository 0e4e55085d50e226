"""The scenario's bottleneck keys: ``network.bottleneck`` (``per_flow``, ``shared``, or a mapping
with a queue discipline and cross traffic), ``network.start_offsets`` and
``network.send_jitter_s``. Each discipline and each kind of cross traffic is one spec model
here and one builder in `simlab.build_bottleneck` (a table, not a chain of ifs)."""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BeforeValidator, Field, model_serializer, model_validator

from simlab.scenario_bounds import MAX_BANDWIDTH_BPS, MAX_DURATION_S, MIN_BANDWIDTH_BPS, Delay, Instant, _ge, _gt, _in
from simlab.spec import Strict

Rate = Annotated[float, _in(MIN_BANDWIDTH_BPS, MAX_BANDWIDTH_BPS)]
PacketBytes = Annotated[int, _in(20, 65535)]
When = Annotated[float, _in(0, MAX_DURATION_S)]
Count = Annotated[int, _in(1, 10000)]


# -- queue disciplines ---------------------------------------------------------------------------
class DropTailQueue(Strict):
    """Tail drop when ``limit_packets`` wait (besides the one being sent) or the waiting bytes
    would exceed ``limit_bytes``; neither given: unbounded."""

    discipline: Literal["droptail"]
    limit_packets: Optional[Annotated[int, _ge(1)]] = None
    limit_bytes: Optional[Annotated[int, _ge(1)]] = None


class RedQueue(Strict):
    """RED (Floyd and Jacobson, 1993): thresholds in packets waiting, ``w_q`` the averaging
    weight, ``max_p`` the drop probability at max_th, the idle-time decay counted in
    ``mean_packet_bytes`` packets; ``gentle``: p rises to 1 between max_th and 2 max_th instead
    of jumping; ``limit_packets``: the hard buffer."""

    discipline: Literal["red"]
    min_th: Annotated[float, _gt(0)] = 5.0
    max_th: Annotated[float, _gt(0)] = 15.0
    max_p: Annotated[float, _gt(0, 1)] = 0.1
    w_q: Annotated[float, _gt(0, 1)] = 0.002
    gentle: bool = False
    mean_packet_bytes: PacketBytes = 500
    limit_packets: Optional[Annotated[int, _ge(1)]] = 1000

    @model_validator(mode="after")
    def _thresholds(self):
        if self.min_th >= self.max_th:
            raise ValueError(f"min_th ({self.min_th}) must be below max_th ({self.max_th})")
        return self


class CodelQueue(Strict):
    """CoDel (RFC 8289): drops at dequeue once the sojourn time has stayed above ``target_s``
    for ``interval_s``; ``limit_packets`` tail drop beyond (Linux's default 1000)."""

    discipline: Literal["codel"]
    target_s: Annotated[float, _gt(0, 60)] = 0.005
    interval_s: Annotated[float, _gt(0, 60)] = 0.1
    limit_packets: Annotated[int, _ge(1)] = 1000


class FqCodelQueue(Strict):
    """FQ-CoDel (RFC 8290): a CoDel queue per flow, deficit round robin of ``quantum_bytes``."""

    discipline: Literal["fq_codel"]
    target_s: Annotated[float, _gt(0, 60)] = 0.005
    interval_s: Annotated[float, _gt(0, 60)] = 0.1
    quantum_bytes: Annotated[int, _in(64, 65535)] = 1514
    flows: Annotated[int, _in(1, 65536)] = 1024
    limit_packets: Annotated[int, _ge(1)] = 10240


Queue = Annotated[Union[DropTailQueue, RedQueue, CodelQueue, FqCodelQueue], Field(discriminator="discipline")]


# -- cross traffic -------------------------------------------------------------------------------
class _Cross(Strict):
    kind: str  # (each kind's Literal: first in the resolved mapping)
    count: Count = 1  # flows of this kind
    packet_bytes: PacketBytes = 1500
    start_s: When = 0.0
    stop_s: Optional[Instant] = None  # default: when the last call has sent its last packet


class ConstantRate(_Cross):
    kind: Literal["cbr"]
    rate_bps: Rate


class PoissonTraffic(_Cross):
    kind: Literal["poisson"]
    rate_bps: Rate


class OnOffTraffic(_Cross):
    """``rate_bps`` during on periods; periods exponential, or Pareto of shape ``shape``, with
    means ``on_s`` and ``off_s``."""

    kind: Literal["onoff"]
    rate_bps: Rate
    on_s: Instant = 1.0
    off_s: Instant = 1.0
    distribution: Literal["exponential", "pareto"] = "exponential"
    shape: Annotated[float, _gt(1, 100)] = 1.5


class TcpTraffic(_Cross):
    """Bulk TCP flows (`simlab.sim.tcp`): flow j of ``count`` starts at start_s + j stagger_s;
    ``access_delay_s`` before the bottleneck (a longer RTT); acks of ``ack_bytes`` return over
    an uncongested path of ``reverse_delay_s`` (default: the forward link's delay_s)."""

    kind: Literal["tcp"]
    cc: Literal["reno", "cubic"] = "reno"
    stagger_s: Delay = 0.0
    access_delay_s: Delay = 0.0
    reverse_delay_s: Optional[Delay] = None
    ack_bytes: PacketBytes = 40
    initial_cwnd: Annotated[int, _in(1, 1000)] = 10
    min_rto_s: Annotated[float, _in(0.001, 60)] = 0.2


CrossTraffic = Annotated[Union[ConstantRate, PoissonTraffic, OnOffTraffic, TcpTraffic], Field(discriminator="kind")]


# -- the bottleneck ------------------------------------------------------------------------------
MODES = ("per_flow", "shared")


def _plain(value):
    """``per_flow`` / ``shared`` as a string: the mapping with that mode alone."""
    return {"mode": value} if isinstance(value, str) else value


class BottleneckSpec(Strict):
    """``mode``: per_flow (each call a forward link of its own) or shared (the calls' forward
    packets cross one link). ``queue``: its discipline (default: drop-tail at
    network.forward.queue_packets); ``cross_traffic``: other flows on the shared link;
    ``record_s``: bottleneck.csv's interval. Written as the plain mode when it is nothing more."""

    mode: Literal["per_flow", "shared"] = "shared"
    queue: Optional[Queue] = None
    cross_traffic: list[CrossTraffic] = []
    record_s: Annotated[float, _in(0.01, MAX_DURATION_S)] = 1.0

    @model_validator(mode="after")
    def _cross_needs_shared(self):
        if self.cross_traffic and self.mode != "shared":
            raise ValueError("cross_traffic needs mode: shared (it crosses the calls' one bottleneck)")
        return self

    @property
    def managed(self) -> bool:
        """A queued link with bottleneck.csv (not the plain FIFO `Link`)."""
        return self.queue is not None or bool(self.cross_traffic) or self.record_s != 1.0

    @model_serializer(mode="wrap")
    def _as_mode(self, handler):
        # the plain string when nothing else is set: the resolved scenario (and batch run keys) of
        # every scenario written before the mapping existed stay as they were
        return self.mode if not self.managed else handler(self)

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema, handler):
        return {"anyOf": [{"type": "string", "enum": list(MODES)}, handler(core_schema)]}


Bottleneck = Annotated[BottleneckSpec, BeforeValidator(_plain)]


class StartOffsets(Strict):
    """When each call starts: ``uniform``, drawn in [0, max_s) per call from the seed; ``even``,
    call k of N at k max_s / N."""

    model: Literal["uniform", "even"]
    max_s: Delay


Offsets = Optional[Union[StartOffsets, list[When]]]


def check_calls(flows: int, offsets, bottleneck: BottleneckSpec, forward) -> None:
    """Checks across keys (ValueError naming them): one offset per flow; one buffer limit."""
    if isinstance(offsets, list) and len(offsets) != flows:
        raise ValueError(f"network.start_offsets: {len(offsets)} offsets for {flows} flows (one per flow)")
    if bottleneck.queue is not None and forward.queue_packets is not None:
        raise ValueError("network.forward.queue_packets: the bottleneck's queue sets its own limit "
                         "(network.bottleneck.queue.limit_packets); give one of them")
    model = getattr(forward.link, "model", "fifo")
    if bottleneck.managed and model != "fifo":
        raise ValueError(f"network.bottleneck: a queue discipline or cross traffic needs network.forward.link "
                         f"model fifo, not {model}")
