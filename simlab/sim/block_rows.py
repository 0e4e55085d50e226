"""The order the event engine writes rows in, for the block engine (`simlab.sim.block_engine`).

Each flow's rows come out in a fixed order (frames by number; packets by send time, a forward
packet before a report sent at the same instant, then by sequence number). Across flows the rows
interleave by *when* the event engine wrote them, and this module computes that instant for
every row ("its key"), from the same rules the event engine follows:

- a frame's row is written when it has been released (at the first arrival of its flow after its
  release time, or when the call finishes) and every copy of its units has met its fate (an
  erasure at the send, a delivery at the arrival), and after the frame before it (`Monitor`);
- a packet's row waits for every earlier packet of its stream to have its fate (`SendOrder`),
  then for the report stream to have got past its send time (a report is made at the first
  arrival or sender wake at or after its due time); what never gets past is written at the end.

Events of different flows at one instant run in flow order (they are scheduled by events of the
same kind at the same earlier instant, so SimPy's insertion order is the flows' order; the engine
refuses timings where events of different kinds coincide). Rows with a key before the horizon
(the next block's first event) are final and written; the rest wait for the next block.
"""
from __future__ import annotations

import numpy as np

INF = np.inf


def first_after(times: np.ndarray, x: np.ndarray, strict: bool) -> np.ndarray:
    """For each x, the first of ``times`` (increasing) > x (``strict``) or >= x; inf if none."""
    i = np.searchsorted(times, x, side="right" if strict else "left")
    padded = np.concatenate([times, [INF]])
    return padded[i]


def next_value(is_target: np.ndarray, values: np.ndarray) -> np.ndarray:
    """For each position, ``values`` at the first later position (itself excluded) where
    ``is_target``; inf when there is none."""
    n = len(is_target)
    idx = np.where(is_target, np.arange(n), n)
    nxt = np.minimum.accumulate(idx[::-1])[::-1]  # first target at or after each position
    later = np.concatenate([nxt[1:], [n]])
    padded = np.concatenate([values, [INF]])
    return padded[later]


def prefix_before(keys: np.ndarray, horizon: float) -> int:
    """How many leading rows have keys before ``horizon`` (keys along a flow never decrease;
    the first row at or past the horizon stops the prefix in any case)."""
    late = np.flatnonzero(keys >= horizon)
    return int(late[0]) if len(late) else len(keys)


def merge_flows(keys: list[np.ndarray]) -> np.ndarray:
    """The write order of rows from several flows (``keys[f]`` per flow, its rows in the flow's
    own order): by key, flows in order at one instant, each flow's own order kept."""
    key = np.concatenate(keys)
    flow = np.concatenate([np.full(len(k), f, dtype=np.int64) for f, k in enumerate(keys)])
    pos = np.concatenate([np.arange(len(k)) for k in keys])
    return np.lexsort((pos, flow, key))
