"""RFC 3550's RTCP transmission interval (§6.2, §6.3, Appendix A.7), for ``feedback.interval:
rfc3550``: RTCP gets 5 % of the session bandwidth; when senders are at most a quarter of the
members they share 25 % of it and the receivers 75 %, otherwise every member shares it alike; the
deterministic interval is n · (average RTCP packet size) / (RTCP bandwidth), at least 5 s (2.5 s
before the first report) or, with the reduced minimum, 360 / (session kbit/s) s; each interval is
randomised by a factor uniform in [0.5, 1.5] and divided by e − 3/2, and timer reconsideration
(§6.3.6) draws again at each expiry, sending only when the new draw does not reach past the timer:
with constant membership the intervals then average the deterministic one exactly.

A call is two members, one sender: the sender's own RTCP (sender reports) is not modelled, and the
average RTCP size is the receiver's report as charged (its IP/UDP headers included, as §6.2 asks).
"""
from __future__ import annotations

import math

import numpy as np

RTCP_FRACTION = 0.05
SENDER_FRACTION = 0.25
MIN_S = 5.0
COMPENSATION = math.e - 1.5


class Rfc3550Interval:
    """``next_due(tp, initial)``: when the report after one sent at ``tp`` goes out (``initial``:
    the first, ``tp`` the call's start). Draws from ``rng``."""

    def __init__(self, session_bps: float, rtcp_bytes: int, rng: np.random.Generator,
                 reduced_minimum: bool = False, members: int = 2, senders: int = 1, we_sent: bool = False):
        self.rng = rng
        bw = RTCP_FRACTION * session_bps / 8.0  # bytes per second
        n = members
        if senders <= members * SENDER_FRACTION:
            if we_sent:
                bw, n = bw * SENDER_FRACTION, senders
            else:
                bw, n = bw * (1 - SENDER_FRACTION), members - senders
        self.min_s = 360.0 / (session_bps / 1000.0) if reduced_minimum else MIN_S
        self._need_s = n * rtcp_bytes / bw

    def deterministic_s(self, initial: bool = False) -> float:
        """Td: the interval before randomisation (its mean, with reconsideration)."""
        return max(self.min_s / 2 if initial else self.min_s, self._need_s)

    def draw_s(self, initial: bool = False) -> float:
        return self.deterministic_s(initial) * (self.rng.random() + 0.5) / COMPENSATION

    def next_due(self, tp: float, initial: bool = False) -> float:
        tn = tp + self.draw_s(initial)
        while True:  # reconsideration at each expiry
            t = tp + self.draw_s(initial)
            if t <= tn:
                return tn
            tn = t
