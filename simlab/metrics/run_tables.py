"""A finished run's tables as metrics that need no audio read them (the E-model): the forward
media packets in send order with their fates, and the frames' mouth-to-ear latency; the whole
call, or the part of it in a window.

Packets fall in a window by their send time, frames by their capture time, as in
`simlab.metrics.net_windows` (windows are half-open, [start, end)).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simlab.metrics.net_windows import read_csv

PACKETS = {"flow": "int32", "seq": "int64", "kind": "category", "send_s": "float64", "lost": "int8",
           "late": "int8", "dropped": "int8"}
FRAMES = {"flow": "int32", "capture_s": "float64", "latency_s": "float64"}


@dataclass(frozen=True)
class RunTables:
    """``flow``, ``send_s`` and ``missing`` (erased, dropped or late: lost to the decoder) of the
    forward media packets, sorted by flow and send order; ``capture_s`` and ``latency_s`` of the
    frames, sorted by capture time; ``system``: the scenario's system spec."""

    flow: np.ndarray
    send_s: np.ndarray
    missing: np.ndarray
    capture_s: np.ndarray
    latency_s: np.ndarray
    system: Any = None

    @classmethod
    def read(cls, folder: str | Path, system: Any = None) -> "RunTables":
        folder = Path(folder)
        pk = read_csv(folder / "packets.csv", PACKETS, "packets table")
        pk = pk[(pk["kind"] != "feedback").to_numpy()].sort_values(["flow", "send_s", "seq"], kind="stable")
        fr = read_csv(folder / "frames.csv", FRAMES, "frames table").sort_values("capture_s", kind="stable")
        missing = (pk["lost"].to_numpy() + pk["dropped"].to_numpy() + pk["late"].to_numpy()) > 0
        return cls(pk["flow"].to_numpy(), pk["send_s"].to_numpy(), missing,
                   fr["capture_s"].to_numpy(), fr["latency_s"].to_numpy(), system)

    def window(self, start: float, end: float) -> "RunTables":
        """The packets sent and the frames captured in [start, end)."""
        parts = []
        for a, b in self._flow_bounds():  # sorted by send time within a flow: two searches per flow
            lo, hi = a + np.searchsorted(self.send_s[a:b], [start, end], side="left")
            parts.append(np.arange(lo, hi))
        keep = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        lo, hi = np.searchsorted(self.capture_s, [start, end], side="left")
        return RunTables(self.flow[keep], self.send_s[keep], self.missing[keep], self.capture_s[lo:hi],
                         self.latency_s[lo:hi], self.system)

    def _flow_bounds(self) -> list[tuple[int, int]]:
        edges = np.concatenate([[0], np.flatnonzero(np.diff(self.flow)) + 1, [len(self.flow)]])
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def sequences(self):
        """Each flow's fates (``missing``) in send order."""
        for a, b in self._flow_bounds():
            yield self.missing[a:b]
