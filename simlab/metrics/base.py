"""What every metric receives and the two ways a metric can decline to score.

A metric is a plain function ``MetricInput -> dict[column, value]``. It raises
`MissingPackage` when a library it needs is not installed (so the table says so instead
of showing a 0) and `Skipped` when its input is absent (no transcript, no frames table).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Any

import numpy as np

#: Every audio metric scores 16 kHz mono float in [-1, 1].
METRIC_RATE = 16_000


@dataclass(frozen=True)
class MetricInput:
    """Aligned 16 kHz reference and received audio plus what some metrics also need."""

    reference: np.ndarray
    received: np.ndarray
    transcript: str | None = None
    seed: int = 0
    recognizer: str = "faster-whisper"
    frames: Any = None  # pandas.DataFrame of frames.csv, for token_accuracy
    run: Any = None  # simlab.metrics.run_tables.RunTables, for metrics that score the run's tables


class MissingPackage(Exception):
    """A library a metric needs is not installed; ``pip_name`` says what to install."""

    def __init__(self, pip_name: str):
        super().__init__(f"missing: pip install {pip_name}")
        self.pip_name = pip_name


class Skipped(Exception):
    """The metric cannot be computed from this input (its message says why)."""


def need(module: str, pip_name: str) -> ModuleType:
    """Import ``module`` or raise `MissingPackage` naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingPackage(pip_name) from None


def package_version(pip_name: str) -> str:
    """Installed version of a distribution, or ``"?"`` (used in settings strings)."""
    try:
        return version(pip_name)
    except PackageNotFoundError:
        return "?"
