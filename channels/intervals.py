"""Loss in given intervals of simulated time: outages, and time-stamped loss traces.

A packet sent at ``t`` is lost iff ``t`` falls in one of the intervals [start_s, end_s). The
intervals count from ``start_s`` (nothing is lost before it) and, with ``period_s``, repeat every
period. Times are compared in whole nanoseconds, so an edge falls where the scenario's decimal
numbers put it (a sender's 2.3000000000000003 s is 2.3 s). Deterministic: every system meets
the same channel.

Traces come in two forms (`read_time_trace`): ``intervals``, a line ``start_s end_s`` per loss
interval, as an outage log has them; ``samples``, a line ``t_s lost`` (0/1) per observation, as
a capture's per-packet records have them (send time, lost): each sample holds until the next,
and the last one for ever (end a trace with a ``0`` line).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from channels.base import TimedLossModel

FOREVER_NS = 1 << 62


def ns(t: float) -> int:
    """Seconds as whole nanoseconds (infinity as `FOREVER_NS`)."""
    return FOREVER_NS if t == math.inf else int(round(float(t) * 1e9))


class LossIntervals(TimedLossModel):
    """Lost during ``intervals`` (pairs (start, end) in seconds, increasing, not overlapping; an
    end may be infinite), counted from ``start_s``, repeating every ``period_s`` when given (an
    end past the period is cut there)."""

    def __init__(self, intervals: Sequence[tuple[float, float]], start_s: float = 0.0,
                 period_s: float | None = None):
        super().__init__()
        pairs = [(float(a), float(b)) for a, b in intervals]
        for i, (a, b) in enumerate(pairs):
            if not (math.isfinite(a) and a >= 0 and b > a):
                raise ValueError(f"interval {i}: [{a:g}, {b:g}) needs 0 <= start < end")
            if i and a < pairs[i - 1][1]:
                raise ValueError(f"interval {i}: starts at {a:g}, before interval {i - 1} ends "
                                 f"({pairs[i - 1][1]:g}); intervals must increase and not overlap")
        if not (math.isfinite(start_s) and start_s >= 0):
            raise ValueError(f"start_s: {start_s!r} is not >= 0")
        if period_s is not None:
            if not (math.isfinite(period_s) and period_s > 0):
                raise ValueError(f"period_s: {period_s!r} is not > 0")
            if pairs and pairs[-1][0] >= period_s:
                raise ValueError(f"period_s: {period_s:g} is shorter than the intervals (the last starts at "
                                 f"{pairs[-1][0]:g})")
            pairs = [(a, min(b, period_s)) for a, b in pairs]  # a trace's last sample holds to the period's end
        self.intervals = pairs
        self.start_s, self.period_s = float(start_s), period_s
        self._starts = np.array([ns(a) for a, _ in pairs], dtype=np.int64)
        self._ends = np.array([ns(b) for _, b in pairs], dtype=np.int64)
        self._start_ns = ns(start_s)
        self._period_ns = ns(period_s) if period_s is not None else None

    def lost_at(self, t: float) -> bool:
        since = ns(t) - self._start_ns
        if since < 0 or not len(self._starts):
            return False
        if self._period_ns is not None:
            since %= self._period_ns
        i = int(np.searchsorted(self._starts, since, side="right")) - 1
        return i >= 0 and since < self._ends[i]

    @property
    def mean_loss(self) -> float:
        """The lost share of a period; without a period, NaN (the share depends on the run's length)."""
        if self.period_s is None:
            return math.nan
        return sum(b - a for a, b in self.intervals) / self.period_s


def _numbers(path: Path) -> list[tuple[int, float, float]]:
    """(line number, x, y) of each line of two numbers; '#' comments, blank lines and a header line
    (a first line that is not numbers) are skipped."""
    rows: list[tuple[int, float, float]] = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        toks = line.split("#", 1)[0].replace(",", " ").split()
        if not toks:
            continue
        try:
            vals = [float(x) for x in toks]
        except ValueError:
            if not rows and all(not c.isdigit() for c in toks[0][:1]):
                continue  # a header such as "send_s,lost"
            raise ValueError(f"{path}:{lineno}: {line.strip()!r} is not two numbers") from None
        if len(vals) != 2 or not all(math.isfinite(v) for v in vals):
            raise ValueError(f"{path}:{lineno}: {line.strip()!r} is not two finite numbers")
        rows.append((lineno, vals[0], vals[1]))
    if not rows:
        raise ValueError(f"{path}: loss trace is empty")
    return rows


def read_time_trace(path: str | Path, form: str) -> list[tuple[float, float]]:
    """The loss intervals of a time-stamped trace file (``form``: ``intervals`` or ``samples``,
    see the module's docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: loss trace not found")
    rows = _numbers(path)
    if form == "intervals":
        for (ln, a, b), prev in zip(rows, [None] + rows[:-1]):
            if not 0 <= a < b:
                raise ValueError(f"{path}:{ln}: [{a:g}, {b:g}) needs 0 <= start_s < end_s")
            if prev is not None and a < prev[2]:
                raise ValueError(f"{path}:{ln}: starts at {a:g}, before the previous interval ends ({prev[2]:g})")
        return [(a, b) for _, a, b in rows]
    if form != "samples":
        raise ValueError(f"format: {form!r} is not intervals or samples")
    out: list[tuple[float, float]] = []
    down: float | None = None
    last = -math.inf
    for ln, t, v in rows:
        if v not in (0.0, 1.0):
            raise ValueError(f"{path}:{ln}: {v:g} is not 0 or 1")
        if not t > last or t < 0:
            raise ValueError(f"{path}:{ln}: time {t:g} s must be >= 0 and after the previous sample's")
        last = t
        if v and down is None:
            down = t
        elif not v and down is not None:
            out.append((down, t))
            down = None
    if down is not None:
        out.append((down, math.inf))
    return out
