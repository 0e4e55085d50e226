"""The monitor of one flow: what happened to every frame, from capture to playout.

It is the one element that sees both ends (as ns.py's statistics are kept by the element that
sees them): the sender registers each encoded frame, the links report each copy's fate, the
receiver reports what it released. A frame's row is written once its release is done and every
copy of its units has met its fate (delivered, erased, dropped), in frame order, so no unit is
counted twice and none is lost silently: sent = received + lost + late, per frame.
"""
from __future__ import annotations

import math
from array import array
from typing import Callable

import numpy as np

from simlab.actors.base import Decoded, Encoded, Received
from simlab.packets import Layout, mask_array
from simlab.records import FrameRecord, NullRecorder
from simlab.report.quantiles import StreamStats


NAN = math.nan
TOTALS = ("frames", "tokens_sent", "tokens_repeated", "tokens_received", "tokens_lost", "tokens_late",
          "tokens_concealed")
TIMING_COLUMNS = 8  # latency, eq22 and the COMPONENTS
STATS_BLOCK = 4096  # frames folded into the statistics at a time (the block engine folds the same blocks)
COMPONENTS = ("t_context", "t_coder", "t_ra", "t_lm", "t_transmit", "t_wait")


class FrameState:
    """Unit sets are bit masks (bit i = unit i): see `simlab.packets.Layout`."""

    __slots__ = ("n", "capture_s", "enc", "layout", "tx", "p_hat", "copies_total", "copies_made",
                 "copies_done", "arrived", "late", "primary", "released", "decoded",
                 "rx", "rx_start", "rx_end", "release_s", "payload_bits")

    def __init__(self, n: int, capture_s: float, enc: Encoded, layout: Layout, tx: dict, p_hat: float):
        self.n, self.capture_s, self.p_hat = n, capture_s, p_hat
        self.enc, self.layout, self.tx = enc, layout, tx
        self.copies_total = layout.sent.bit_count() + layout.double.bit_count()
        self.copies_made = 0
        self.copies_done = 0
        self.arrived = 0
        self.late = 0
        self.primary = None  # the first packet that carried any of its units
        self.released = False
        self.decoded: Decoded | None = None
        self.payload_bits = 0


class Monitor:
    """``recorder.frame`` gets each frame's `FrameRecord` and the system's own values."""

    def __init__(self, flow: int, frame_s: float, algorithmic_delay_s: float = 0.0, recorder=None,
                 info_columns: list[str] | None = None):
        self.flow = flow
        self.frame_s = frame_s
        self.algorithmic_delay_s = algorithmic_delay_s
        self.recorder = recorder if recorder is not None else NullRecorder()
        self.info_columns = info_columns
        self.start_s = 0.0  # when the call starts (frame n is captured at start_s + n T)
        self.frames: dict[int, FrameState] = {}
        self._early: dict[int, tuple] = {}
        self._next_row = 0
        self.latency = StreamStats()
        self.eq22 = StreamStats()
        self.totals = [0] * len(TOTALS)
        # per-frame times not yet folded into the statistics, TIMING_COLUMNS floats per frame
        # (an array, not tuples: 64 bytes a frame instead of ~300)
        self._timing = array("d")
        self.component_sums = np.zeros(len(COMPONENTS))
        self.component_counts = np.zeros(len(COMPONENTS), dtype=np.int64)

    # -- sender side ---------------------------------------------------------------------------
    def encoded(self, n: int, enc: Encoded, layout: Layout, tx: dict, p_hat: float) -> FrameState:
        st = FrameState(n, self.start_s + n * self.frame_s, enc, layout, tx, p_hat)
        self.frames[n] = st
        early = self._early.pop(n, None)
        if early is not None:  # released before it was even sent (playout delay too short)
            self.released(n, *early)
        return st

    def packet_made(self, pkt) -> None:
        """A packet carrying copies of units was created (before it meets the link)."""
        seen = set()
        for frame, _mask, k, bits in pkt.contents:
            st = self.frames[frame]
            st.copies_made += k
            st.payload_bits += bits
            if frame not in seen:  # side information: once per frame per packet, as on the wire
                seen.add(frame)
                st.payload_bits += st.enc.side_bits
            if st.primary is None:
                st.primary = pkt

    # -- links ---------------------------------------------------------------------------------
    def copies_delivered(self, pkt, in_time: Callable[[FrameState], bool]) -> None:
        for frame, mask, k, _bits in pkt.contents:
            st = self.frames[frame]
            if in_time(st):
                st.arrived |= mask
            else:
                st.late |= mask
                pkt.late = True
            st.copies_done += k
            self._maybe_finish(st)

    def copies_gone(self, pkt) -> None:
        for frame, _mask, k, _bits in pkt.contents:
            st = self.frames[frame]
            st.copies_done += k
            self._maybe_finish(st)

    # -- receiver side -------------------------------------------------------------------------
    def received(self, n: int) -> Received | None:
        st = self.frames.get(n)
        if st is None:
            return None
        n_units = st.layout.n_units
        return Received(n, mask_array(st.layout.sent, n_units), mask_array(st.arrived, n_units), st.enc.payload)

    def released(self, n: int, release_s: float, decoded: Decoded, rx: dict, rx_start: float,
                 rx_end: float) -> None:
        st = self.frames.get(n)
        if st is None:
            self._early[n] = (release_s, decoded, rx, rx_start, rx_end)
            return
        st.released = True
        st.release_s, st.decoded, st.rx, st.rx_start, st.rx_end = release_s, decoded, rx, rx_start, rx_end
        self._maybe_finish(st)

    def is_released(self, n: int) -> bool:
        st = self.frames.get(n)
        return st is not None and st.released

    # -- rows ----------------------------------------------------------------------------------
    def _maybe_finish(self, st: FrameState) -> None:
        if st.released and st.copies_done == st.copies_total and st.copies_made == st.copies_total:
            while True:
                nxt = self.frames.get(self._next_row)
                if nxt is None or not (nxt.released and nxt.copies_done == nxt.copies_total
                                       and nxt.copies_made == nxt.copies_total):
                    break
                self._row(nxt)
                del self.frames[self._next_row]
                self._next_row += 1

    def _row(self, st: FrameState) -> None:
        enc, dec, tx, rx = st.enc, st.decoded, st.tx, st.rx
        # The four stages and the eq. (22) term each belongs to (STAGE_COMPONENT).
        t_enc = tx.get("encoder", 0.0)
        t_ra = tx.get("controller", 0.0)
        t_lm = rx.get("concealer", 0.0)
        t_dec = rx.get("decoder", 0.0)
        t_coder = t_enc + t_dec
        prim = st.primary
        d = self.algorithmic_delay_s
        if prim is not None:
            send_s = prim.send_s
            in_time = prim.arrival_s == prim.arrival_s and not prim.late
            t_transmit = prim.arrival_s - send_s if in_time else NAN
            t_context = send_s - st.capture_s - t_enc - t_ra + d
            t_wait = st.rx_start - (prim.arrival_s if in_time else send_s)
        else:  # nothing sent: no packet to fill or carry; the frame waits for its release
            send_s = t_transmit = NAN
            t_context = d
            t_wait = st.rx_start - st.capture_s - t_enc - t_ra
        latency = st.rx_end - st.capture_s + d
        eq22 = t_context + t_coder + t_ra + t_lm + t_transmit  # NaN when not delivered in time
        sent_mask = st.layout.sent
        sent = sent_mask.bit_count()
        received = (st.arrived & sent_mask).bit_count()
        late = (st.late & ~st.arrived & sent_mask).bit_count()
        lost = sent - received - late
        repeated = st.layout.double.bit_count()
        concealed = dec.concealed if dec is not None else 0
        record = FrameRecord(self.flow, st.n, st.capture_s, send_s, st.release_s, st.rx_end + d,
                             t_context, t_enc, t_ra, t_transmit, t_wait, t_lm, t_dec, t_coder, latency, eq22,
                             st.p_hat, sent, repeated, received, lost, late, concealed, st.payload_bits)
        if self.info_columns is None:
            self.info_columns = list(enc.info) + list(dec.info if dec is not None else ())
        values = ()
        if self.info_columns:
            info = {**enc.info, **dec.info} if dec is not None else enc.info
            values = [info.get(k, "") for k in self.info_columns]
        self.recorder.frame(record, values, self.info_columns)
        t = self.totals
        t[0] += 1
        t[1] += sent
        t[2] += repeated
        t[3] += received
        t[4] += lost
        t[5] += late
        t[6] += concealed
        self._timing.extend((latency, eq22, t_context, t_coder, t_ra, t_lm, t_transmit, t_wait))
        if len(self._timing) >= STATS_BLOCK * TIMING_COLUMNS:
            self.flush_stats()

    def flush_stats(self) -> None:
        """Fold the buffered per-frame times into the streaming statistics (a block at a time:
        numpy instead of per-frame Python)."""
        if not self._timing:
            return
        a = np.frombuffer(self._timing, dtype=np.float64).reshape(-1, TIMING_COLUMNS).copy()
        self._timing = array("d")
        fold_timing(self, a)

    @property
    def totals_dict(self) -> dict:
        return dict(zip(TOTALS, self.totals))

    def pending(self) -> int:
        return len(self.frames)


def fold_timing(stats, a: np.ndarray) -> None:
    """Fold a block of frames' times (rows of TIMING_COLUMNS: latency, eq22, the COMPONENTS) into
    ``stats``' ``latency``, ``eq22``, ``component_sums`` and ``component_counts`` (a `Monitor`, or
    the block engine's `simlab.sim.block_stats.FlowStats`: the same folds give the same floats)."""
    stats.latency.add_many(a[:, 0])
    stats.eq22.add_many(a[:, 1])
    comp = a[:, 2:]
    ok = ~np.isnan(comp)
    stats.component_sums += np.where(ok, comp, 0.0).sum(axis=0)
    stats.component_counts += ok.sum(axis=0)
