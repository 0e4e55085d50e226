"""`simlab bench`: benchmarks that print the numbers quoted in notes (never timed tests)."""
from __future__ import annotations

from simlab.bench.runner import run_bench

__all__ = ["run_bench"]
