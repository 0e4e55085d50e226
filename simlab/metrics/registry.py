"""The known metrics (registry entries) by name, and running one of them without letting it fail silently.

`run_metric` never turns a metric that could not run into a number: the metric's columns
become NaN and a ``<metric>_status`` column says why (``missing: pip install X``,
``skipped: ...``, ``failed: ...``).
"""
from __future__ import annotations

import logging

from simlab import registry
from simlab.errors import UserError
from simlab.metrics.base import MetricInput, MissingPackage, Skipped
from simlab.registry import MetricEntry

log = logging.getLogger(__name__)

Value = float | str

#: A metric is a registry entry (`simlab.registry.MetricEntry`): its function, the numeric
#: columns it fills, whether it makes sense on a sliding window, whether higher is better.
MetricSpec = MetricEntry


def specs() -> dict[str, MetricEntry]:
    """The known metrics by name, in the order their columns appear."""
    return registry.entries("metrics")


def metric_names() -> tuple[str, ...]:
    return tuple(specs())


def check_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """``names`` without duplicates, in order; `UserError` listing the known ones if any is unknown."""
    if isinstance(names, str):
        names = [names]
    known = specs()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}")
    return list(dict.fromkeys(names))


def run_metric(name: str, inp: MetricInput) -> dict[str, Value]:
    """One metric's columns; NaN plus ``<name>_status`` when it could not be computed."""
    spec = specs()[name]
    try:
        return spec.func(inp)
    except (MissingPackage, Skipped) as exc:
        status = str(exc)
    except UserError:
        raise  # bad input is the caller's to fix, not a cell in a table
    except Exception as exc:  # a scorer crashing on odd audio must not sink a whole batch
        log.warning("metric %s failed: %s: %s", name, type(exc).__name__, exc)
        status = f"failed: {type(exc).__name__}: {exc}".splitlines()[0]
    out: dict[str, Value] = {c: float("nan") for c in spec.columns}
    out[f"{name}_status"] = status
    return out
