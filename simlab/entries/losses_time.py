"""simlab's loss models in time (implemented in `channels.intervals`): ``outages``, intervals of
loss written in the scenario, and ``trace_time``, a time-stamped loss trace from a file. The
Gilbert-Elliott chain in time is a form of ``gilbert_elliott`` (``burst_s``, simlab.entries.losses).

(``outage``, singular, is the name examples/plugin's third-party model registers: simlab's own
generalisation takes another name, so the plugin keeps working beside it.)"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from simlab.registry import ChannelEntry
from simlab.spec import MAX_DURATION_S, Instant, Strict, in_range

Time = Annotated[float, in_range(0, MAX_DURATION_S)]
Interval = Annotated[list[Time], Field(min_length=2, max_length=2)]  # [start_s, end_s]


class OutagesLoss(Strict):
    """The channel is down (every packet sent is lost) during each ``[start_s, end_s)`` of
    ``intervals``, counted from ``start_s``; with ``period_s`` the pattern repeats every period
    (``{intervals: [[0, 0.3]], period_s: 2}``: down 0.3 s every 2 s)."""

    model: Literal["outages"]
    intervals: list[Interval]
    period_s: Optional[Instant] = None
    start_s: Time = 0.0

    @model_validator(mode="after")
    def _ordered(self):
        for i, (a, b) in enumerate(self.intervals):
            if not b > a:
                raise ValueError(f"intervals[{i}]: [{a!r}, {b!r}] needs start < end")
            if i and a < self.intervals[i - 1][1]:
                raise ValueError(f"intervals[{i}]: starts at {a!r}, before intervals[{i - 1}] ends; intervals "
                                 f"must increase and not overlap")
        if self.period_s is not None and self.intervals and self.intervals[-1][1] > self.period_s:
            raise ValueError(f"period_s: {self.period_s!r} is shorter than the intervals (the last ends at "
                             f"{self.intervals[-1][1]!r})")
        return self


class TraceTimeLoss(Strict):
    """A time-stamped loss trace (a file). ``format: samples``: a line ``t_s lost`` (0/1) per
    observation, e.g. a capture's per-packet send times and fates: each holds until the next, the
    last one for ever (end with a 0 line). ``format: intervals``: a line ``start_s end_s`` per
    loss interval. Times count from ``start_s``; with ``period_s`` the trace repeats every period.
    '#' comments and a header line are allowed; commas or spaces separate."""

    model: Literal["trace_time"]
    file: str
    format: Literal["samples", "intervals"]
    period_s: Optional[Instant] = None
    start_s: Time = 0.0


def _outages(spec: OutagesLoss, rng, resolve):
    from channels.intervals import LossIntervals

    return LossIntervals(spec.intervals, spec.start_s, spec.period_s)


def _outages_nominal(spec: OutagesLoss) -> float:
    if spec.period_s is None:
        return float("nan")  # the share depends on the run's length
    return sum(b - a for a, b in spec.intervals) / spec.period_s


def _trace_time(spec: TraceTimeLoss, rng, resolve):
    from channels.intervals import LossIntervals, read_time_trace

    return LossIntervals(read_time_trace(resolve(spec.file), spec.format), spec.start_s, spec.period_s)


OUTAGES = ChannelEntry("outages", OutagesLoss, _outages, nominal_loss=_outages_nominal)
TRACE_TIME = ChannelEntry("trace_time", TraceTimeLoss, _trace_time, files=lambda spec: [spec.file])
