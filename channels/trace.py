"""Trace-driven erasures: a recorded 0/1 per packet (1 = lost), replayed in order."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from channels.base import LossModel


#: A trace larger than this is no 0/1 list (100 million packets fit in 200 MB): refused unread.
MAX_TRACE_BYTES = 1 << 30


def read_trace(path: str | Path) -> np.ndarray:
    """A file of 0/1 decisions, whitespace- or comma-separated, '#' comments allowed."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: loss trace {'is a directory' if path.is_dir() else 'not found'}")
    try:
        if path.stat().st_size > MAX_TRACE_BYTES:
            raise ValueError(f"{path}: {path.stat().st_size} bytes is no loss trace (at most {MAX_TRACE_BYTES})")
        text = path.read_text()
    except OSError as exc:  # /proc/self/mem, a file the user may not read
        raise ValueError(f"{path}: cannot read the loss trace ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a loss trace (not text: a file of 0 and 1)") from None
    values: list[bool] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for tok in line.split("#", 1)[0].replace(",", " ").split():
            if tok not in ("0", "1"):
                raise ValueError(f"{path}:{lineno}: {tok!r} is not 0 or 1")
            values.append(tok == "1")
    if not values:
        raise ValueError(f"{path}: loss trace is empty")
    return np.array(values, dtype=bool)


class Trace(LossModel):
    """Replays ``decisions``; past the end it starts over (``loop``), or else loses every packet
    (``lost_after_end``) or none."""

    def __init__(self, decisions: np.ndarray, loop: bool = True, lost_after_end: bool = False):
        super().__init__()
        self.decisions = np.asarray(decisions, dtype=bool)
        if self.decisions.size == 0:
            raise ValueError("loss trace is empty")
        self.loop = loop
        self.lost_after_end = lost_after_end
        self._pos = 0

    @classmethod
    def from_file(cls, path: str | Path, loop: bool = True, lost_after_end: bool = False) -> "Trace":
        return cls(read_trace(path), loop, lost_after_end)

    def _fill(self, n: int) -> np.ndarray:
        m = len(self.decisions)
        idx = self._pos + np.arange(n)
        self._pos += n
        if self.loop:
            return self.decisions[idx % m]
        out = np.full(n, self.lost_after_end, dtype=bool)
        inside = idx < m
        out[inside] = self.decisions[idx[inside]]
        return out

    @property
    def mean_loss(self) -> float:
        return float(self.decisions.mean())
