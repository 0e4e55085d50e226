"""The monitor of one flow: what happened to every frame, from capture to playout.

It is the one element that sees both ends (as ns.py's statistics are kept by the element that
sees them): the sender registers each encoded frame, the links report each copy's fate, the
receiver reports what it released. A frame's row is written once its release is done and every
copy of its units has met its fate (delivered, erased, dropped), in frame order, so no unit is
counted twice and none is lost silently: sent = received + lost + late, per frame.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from simlab.actors.base import STAGE_COMPONENT, Decoded, Encoded, Received
from simlab.report.quantiles import StreamStats

FRAME_COLUMNS = [
    "flow", "frame", "capture_s", "send_s", "release_s", "playout_s",
    "t_context_s", "t_encoder_s", "t_ra_s", "t_transmit_s", "t_wait_s", "t_lm_s", "t_decoder_s",
    "t_coder_s", "latency_s", "eq22_latency_s", "p_hat",
    "tokens_sent", "tokens_repeated", "tokens_received", "tokens_lost", "tokens_late",
    "tokens_concealed", "payload_bits",
]


class FrameState:
    __slots__ = ("n", "capture_s", "enc", "tx", "p_hat", "sent", "copies_total", "copies_made",
                 "copies_done", "arrived", "late", "primary", "released", "row_base", "decoded",
                 "rx", "rx_start", "rx_end", "release_s", "payload_bits")

    def __init__(self, n: int, capture_s: float, enc: Encoded, tx: dict, p_hat: float):
        self.n = n
        self.capture_s = capture_s
        self.enc = enc
        self.tx = tx
        self.p_hat = p_hat
        self.sent = enc.copies > 0
        self.copies_total = int(enc.copies.sum())
        self.copies_made = 0
        self.copies_done = 0
        self.arrived = np.zeros(len(enc.copies), dtype=bool)
        self.late = np.zeros(len(enc.copies), dtype=bool)
        self.primary = None  # the first packet that carried any of its units
        self.released = False
        self.decoded: Decoded | None = None
        self.payload_bits = 0


class Monitor:
    def __init__(self, flow: int, frame_s: float, algorithmic_delay_s: float,
                 write_row: Callable[[list], None], info_columns: list[str] | None = None):
        self.flow = flow
        self.frame_s = frame_s
        self.algorithmic_delay_s = algorithmic_delay_s
        self.write_row = write_row
        self.info_columns = info_columns
        self.frames: dict[int, FrameState] = {}
        self._early: dict[int, tuple] = {}
        self._next_row = 0
        self.latency = StreamStats()
        self.eq22 = StreamStats()
        self.totals = dict.fromkeys(["tokens_sent", "tokens_repeated", "tokens_received", "tokens_lost",
                                     "tokens_late", "tokens_concealed", "frames"], 0)
        self.component_sums = dict.fromkeys(["t_context_s", "t_coder_s", "t_ra_s", "t_lm_s", "t_transmit_s",
                                             "t_wait_s"], 0.0)
        self.component_counts = dict.fromkeys(self.component_sums, 0)

    # -- sender side ---------------------------------------------------------------------------
    def encoded(self, n: int, enc: Encoded, tx: dict, p_hat: float) -> FrameState:
        st = FrameState(n, n * self.frame_s, enc, tx, p_hat)
        self.frames[n] = st
        early = self._early.pop(n, None)
        if early is not None:  # released before it was even sent (playout delay too short)
            self.released(n, *early)
        return st

    def packet_made(self, pkt) -> None:
        """A packet carrying copies of units was created (before it meets the link)."""
        seen = set()
        for frame, idx in pkt.contents:
            st = self.frames[frame]
            st.copies_made += len(idx)
            st.payload_bits += int(st.enc.unit_bits[idx].sum())
            if frame not in seen:  # side information: once per frame per packet, as on the wire
                seen.add(frame)
                st.payload_bits += st.enc.side_bits
            if st.primary is None:
                st.primary = pkt

    # -- links ---------------------------------------------------------------------------------
    def copies_delivered(self, pkt, in_time: Callable[[FrameState], bool]) -> None:
        for frame, idx in pkt.contents:
            st = self.frames[frame]
            if in_time(st):
                st.arrived[idx] = True
            else:
                st.late[idx] = True
                pkt.late = True
            st.copies_done += len(idx)
            self._maybe_finish(st)

    def copies_gone(self, pkt) -> None:
        for frame, idx in pkt.contents:
            st = self.frames[frame]
            st.copies_done += len(idx)
            self._maybe_finish(st)

    # -- receiver side -------------------------------------------------------------------------
    def received(self, n: int) -> Received | None:
        st = self.frames.get(n)
        if st is None:
            return None
        return Received(n, st.sent, st.arrived.copy(), st.enc.payload)

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
        enc, dec = st.enc, st.decoded
        tx, rx = st.tx, st.rx
        comp = {"coder": 0.0, "ra": 0.0, "lm": 0.0}
        t_enc = tx.get("encoder", 0.0)
        t_ra = tx.get("controller", 0.0)
        t_lm = rx.get("concealer", 0.0)
        t_dec = rx.get("decoder", 0.0)
        for stage, secs in list(tx.items()) + list(rx.items()):
            comp[STAGE_COMPONENT[stage]] += secs
        prim = st.primary
        send_s = prim.send_s if prim is not None else math.nan
        delivered_in_time = prim is not None and not math.isnan(prim.arrival_s) and not prim.late
        t_transmit = prim.arrival_s - prim.send_s if delivered_in_time else math.nan
        d = self.algorithmic_delay_s
        t_context = send_s - st.capture_s - t_enc - t_ra + d if prim is not None else math.nan
        reached = prim.send_s + (t_transmit if delivered_in_time else 0.0) if prim is not None else st.rx_start
        t_wait = st.rx_start - reached
        latency = st.rx_end - st.capture_s + d
        t_coder = comp["coder"]
        eq22 = t_context + t_coder + comp["ra"] + comp["lm"] + t_transmit  # NaN when not delivered
        sent = int(st.sent.sum())
        received = int((st.arrived & st.sent).sum())
        late = int((st.late & ~st.arrived & st.sent).sum())
        lost = sent - received - late
        repeated = int((enc.copies > 1).sum())
        concealed = dec.concealed if dec is not None else 0
        row = [self.flow, st.n, st.capture_s, send_s, st.release_s, st.rx_end + d,
               t_context, t_enc, t_ra, t_transmit, t_wait, t_lm, t_dec, t_coder, latency, eq22, st.p_hat,
               sent, repeated, received, lost, late, concealed, st.payload_bits]
        info = {**enc.info, **(dec.info if dec is not None else {})}
        if self.info_columns is None:
            self.info_columns = list(info)
        row.extend(info.get(k, "") for k in self.info_columns)
        self.write_row(row)
        t = self.totals
        t["frames"] += 1
        t["tokens_sent"] += sent
        t["tokens_repeated"] += repeated
        t["tokens_received"] += received
        t["tokens_lost"] += lost
        t["tokens_late"] += late
        t["tokens_concealed"] += concealed
        self.latency.add(latency)
        self.eq22.add(eq22)
        for key, val in (("t_context_s", t_context), ("t_coder_s", t_coder), ("t_ra_s", comp["ra"]),
                         ("t_lm_s", comp["lm"]), ("t_transmit_s", t_transmit), ("t_wait_s", t_wait)):
            if val == val:
                self.component_sums[key] += val
                self.component_counts[key] += 1

    def pending(self) -> int:
        return len(self.frames)
