"""A block-engine flow's totals and streaming statistics (`FlowStats`, folded as the event engine's
`simlab.sim.monitor.Monitor` folds them: the same floats), and what the summary reads of a flow
(`FlowResult`)."""
from __future__ import annotations

import numpy as np

from simlab.report.quantiles import StreamStats
from simlab.sim.block_flows import FlowState
from simlab.sim.monitor import COMPONENTS, STATS_BLOCK, TOTALS, fold_timing


class FlowStats:
    """A flow's totals and streaming statistics, folded as `Monitor` folds them."""

    def __init__(self):
        self.totals = [0] * len(TOTALS)
        self.latency, self.eq22 = StreamStats(), StreamStats()
        self.component_sums = np.zeros(len(COMPONENTS))
        self.component_counts = np.zeros(len(COMPONENTS), dtype=np.int64)
        self._buf: list[np.ndarray] = []
        self._n = 0

    @property
    def totals_dict(self) -> dict:
        return dict(zip(TOTALS, self.totals))

    def add(self, timing: np.ndarray, counts: list) -> None:
        """``timing``: [frames, 8] (latency, eq22, components); ``counts``: column sums of TOTALS."""
        for i, c in enumerate(counts):
            self.totals[i] += int(c)
        self._buf.append(timing)
        self._n += len(timing)
        if self._n >= STATS_BLOCK:
            a = np.concatenate(self._buf)
            whole = len(a) // STATS_BLOCK * STATS_BLOCK
            for i in range(0, whole, STATS_BLOCK):
                self._fold(a[i:i + STATS_BLOCK])
            self._buf, self._n = [a[whole:]], len(a) - whole

    def flush(self) -> None:
        if self._n:
            self._fold(np.concatenate(self._buf))
        self._buf, self._n = [], 0

    def _fold(self, a: np.ndarray) -> None:
        fold_timing(self, a)


class FlowResult:
    """What `simlab.simulation.summarize` reads of a flow: ``monitor`` and ``feedback``."""

    def __init__(self, state: FlowState, stats: FlowStats):
        self.monitor, self.feedback = stats, state
