"""The ranges a scenario's numbers must lie in, as annotations pydantic enforces (one-line
errors: ``1.7 is not in [0, 1]``) and writes into the JSON Schema that `simlab schema` prints."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic_core import core_schema


@dataclass(frozen=True)
class _Range:
    """A number's allowed range, checked after its type (``1.7 is not in [0, 1]``) and written
    into the JSON Schema (minimum, exclusiveMinimum, maximum), so `simlab schema` states the
    same bounds the validator enforces. ``lo_open``: the lower bound itself is not allowed."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False

    def describe(self) -> str:
        if self.hi is None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}]"

    def check(self, v):
        low_ok = self.lo is None or (v > self.lo if self.lo_open else v >= self.lo)
        if not (low_ok and (self.hi is None or v <= self.hi)):
            raise ValueError(f"{v!r} is not {self.describe()}")
        return v

    def __get_pydantic_core_schema__(self, source, handler):
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema, handler):
        out = handler(schema)
        if self.lo is not None:
            out["exclusiveMinimum" if self.lo_open else "minimum"] = self.lo
        if self.hi is not None:
            out["maximum"] = self.hi
        return out


def _in(lo: float, hi: float) -> _Range:
    return _Range(lo, hi)


def _ge(lo: float) -> _Range:
    return _Range(lo)


def _gt(lo: float, hi: float | None = None) -> _Range:
    return _Range(lo, hi, lo_open=True)


# Bounds on times and rates. Non-finite numbers are refused for every float (``allow_inf_nan``
# below); these keep finite ones within what a simulation can finish: a call of at most a day, a
# delay, jitter or playout delay of at most a minute, a report at most every millisecond, a link of
# at least 1 kbit/s and windows.csv rows at most 100 a second (beyond these, runs never ended or
# wrote a row per microsecond).
MAX_DURATION_S = 86_400.0
MAX_DELAY_S = 60.0
MIN_INTERVAL_S = 0.001
MIN_BANDWIDTH_BPS = 1_000.0
MAX_BANDWIDTH_BPS = 1e12
MIN_HOP_S = 0.01
MAX_NAME_CHARS = 100
MAX_THREADS = 256
N_Q = 8  # Mimi's codebooks (simlab.models.mimi_config.N_Q; not imported here: that loads torch)

Prob = Annotated[float, _in(0, 1)]
Delay = Annotated[float, _in(0, MAX_DELAY_S)]
Instant = Annotated[float, _gt(0, MAX_DURATION_S)]  # a time within a call, or a call's length
