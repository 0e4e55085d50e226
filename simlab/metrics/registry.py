"""The known metrics by name, and running one of them without letting it fail silently.

`run_metric` never turns a metric that could not run into a number: the metric's columns
become NaN and a ``<metric>_status`` column says why (``missing: pip install X``,
``skipped: ...``, ``failed: ...``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from simlab.errors import UserError
from simlab.metrics.base import MetricInput, MissingPackage, Skipped
from simlab.metrics.dnsmos_score import COLUMNS as DNSMOS_COLUMNS, dnsmos
from simlab.metrics.pitch import logf0_rmse
from simlab.metrics.plcmos_score import plcmos
from simlab.metrics.tokens import token_accuracy_metric
from simlab.metrics.visqol_score import visqol
from simlab.metrics.wer import wer

log = logging.getLogger(__name__)

Value = float | str


@dataclass(frozen=True)
class MetricSpec:
    """A metric: its function, the numeric columns it fills, whether it makes sense on
    a sliding window (WER and token accuracy do not), and whether higher is better."""

    name: str
    func: Callable[[MetricInput], dict[str, Value]]
    columns: tuple[str, ...]
    windowed: bool = True
    higher_is_better: bool = True


SPECS: dict[str, MetricSpec] = {s.name: s for s in (
    MetricSpec("visqol", visqol, ("visqol",)),
    MetricSpec("plcmos", plcmos, ("plcmos",)),
    MetricSpec("dnsmos", dnsmos, DNSMOS_COLUMNS),
    MetricSpec("logf0_rmse", logf0_rmse, ("logf0_rmse_cents", "vuv_error"), higher_is_better=False),
    MetricSpec("wer", wer, ("wer",), windowed=False, higher_is_better=False),
    MetricSpec("token_accuracy", token_accuracy_metric, ("token_accuracy",), windowed=False),
)}

#: The known metric names, in the order their columns appear.
METRICS: tuple[str, ...] = tuple(SPECS)


def check_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """``names`` without duplicates, in order; `UserError` listing the known ones if any is unknown."""
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        raise UserError(f"unknown metric(s) {', '.join(map(repr, unknown))}; known: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def run_metric(name: str, inp: MetricInput) -> dict[str, Value]:
    """One metric's columns; NaN plus ``<name>_status`` when it could not be computed."""
    spec = SPECS[name]
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
