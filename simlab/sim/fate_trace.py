"""A recorded fate per packet, replayed: the n-th packet handed to the link meets the n-th
record's one-way delay, or is lost.

The record is a CSV file with a header row ``seq,delay_s`` and one row per packet in the order
they were sent: ``seq`` the packet's number in the capture (kept for people reading it; replay
goes by row order), ``delay_s`` its one-way delay in seconds, or ``lost`` (an empty cell too)
when it never arrived. Lines starting with ``#`` are comments. ``simlab trace from-pcap`` makes
one from a sender-side and a receiver-side capture of an RTP stream.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Optional

import numpy as np
import simpy

from simlab.packets import Packet
from simlab.sim.link import Link, LinkParams

LOST = "lost"


def read_fates(path: str | Path) -> np.ndarray:
    """The delays of a fate trace (seconds; NaN for a lost packet); ``ValueError`` naming the row
    that is wrong."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"fate trace {path} does not exist")
    try:
        with open(path, newline="") as fh:
            rows = [r for r in csv.reader(line for line in fh if not line.lstrip().startswith("#"))]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"fate trace {path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows or [c.strip() for c in rows[0][:2]] != ["seq", "delay_s"]:
        raise ValueError(f"fate trace {path}: the first row must be the header seq,delay_s")
    out = np.empty(len(rows) - 1)
    for i, row in enumerate(rows[1:]):
        cell = row[1].strip() if len(row) > 1 else ""
        if cell in ("", LOST):
            out[i] = math.nan
            continue
        try:
            d = float(cell)
        except ValueError:
            d = math.nan
            ok = False
        else:
            ok = math.isfinite(d) and d >= 0
        if not ok:
            raise ValueError(f"fate trace {path}: row {i + 2}: delay_s {cell!r} is not a delay in seconds "
                             f"(>= 0), '{LOST}' or empty")
        out[i] = d
    if not len(out):
        raise ValueError(f"fate trace {path}: no packets (a header and no rows)")
    return out


class FateTraceLink(Link):
    """Replays ``delays`` (seconds, NaN = lost): the n-th packet arrives ``delays[n]`` after it
    is handed over, or is lost. With ``loop`` the record starts over at its end; without, the
    packets after it are lost (``after_end`` "lost") or meet its last delay ("last_delay").
    The link section's loss model erases on top (default: none); a packet over
    ``params.mtu_bytes`` is dropped (and takes no record). Bandwidth, delay, jitter, queue and
    overhead of ``params`` are not used: the record's delays hold them all."""

    def __init__(self, env: simpy.Environment, params: LinkParams, delays: np.ndarray, loop: bool = True,
                 after_end: Optional[str] = None):
        super().__init__(env, params)
        self.delays = [float(d) for d in delays]
        self.loop = loop
        self.after_end = after_end
        self._last_delay = next((d for d in reversed(self.delays) if not math.isnan(d)), math.nan)
        self._n = 0

    def _next_delay(self) -> float:
        n, self._n = self._n, self._n + 1
        if n < len(self.delays):
            return self.delays[n]
        if self.loop:
            return self.delays[n % len(self.delays)]
        return self._last_delay if self.after_end == "last_delay" else math.nan

    def transmit(self, pkt: Packet, t: float) -> bool:
        pkt.send_s = t
        if self.refuses(pkt):
            pkt.dropped = True
            return False
        delay = self._next_delay()
        self.carried_bytes += pkt.size_bytes
        erased = self.loss.lost_at(t)  # drawn for every packet: the model's sequence is its own
        if math.isnan(delay) or erased:
            pkt.lost = True
            return False
        pkt.arrival_s = t + delay
        return True
