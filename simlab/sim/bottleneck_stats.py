"""What crossed a bottleneck, per flow and per interval of ``record_s``: the rows of
bottleneck.csv. Calls and cross traffic alike (cross-traffic packets are not in packets.csv: a
minute of a Mbit/s TCP flow would be thousands of rows there)."""
from __future__ import annotations

import math
from typing import Any

#: bottleneck.csv's columns, in order.
COLUMNS = ("t_s", "flow", "kind", "sent_packets", "sent_bytes", "dropped_packets", "lost_packets",
           "delivered_packets", "delivered_bytes", "goodput_bytes", "queue_delay_min_s", "queue_delay_mean_s",
           "queue_delay_max_s", "cwnd_packets")

# accumulator slots
_SENT, _SENT_B, _DROP, _LOST, _DELIV, _DELIV_B, _GOOD, _QN, _QSUM, _QMIN, _QMAX = range(11)


def _fresh() -> list:
    return [0, 0, 0, 0, 0, 0, 0, 0, 0.0, math.inf, -math.inf]


class BottleneckStats:
    """``register(flow, kind)`` each flow first; the link reports ``sent``, ``dropped``,
    ``lost``, ``served`` (with the time the packet waited in the queue) and ``delivered``; a TCP
    flow adds ``goodput`` (new bytes delivered in order) and ``cwnd``. Calls come in time order
    (simulated time never goes back); a row is written once its interval is over, for every
    registered flow, to ``sink.add(row)``; ``close(end_s)`` writes the rest.

    ``queue_delay_*_s``: the time packets served in the interval waited in the queue (not their
    own transmission); ``goodput_bytes`` is ``delivered_bytes`` for flows that do not report
    it; ``cwnd_packets`` the latest congestion window (TCP only)."""

    def __init__(self, record_s: float, sink: Any):
        self.record_s, self.sink = record_s, sink
        self.kinds: dict[int, str] = {}
        self.goodput_reported: set[int] = set()
        self._acc: dict[int, list] = {}
        self._cwnd: dict[int, float] = {}
        self._k = 0  # the interval being accumulated

    def register(self, flow: int, kind: str, reports_goodput: bool = False) -> None:
        self.kinds[flow] = kind
        self._acc[flow] = _fresh()
        if reports_goodput:
            self.goodput_reported.add(flow)

    def _at(self, t: float) -> None:
        k = int(t // self.record_s)
        while self._k < k:
            self._write(self._k)
            self._k += 1

    def _write(self, k: int) -> None:
        t0 = k * self.record_s
        for flow in sorted(self.kinds):
            a = self._acc[flow]
            good = a[_GOOD] if flow in self.goodput_reported else a[_DELIV_B]
            qn = a[_QN]
            self.sink.add((t0, flow, self.kinds[flow], a[_SENT], a[_SENT_B], a[_DROP], a[_LOST], a[_DELIV],
                           a[_DELIV_B], good, a[_QMIN] if qn else math.nan, a[_QSUM] / qn if qn else math.nan,
                           a[_QMAX] if qn else math.nan, self._cwnd.get(flow, math.nan)))
            self._acc[flow] = _fresh()

    def sent(self, pkt, t: float) -> None:
        self._at(t)
        a = self._acc[pkt.flow]
        a[_SENT] += 1
        a[_SENT_B] += pkt.size_bytes

    def dropped(self, pkt, t: float) -> None:
        self._at(t)
        self._acc[pkt.flow][_DROP] += 1

    def lost(self, pkt, t: float) -> None:
        self._at(t)
        self._acc[pkt.flow][_LOST] += 1

    def served(self, pkt, t: float, waited_s: float) -> None:
        self._at(t)
        a = self._acc[pkt.flow]
        a[_QN] += 1
        a[_QSUM] += waited_s
        if waited_s < a[_QMIN]:
            a[_QMIN] = waited_s
        if waited_s > a[_QMAX]:
            a[_QMAX] = waited_s

    def delivered(self, pkt, t: float) -> None:
        self._at(t)
        a = self._acc[pkt.flow]
        a[_DELIV] += 1
        a[_DELIV_B] += pkt.size_bytes

    def goodput(self, flow: int, t: float, nbytes: int) -> None:
        self._at(t)
        self._acc[flow][_GOOD] += nbytes

    def cwnd(self, flow: int, t: float, packets: float) -> None:
        self._at(t)
        self._cwnd[flow] = packets

    def close(self, end_s: float) -> None:
        """Write every interval up to the one holding ``end_s``."""
        self._at(end_s)
        self._write(self._k)
        self._k += 1
        self.sink.close()
