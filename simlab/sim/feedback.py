"""Loss feedback: the receiver estimates the loss rate and reports it to the sender over a
reverse link with its own delay and loss; the controller sees only the latest report that
arrived, never the true p.

Reports are made lazily but exactly: report k describes the packets that arrived before
k * interval_s, so it is produced before the first later arrival is counted, or when the sender
asks for p-hat. Nothing here needs an event of its own: each report crosses the reverse `Link`
through ``transmit`` (its queue, bandwidth, loss and delay) at the time it is made.
"""
from __future__ import annotations

import bisect
import math
from typing import Any

from simlab.packets import Packet
from simlab.records import NullRecorder
from simlab.rtcp import ReceptionReport, rtcp_bytes
from simlab.sim.estimators import RtcpCounter


class Feedback:
    """The receiver's loss reports and their way back to the sender.

    ``arrived(t, pkt)`` counts a media packet; ``p_hat(t)`` is what the sender knows at t.
    ``link`` is the reverse path (a `Link`; its ``transmit`` decides each report's fate);
    ``estimator`` has ``update(t, expected, received) -> p_hat`` (`simlab.sim.estimators`).
    Report packets (kind ``feedback``, ``overhead_bytes`` of headers around ``report_bytes``)
    go to ``recorder.packet`` as soon as their fate is known. With ``rtcp`` (``"compound"`` or
    ``"reduced"``) a report is an RTCP receiver report (`simlab.rtcp`): its payload is the RTCP
    bytes, p-hat its 8-bit fraction lost (16 bits in an APP packet when ``report_bytes`` > 1), and
    ``tap(packet, ReceptionReport)`` (a capture) gets each one as it is sent.
    """

    def __init__(self, interval_s: float, report_bytes: int, estimator, link, flow: int = 0,
                 overhead_bytes: int = 0, initial_p: float = 0.0, recorder: Any = None,
                 outage_s: float | None = None, packet_interval_s: float | None = None, rtcp: str | None = None):
        self.interval_s, self.report_bytes, self.overhead_bytes = interval_s, report_bytes, overhead_bytes
        self.rtcp = rtcp
        self.payload_bytes = rtcp_bytes(report_bytes, rtcp == "reduced") if rtcp else report_bytes
        self.tap = None  # tap(report packet, ReceptionReport) under rtcp (a pcap capture)
        self.estimator, self.link, self.flow = estimator, link, flow
        self.recorder = recorder if recorder is not None else NullRecorder()
        self.counter = RtcpCounter()
        # Outage detection: with no arrival for ``outage_s``, each report counts the packets the
        # sender would have sent since the last one (one per ``packet_interval_s``, at least one)
        # as lost, so p-hat rises during a silence instead of waiting for the next arrival; when
        # packets come back, the sequence gap they reveal is not counted a second time.
        self.outage_s, self.packet_interval_s = outage_s, packet_interval_s
        self._last_arrival = 0.0
        self._assumed = 0
        self.size_bytes = overhead_bytes + self.payload_bytes
        # A report of n bytes quantises p-hat to 2^(8n) - 1 steps (at most 16 bits), as a real one would;
        # an RTCP report of 1 byte is the RR's fraction lost, n/256.
        self._levels = 256 if rtcp and report_bytes == 1 else (1 << (8 * min(report_bytes, 2))) - 1
        self._k = 1  # next report index (report k at k * interval_s)
        self._seq = 0
        # What reached the sender: arrival times (increasing) and values.
        self._times: list[float] = [-math.inf]
        self._values: list[float] = [initial_p]
        # the latest time p-hat was asked for: the sender asks in capture order, so no later question
        # is about an earlier time (catch_up's times are not in that order: an arrival at t comes
        # before the sender's wake that asks about a frame captured before t)
        self._asked = -math.inf
        self.start_s = 0.0  # when the call starts: report k is made at start_s + k interval_s
        # Or when ``rule.next_due(previous report's time, initial)`` says (`simlab.sim.rtcp_interval`).
        self.rule = None
        self._due_s: float | None = None
        self._prev_s = 0.0
        self.duration_s = math.inf  # the call's length: reports due by start_s + duration_s count in in_call
        self.in_call = 0
        self.carried_bytes = 0
        self.sent = self.lost = 0

    def arrived(self, t: float, pkt: Packet) -> None:
        self.catch_up(t)
        self.counter.arrived(pkt.seq)
        self._last_arrival = t

    def catch_up(self, t: float) -> None:
        """Make every report due at or before ``t`` (they count arrivals strictly before)."""
        if self.rule is not None:
            while self.next_report_s <= t:
                tau = self._due_s
                self._report(tau)
                self._k += 1
                self._prev_s, self._due_s = tau, self.rule.next_due(tau)
            return
        while self.start_s + self._k * self.interval_s <= t:
            self._report(self.start_s + self._k * self.interval_s)
            self._k += 1

    @property
    def next_report_s(self) -> float:
        """When the next report not yet made is due: none made later is sent before this."""
        if self.rule is None:
            return self.start_s + self._k * self.interval_s
        if self._due_s is None:
            self._prev_s, self._due_s = self.start_s, self.rule.next_due(self.start_s, initial=True)
        return self._due_s

    def p_hat(self, t: float) -> float:
        self.catch_up(t)
        self._asked = t
        # The latest report that arrived by t; report arrivals can be out of order under jitter.
        i = bisect.bisect_right(self._times, t) - 1
        return self._values[i]

    def _report(self, tau: float) -> None:
        expected, received = self.counter.interval()
        if self.outage_s is not None:
            expected, received = self._outage(tau, expected, received)
        value = self.estimator.update(tau, expected, received)
        level = round(value * self._levels)
        if self._levels == 256:
            level = min(level, 255)  # the fraction lost's largest value
        value = level / self._levels
        pkt = Packet(self.flow, self._seq, "feedback", self.overhead_bytes, 8 * self.payload_bytes, [])
        self._seq += 1
        if tau <= self.start_s + self.duration_s:
            self.in_call += 1
        self.carried_bytes += self.size_bytes
        self.sent += 1
        if not self.link.transmit(pkt, tau):
            self.lost += 1
        else:
            arrival = pkt.arrival_s
            times = self._times
            if arrival < times[-1]:
                # This report is the newest; older reports arriving after it (reordered by
                # jitter) are stale by sequence number and a real sender ignores them.
                i = bisect.bisect_right(times, arrival)
                del times[i:], self._values[i:]
            times.append(arrival)
            self._values.append(value)
            if len(times) > 1024:
                self._trim()
        if self.tap is not None:
            self.tap(pkt, self._reception_report(value, level))
        self.recorder.packet(pkt)

    def _reception_report(self, value: float, level: int) -> ReceptionReport:
        c = self.counter
        fraction = level if self._levels == 256 else min(255, round(value * 256))
        app = None
        if self.report_bytes > 1:
            app = level.to_bytes(2, "big") + bytes(self.report_bytes - 2)
        return ReceptionReport(fraction, c.max_seq + 1 - c.received, c.max_seq, app, self.rtcp == "reduced")

    def _outage(self, tau: float, expected: int, received: int) -> tuple[int, int]:
        if self._assumed:  # the gap that just ended was counted during the silence
            take = min(self._assumed, max(0, expected - received))
            expected -= take
            self._assumed -= take
        if received == 0 and tau - self._last_arrival >= self.outage_s:
            span = self.interval_s if self.rule is None else tau - self._prev_s
            n = max(1, round(span / self.packet_interval_s)) if self.packet_interval_s else 1
            expected += n
            self._assumed += n
        return expected, received

    def _trim(self) -> None:
        # Keep memory flat: of the reports that arrived by the latest time asked about only the newest
        # can still matter; those after it all may (a long reverse delay can hold more than 1024).
        # (Trimming by the latest catch_up instead dropped the answer for a frame captured before
        # an arrival its wake came after: its p-hat became the newest report's.)
        i = bisect.bisect_right(self._times, self._asked) - 1
        if i > 0:
            del self._times[:i]
            del self._values[:i]
