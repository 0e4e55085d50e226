"""The block engine: calls whose sender does not listen (a system with a fixed layout, like
`synthetic`) simulated a block of packets at a time as numpy arrays, with the same tables, byte
for byte, as the event engine (`simlab.sim.flow` on SimPy).

Why it can: such a call's timing does not depend on its losses (`simlab.sim.block_timing`
computes it once for every flow), and its losses and reports depend on nothing later
(`simlab.sim.block_flows`), so a block of packets needs no event of its own. What the rows say
is the event engine's arithmetic on arrays; the order they are written in is the event engine's
order (`simlab.sim.block_rows`). `simlab.block_run` decides when a scenario can take this way.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simlab.packets import HeaderProfile
from simlab.sim.block_flows import FlowState
from simlab.sim.block_stats import FlowResult, FlowStats
from simlab.sim.block_rows import INF, first_after, merge_flows, next_value, prefix_before
from simlab.sim.block_timing import Clock, block_bounds

# Blocks bound memory whatever the call's length. One flow: 24k packets (larger blocks cost less a
# row to compute and format: a 10-hour call took 0.61 s in blocks of 24k, 0.69 s in blocks of 16k;
# peak memory 235 MB against 201 MB). Many: at least 512 packets a flow (a block's per-flow work,
# some 60 numpy calls, is then spread thin) up to 128k packets in all, 16 a flow at least.
ROWS_PER_BLOCK, ROWS_MAX, GROUPS_MIN = 3 << 13, 1 << 17, 512
# A one-flow call shorter than two blocks is still cut in two (not below 4k packets a block): the
# second block reuses the memory the first one freed, where one block would touch all of it fresh
# (a one-hour call: 11k page faults against 18k, which cost 40-230 ms of system time on this
# machine's first run), and the first block is written while the second is computed.
HALVES_MIN = 1 << 12


@dataclass(frozen=True)
class BlockCall:
    """One call as the block engine needs it (`simlab.block_run.block_call` builds it). A frame
    sends ``units_sent`` units, ``units_double`` of them twice, in ``frame_bits`` bits of copies,
    plus ``side_bits``; ``stage_s`` is each stage's charge (0.0 when uncharged) and ``tx_s``/``rx_s``
    the sums the devices serve."""

    n_frames: int
    frame_s: float
    group_frames: int
    lookahead: int
    playout_s: float
    units_sent: int
    units_double: int
    frame_bits: int
    side_bits: int
    stage_s: dict
    tx_s: float
    rx_s: float
    algorithmic_delay_s: float
    headers: HeaderProfile
    bandwidth_bps: float
    delay_s: float
    link_overhead_bytes: int
    report_size_bytes: int
    report_header_bytes: int
    report_payload_bytes: int
    info: tuple  # (column, value) pairs of the system's own frames.csv columns

    def packet_sizes(self, groups: np.ndarray, frames_in: np.ndarray) -> tuple:
        """(header bytes, payload bytes, payload bits) of the media packets ``groups``."""
        h = self.headers
        header = np.full(len(groups), h.steady_bytes, dtype=np.int64)
        if h.refresh_every:
            header[groups % h.refresh_every == 0] = h.refresh_bytes
        bits = frames_in * (self.frame_bits + self.side_bits)
        return header, (bits + 7) // 8, bits

    def clock(self) -> Clock:
        def sizes(groups, frames_in):
            header, payload, _ = self.packet_sizes(groups, frames_in)
            return header + payload

        return Clock(self.n_frames, self.frame_s, self.group_frames, self.tx_s, self.rx_s, self.lookahead,
                     self.playout_s, sizes, self.link_overhead_bytes, self.bandwidth_bps, self.delay_s)


def block_groups(flows: int) -> int:
    """Groups (packets) per flow in one block (see ``ROWS_PER_BLOCK``)."""
    flows = max(1, flows)
    return max(16, ROWS_PER_BLOCK // flows, min(GROUPS_MIN, ROWS_MAX // flows))


class _Pending:
    """A flow's rows computed but not yet written: columns plus the arrays their keys need."""

    def __init__(self):
        self.cols: dict[str, np.ndarray] = {}

    def extend(self, cols: dict) -> None:
        if not self.cols:
            self.cols = cols
        else:
            self.cols = {k: np.concatenate([self.cols[k], v]) for k, v in cols.items()}

    def take(self, n: int) -> dict:
        out = {k: v[:n] for k, v in self.cols.items()}
        self.cols = {k: v[n:] for k, v in self.cols.items()}
        return out


class BlockRun:
    """Runs ``call`` for ``states`` (one `FlowState` per flow), handing rows to ``recorder``
    (`simlab.report.recorder.RunRecorder`) in the event engine's order; ``results`` after `run`."""

    def __init__(self, call: BlockCall, states: list[FlowState], recorder):
        self.call, self.states, self.recorder = call, states, recorder
        self.clock = call.clock()
        self.stats = [FlowStats() for _ in states]
        self.frames = [_Pending() for _ in states]
        self.packets = [_Pending() for _ in states]
        F = len(states)
        self.last_ev = [-INF] * F  # each flow's latest delivered arrival event
        self.trig_ev = [np.zeros(0) for _ in states]  # arrivals that can still release a pending frame
        self.frame_key = [-INF] * F  # the key of the last frame row written (rows are written in order)
        self.fwd_fate = [-INF] * F  # the latest fate among the forward packets written
        self._last_packet_key = [-INF] * F  # the key of the last packet row written
        self.per_block = block_groups(F)
        if F == 1:
            self.per_block = min(self.per_block, max(HALVES_MIN, -(-self.clock.groups // 2)))

    def run(self) -> list[FlowResult]:
        from concurrent.futures import ThreadPoolExecutor

        P = self.clock.groups
        # Write-behind: a thread per table writes a block's rows (Arrow's formatting and the file
        # writes release the GIL) while the next block is computed; one block waits at most (flat
        # memory), and each table's blocks are written in order.
        with ThreadPoolExecutor(1, "simlab-frames") as frames, ThreadPoolExecutor(1, "simlab-packets") as packets:
            self._writers, self._writing = (frames, packets), [None, None]
            for g0, g1 in block_bounds(P, self.per_block):
                self.t = self.clock.block(g0, g1)
                self._block(g0, g1)
            # What the streams still buffer (a Parquet row group under way) is encoded on the
            # writers too, both tables at once, not one after the other when the run closes them.
            jobs = self._writing + [self._writers[table].submit(stream.flush) for table, stream in
                                    enumerate((self.recorder.frames, self.recorder.packets)) if stream is not None]
            for job in jobs:
                if job is not None:
                    job.result()
        release_memory()
        for s in self.stats:
            s.flush()
        return [FlowResult(st, s) for st, s in zip(self.states, self.stats)]

    def _block(self, g0: int, g1: int) -> None:
        c, t = self.call, self.t
        last = g1 == self.clock.groups
        horizon = t.next_wake
        n0 = int(t.first_frame[0])
        n1 = n0 + len(t.ready)
        gs = np.arange(g0, g1, dtype=np.int64)
        send, arrival, ev = t.send, t.arrival, t.arrive_ev
        first_rel = t.release[t.first_frame - n0]
        gi = t.group - g0
        fr = self._frame_common(n0, n1, gi, send, arrival, ev)
        self._horizon, self._out_frames, self._out_packets, self._stats_later = horizon, [], [], []
        self._wake_search = (np.concatenate([t.ready_last, [t.next_ready_last]]),
                             np.concatenate([t.wake, [t.next_wake, INF]]))
        later = []
        for f, st in enumerate(self.states):
            lost = st.fwd_loss.lost_many(send)
            ok = ~lost
            st.add_arrivals(ev[ok], gs[ok])
            if ok.any():
                self.last_ev[f] = float(ev[ok][-1])
            limit = horizon if not last else max(0.0 + c.n_frames * c.frame_s, self.last_ev[f])
            reps = st.make_reports(limit)
            p_hat = st.p_hat(t.ready)
            late_pkt = ok & (ev > first_rel)
            fate = np.where(lost, send, ev)
            self._frames(f, fr, gi, ok, late_pkt, fate, p_hat, ev, n0, n1)
            later.append((f, lost, late_pkt, fate, reps))
        # frames.csv's rows go to their writer before the packets are made: it starts a block early
        self._write(0, self._out_frames)
        for stats in self._stats_later:
            stats()
        header, payload, bits = c.packet_sizes(gs, t.frames_in)
        for f, lost, late_pkt, fate, reps in later:
            self._packets(f, gs, send, arrival, header, payload, bits, lost, late_pkt, fate, reps)
        self._write(1, self._out_packets)

    def _wake_at_or_after(self, tau: np.ndarray) -> np.ndarray:
        """The wake of the first group of this block or the next's first whose frames' p-hat lookups
        reach ``tau`` (inf: a later one)."""
        ready_last, wake = self._wake_search
        return wake[np.searchsorted(ready_last, tau, side="left")]

    def _frame_common(self, n0, n1, gi, send, arrival, ev) -> dict:
        """The frame columns every flow shares, and both variants of those that depend on whether
        the frame's packet arrived in time."""
        c, t = self.call, self.t
        s = c.stage_s
        n = np.arange(n0, n1, dtype=np.int64)
        capture = 0.0 + n * c.frame_s
        d = c.algorithmic_delay_s
        t_enc, t_ra, t_lm, t_dec = s["encoder"], s["controller"], s["concealer"], s["decoder"]
        t_coder = t_enc + t_dec
        snd, arr = send[gi], arrival[gi]
        t_context = snd - capture - t_enc - t_ra + d
        t_transmit = arr - snd
        rx_start, rx_end = t.rx_start, t.rx_end
        return {"n": n, "capture": capture, "send": snd, "arrival": arr, "ev": ev[gi], "release": t.release,
                "playout": rx_end + d, "t_context": t_context, "t_transmit": t_transmit,
                "t_wait_in": rx_start - arr, "t_wait_out": rx_start - snd, "latency": rx_end - capture + d,
                "eq22_in": t_context + t_coder + t_ra + t_lm + t_transmit, "stage": (t_enc, t_ra, t_lm, t_dec, t_coder)}

    def _frames(self, f, fr, gi, ok, late_pkt, fate, p_hat, ev, n0, n1) -> None:
        c = self.call
        S, D, n = c.units_sent, c.units_double, fr["n"]
        t_enc, t_ra, t_lm, t_dec, t_coder = fr["stage"]
        delivered = ok[gi]
        in_time = delivered & (fr["ev"] <= fr["release"])
        prim_ok = delivered & ~late_pkt[gi]
        t_transmit = np.where(prim_ok, fr["t_transmit"], np.nan)
        t_wait = np.where(prim_ok, fr["t_wait_in"], fr["t_wait_out"])
        eq22 = np.where(prim_ok, fr["eq22_in"], np.nan)
        received = np.where(in_time, S, 0)
        late = np.where(delivered & ~in_time, S, 0)
        lost = S - received - late
        m = len(n)
        # the columns that vary; those the same in every row are added as the rows are written
        cols = {"frame": n, "capture_s": fr["capture"], "send_s": fr["send"], "release_s": fr["release"],
                "playout_s": fr["playout"], "t_context_s": fr["t_context"], "t_transmit_s": t_transmit,
                "t_wait_s": t_wait, "latency_s": fr["latency"], "eq22_latency_s": eq22, "p_hat": p_hat,
                "tokens_received": received, "tokens_lost": lost, "tokens_late": late}

        def stats() -> None:  # after the block's frames have gone to their writer: off its way
            timing = np.column_stack([fr["latency"], eq22, fr["t_context"], np.full(m, t_coder), np.full(m, t_ra),
                                      np.full(m, t_lm), t_transmit, t_wait])
            self.stats[f].add(timing, [m, S * m, D * m, received.sum(), lost.sum(), late.sum(), 0])

        self._stats_later.append(stats)
        cols["_release"], cols["_fate"] = fr["release"], fate[gi]
        pend = self.frames[f]
        pend.extend(cols)
        self.trig_ev[f] = np.concatenate([self.trig_ev[f], ev[ok]])
        self._frame_out(f, n1)

    def _frame_out(self, f, n1) -> None:
        """Write flow f's frame rows whose key is before the horizon (all of them at the end)."""
        pend, last = self.frames[f], n1 == self.call.n_frames
        rel = pend.cols["_release"]
        trigger = first_after(self.trig_ev[f], rel, strict=True)  # released at the first arrival after it
        key = np.maximum.accumulate(np.maximum(np.maximum(trigger, pend.cols["_fate"]), self.frame_key[f]))
        k = len(key) if last else prefix_before(key, self._horizon)
        rows = pend.take(k)
        if k:
            self.frame_key[f] = float(key[k - 1])
        left = pend.cols["_release"]
        floor = left[0] if len(left) else self.t.next_release
        self.trig_ev[f] = self.trig_ev[f][self.trig_ev[f] > floor]
        self._out_frames.append((rows, key[:k]))

    def _packets(self, f, gs, send, arrival, header, payload, bits, lost, late_pkt, fate, reps) -> None:
        c, m, r = self.call, len(gs), len(reps["tau"])
        media = self.recorder.media
        media[0] += m
        media[1] += int(lost.sum())
        media[3] += int(late_pkt.sum())
        media[4] += int(header.sum())
        media[5] += int(payload.sum())

        def full(v, k, dtype=np.int64):
            return np.full(k, v, dtype=dtype)

        # media then reports, each in its own order; "kind" and "flow" are added as rows are written
        cols = {"seq": (gs, reps["seq"]), "send_s": (send, reps["tau"]),
                "arrival_s": (np.where(lost, np.nan, arrival), reps["arrival"]),
                "header_bytes": (header, full(c.report_header_bytes, r)),
                "payload_bytes": (payload, full(c.report_payload_bytes, r)),
                "payload_bits": (bits, full(8 * c.report_payload_bytes, r)),
                "first_frame": (self.t.first_frame, full(-1, r)), "lost": (lost, reps["lost"]),
                "late": (late_pkt, full(False, r, bool)), "_fwd": (full(True, m, bool), full(False, r, bool)),
                "_t": (fate, full(np.nan, r, np.float64)),
                # when a report is made: its first arrival after due, or the sender's wake (below)
                "_m": (full(np.nan, m, np.float64), reps["next_arrival"])}
        pend = self.packets[f]
        old = pend.cols
        p = {k: np.concatenate([old[k], *v] if old else v) for k, v in cols.items()}
        # one flow's order: send time, a forward packet before a report at the same instant, sequence
        order = np.lexsort((p["seq"], ~p["_fwd"], p["send_s"]))
        pend.cols = p = {k: v[order] for k, v in p.items()}
        is_fwd = p["_fwd"]
        ok = ~lost
        # a report (this block's or one still waiting) is made by the first of its flow's arrivals or
        # the sender's wakes at or after its due time (a forward packet's _m stays NaN)
        rep = np.flatnonzero(~is_fwd)
        due = p["send_s"][rep]
        p["_m"][rep] = np.minimum(p["_m"][rep], np.minimum(first_after(self.t.arrive_ev[ok], due, strict=False),
                                                           self._wake_at_or_after(due)))
        ready = np.maximum.accumulate(np.maximum(np.where(is_fwd, p["_t"], -INF), self.fwd_fate[f]))
        key = np.where(is_fwd, np.maximum(ready, next_value(~is_fwd, p["_m"])),
                       np.maximum(p["_m"], next_value(is_fwd, ready)))
        key = np.maximum.accumulate(np.maximum(key, self._last_packet_key[f]))
        last = self._horizon == INF
        k = len(key) if last else prefix_before(key, self._horizon)
        if k:
            self.fwd_fate[f] = float(ready[k - 1])
            self._last_packet_key[f] = float(key[k - 1])
        self._out_packets.append((pend.take(k), key[:k]))

    def _write(self, table: int, out: list) -> None:
        """Hands table ``table``'s rows of this block (0: frames, 1: packets; ``out`` a (columns, keys)
        pair a flow) to its writer, in the event engine's order across flows."""
        from simlab.records import FRAME_COLUMNS, PACKET_COLUMNS, FrameRecord

        rec, c = self.recorder, self.call
        if table == 0:
            names = FRAME_COLUMNS + [k for k, _ in c.info]
            if rec.frames is None:
                rec.frames = rec._stream("frames.csv", names, FrameRecord)
            t_enc, t_ra, t_lm, t_dec = (c.stage_s[s] for s in ("encoder", "controller", "concealer", "decoder"))
            same = {"t_encoder_s": t_enc, "t_ra_s": t_ra, "t_lm_s": t_lm, "t_decoder_s": t_dec,
                    "t_coder_s": t_enc + t_dec, "tokens_sent": c.units_sent, "tokens_repeated": c.units_double,
                    "tokens_concealed": 0, "payload_bits": c.frame_bits + c.side_bits, **dict(c.info)}
            stream = rec.frames
        else:
            names, same, stream = PACKET_COLUMNS, {"dropped": 0}, rec.packets
        job = self._writing[table]
        if job is not None:
            job.result()  # the table's block before is written (its errors raised here)
            self._writing[table] = None
        if table == 0:
            release_memory()  # once a block
        parts = [(f, cols, key) for f, (cols, key) in enumerate(out) if len(key)]
        if not parts:
            return
        if len(parts) == 1:
            f, cols, key = parts[0]
            flow = np.broadcast_to(np.int64(f), len(key))
        else:
            order = merge_flows([key for _, _, key in parts])
            flow = np.concatenate([np.full(len(key), f, dtype=np.int64) for f, _, key in parts])[order]
            cols = {k: np.concatenate([c[k] for _, c, _ in parts])[order] for k in parts[0][1]}
        n = len(flow)
        # constant columns as broadcasts: no copies, and the writers see they are constant
        cols = {**cols, "flow": flow, **{k: np.broadcast_to(np.array(v), n) for k, v in same.items()}}
        if table == 1:
            import pandas as pd  # here, not at import: the event engine's runs need not load it

            cols["kind"] = pd.Categorical.from_codes(cols["_fwd"].astype(np.int8), KINDS)
            cols["lost"], cols["late"] = cols["lost"].astype(np.int64), cols["late"].astype(np.int64)
        self._writing[table] = self._writers[table].submit(stream.add_block, [cols[k] for k in names])


KINDS = ["feedback", "media"]  # a packet's kind by _fwd: a categorical column (its text is made once)


def release_memory() -> None:
    """The writers' transient Arrow buffers handed back between blocks (the allocators keep tens of
    MB otherwise: the run's memory would grow for its first blocks)."""
    import sys

    cb = sys.modules.get("simlab.report.column_block")
    if cb is not None:
        cb.release_memory()


