"""The block engine's per-flow state: each call's losses, its loss reports and what the sender
knew of them, advanced a block of packets at a time (`simlab.sim.block_engine`).

Everything here is what `Link.transmit`, `Feedback` and `RtcpCounter` do packet by packet, in the
same order and with the same arithmetic: a loss model's decisions in send order, report k at
``k * interval_s`` counting the arrivals strictly before it, each report through the reverse
link's FIFO and loss, p-hat quantised as the report's bytes allow, the sender seeing the latest
report that had arrived.
"""
from __future__ import annotations

import numpy as np

from simlab.sim.block_timing import fifo


class FlowState:
    """One call's losses and reports. ``reverse``: (bandwidth_bps, delay_s, wire_bytes of a
    report); ``levels``: p-hat's quantisation steps (`Feedback._levels`)."""

    def __init__(self, flow: int, fwd_loss, rev_loss, estimator, interval_s: float, reverse: tuple,
                 levels: int, initial_p: float, size_bytes: int):
        self.flow, self.fwd_loss, self.rev_loss, self.estimator = flow, fwd_loss, rev_loss, estimator
        self.interval_s, self.levels = interval_s, levels
        self.rev_bw, self.rev_delay, self.rev_wire = reverse
        self.rev_free = 0.0
        self.k = 0  # reports made
        self.max_seq, self.received = -1, 0  # RtcpCounter at the last report
        # delivered forward packets not yet behind a report: arrival event times, sequence numbers
        self.arr_ev = np.zeros(0)
        self.arr_seq = np.zeros(0, dtype=np.int64)
        self.arrived_total = 0  # delivered packets before arr_ev[0]
        self.max_before = -1  # the highest sequence number among those
        # what reached the sender: report arrival times (increasing) and values
        self.rep_arrival = np.array([-np.inf])
        self.rep_value = np.array([initial_p])
        self.sent = self.lost = 0
        self.carried_bytes = 0
        # what `simlab.simulation.summarize` reads of a `Feedback`: every report counts as made within
        # the call (reports at a fixed interval), no interval rule, a report's bytes
        self.rule, self.size_bytes = None, size_bytes

    @property
    def in_call(self) -> int:
        return self.sent

    def add_arrivals(self, ev: np.ndarray, seq: np.ndarray) -> None:
        self.arr_ev = np.concatenate([self.arr_ev, ev])
        self.arr_seq = np.concatenate([self.arr_seq, seq])

    def report_times(self, limit: float) -> np.ndarray:
        """The times of the reports due at or before ``limit`` not yet made."""
        k1 = max(self.k, int(limit / self.interval_s) + 2)
        while k1 > self.k and 0.0 + k1 * self.interval_s > limit:
            k1 -= 1
        return 0.0 + np.arange(self.k + 1, k1 + 1, dtype=np.int64) * self.interval_s

    def make_reports(self, limit: float) -> dict:
        """Make every report due by ``limit`` (the arrivals before each must all be known): their
        columns (``tau``, ``arrival`` NaN when lost, ``lost``, ``seq``) and ``next_arrival``, the first known
        arrival event at or after each (the report is made then, or at a sender's wake)."""
        tau = self.report_times(limit)
        m = len(tau)
        n_before = np.searchsorted(self.arr_ev, tau, side="left")
        next_arrival = np.concatenate([self.arr_ev, [np.inf]])[n_before]  # the arrival that makes it, if any
        cum = self.arrived_total + n_before
        seqs = np.concatenate([[self.max_before], self.arr_seq])
        max_seq = seqs[n_before]  # the latest arrival's before each (RtcpCounter's highest)
        expected = np.diff(np.concatenate([[self.max_seq], max_seq]))
        received = np.diff(np.concatenate([[self.received], cum]))
        values = self._estimates(tau, expected, received)
        # quantised as `Feedback._report` does (numpy's rint rounds half to even, as round does)
        level = np.rint(values * self.levels)
        if self.levels == 256:
            level = np.minimum(level, 255)
        values = level / self.levels
        _, depart, self.rev_free = fifo(tau, self.rev_wire * 8.0 / self.rev_bw, self.rev_free)
        lost = self.rev_loss.lost_many(tau)
        arrival = np.where(lost, np.nan, depart + self.rev_delay)
        seq = np.arange(self.k, self.k + m, dtype=np.int64)
        if m:
            self.k += m
            self.max_seq, self.received = int(max_seq[-1]), int(cum[-1])
            used = int(n_before[-1])
            if used:
                self.arrived_total += used
                self.max_before = int(self.arr_seq[used - 1])
                self.arr_ev, self.arr_seq = self.arr_ev[used:], self.arr_seq[used:]
            ok = ~lost
            self.rep_arrival = np.concatenate([self.rep_arrival, arrival[ok]])
            self.rep_value = np.concatenate([self.rep_value, values[ok]])
        self.sent += m
        self.lost += int(lost.sum())
        self.carried_bytes += m * self.size_bytes
        return {"tau": tau, "arrival": arrival, "lost": lost, "seq": seq, "next_arrival": next_arrival}

    def _estimates(self, tau, expected, received) -> np.ndarray:
        """The estimator's value after each report: its ``update_many`` where it has one."""
        many = getattr(self.estimator, "update_many", None)
        if many is not None:
            return many(tau, expected, received)
        upd = self.estimator.update
        return np.fromiter((upd(float(t), int(e), int(r)) for t, e, r in zip(tau, expected, received)),
                           dtype=np.float64, count=len(tau))

    def p_hat(self, ready: np.ndarray) -> np.ndarray:
        """What the sender knew at each of ``ready`` (increasing): the latest report that had
        arrived by then. Reports that can no longer be the latest are dropped (flat memory)."""
        i = np.searchsorted(self.rep_arrival, ready, side="right") - 1
        out = self.rep_value[i]
        if len(ready):
            keep = int(i[-1])
            self.rep_arrival, self.rep_value = self.rep_arrival[keep:], self.rep_value[keep:]
        return out
