"""The run's `Recorder` (simlab.records): packets.csv and frames.csv streamed to disk (or kept
in memory for the Python API), the forward media counts the summary needs, and flow 0's
playout into received.wav.

A packet's fate is known at different times (an erasure when it is sent, a delivery when it
arrives, a report when the receiver makes it), so packets.csv would come out of send order;
`SendOrder` puts each flow's rows back in send order before they are written.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from simlab.records import FRAME_COLUMNS, PACKET_COLUMNS, FrameRecord, PacketRecord, frame_of
from simlab.report.csvstream import CsvStream, NullStream


class MemoryStream:
    """Rows kept in a list (``Result.packets`` / ``.frames`` of a run written nowhere)."""

    def __init__(self, columns: Sequence[str], record):
        self.columns = list(columns)
        self.record = record
        self.rows: list = []
        self.count = 0

    def add(self, row) -> None:
        self.rows.append(row)
        self.count += 1

    def add_block(self, columns) -> None:
        """Rows given as columns: the Python values ``add`` would hold."""
        from simlab.report.column_block import block_len, rows

        self.count += block_len(columns, len(self.columns))
        self.rows.extend(rows(columns))

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def frame(self):
        return frame_of(self.rows, self.columns, self.record)


class _Stream:
    """One numbered stream of a flow's packets (its forward packets, media and redundant, share one
    numbering; its reports have another), each numbered from 0 in send order."""

    __slots__ = ("next_seq", "waiting", "ready")

    def __init__(self) -> None:
        self.next_seq = 0
        self.waiting: dict[int, PacketRecord] = {}  # fate known, an earlier packet's not yet
        self.ready: list[PacketRecord] = []  # in send order, waiting for the other stream


class SendOrder:
    """Hands ``emit`` each flow's packet records in send order, ``(send_s, seq)``: forward packets
    before a report sent at the same instant. A record waits until every earlier-sent packet of its
    flow has its fate: a forward packet until the ones numbered before it (those in flight) are
    known and until the flow's reports have got past its send time; a report likewise. Memory:
    the packets in flight plus one report interval. ``close`` writes what is left, sorted."""

    def __init__(self, emit):
        self.emit = emit
        self._flows: dict[int, tuple[_Stream, _Stream]] = {}

    def add(self, rec: PacketRecord) -> None:
        streams = self._flows.get(rec.flow)
        if streams is None:
            streams = self._flows[rec.flow] = (_Stream(), _Stream())
        st = streams[rec.kind == "feedback"]
        if rec.seq != st.next_seq:
            st.waiting[rec.seq] = rec
            return
        st.ready.append(rec)
        st.next_seq += 1
        while st.next_seq in st.waiting:
            st.ready.append(st.waiting.pop(st.next_seq))
            st.next_seq += 1
        self._merge(*streams)

    def _merge(self, fwd: _Stream, rev: _Stream) -> None:
        a, b = fwd.ready, rev.ready
        i = j = 0
        while i < len(a) and j < len(b):
            if a[i].send_s <= b[j].send_s:
                self.emit(a[i])
                i += 1
            else:
                self.emit(b[j])
                j += 1
        del a[:i], b[:j]

    def close(self) -> None:
        for flow in sorted(self._flows):
            rows = [(r.send_s, k, r.seq, r) for k, st in enumerate(self._flows[flow])
                    for r in (*st.ready, *st.waiting.values())]
            for *_, r in sorted(rows, key=lambda t: t[:3]):
                self.emit(r)
        self._flows.clear()


class RunRecorder:
    """``out``: the folder the tables go to (``fmt`` csv or parquet); None with ``keep``: rows kept
    in memory; None without: counted only. ``audio``: an `AudioPair` that gets flow 0's playout."""

    def __init__(self, out: Path | None, keep: bool = False, audio=None, fmt: str = "csv"):
        self.out, self.keep, self.audio, self.fmt = out, keep, audio, fmt
        self.packets = self._stream("packets.csv", PACKET_COLUMNS, PacketRecord)
        # Nothing kept (a benchmark of the simulation alone): no record to build or order.
        self._order = None if isinstance(self.packets, NullStream) else SendOrder(self.packets.add)
        self.frames = None  # opened at the first frame, when the system's own columns are known
        # Forward media packets: sent, lost, dropped, late, header bytes and payload bytes carried.
        self.media = [0, 0, 0, 0, 0, 0]

    def _stream(self, name: str, columns, record):
        if self.out is not None and self.fmt == "parquet":
            from simlab.records import column_types
            from simlab.report.parquetstream import ParquetStream

            return ParquetStream(self.out / name.replace(".csv", ".parquet"), columns, column_types(record))
        if self.out is not None:
            return CsvStream(self.out / name, columns)
        return MemoryStream(columns, record) if self.keep else NullStream()

    def packet(self, pkt) -> None:
        if pkt.kind != "feedback":
            s = self.media
            s[0] += 1
            s[1] += pkt.lost
            s[2] += pkt.dropped
            s[3] += pkt.late
            if not pkt.dropped:
                s[4] += pkt.header_bytes
                s[5] += pkt.payload_bytes
        if self._order is not None:
            self._order.add(PacketRecord.of(pkt))

    def frame(self, record: FrameRecord, info: Sequence, info_columns: Sequence[str]) -> None:
        if self.frames is None:  # every flow runs the same system: the same columns
            self.frames = self._stream("frames.csv", FRAME_COLUMNS + list(info_columns or []), FrameRecord)
        self.frames.add((*record, *info) if info else record)

    def playout(self, flow: int, frame: int, audio) -> None:
        if flow == 0 and self.audio is not None:
            self.audio.play(frame, audio)

    def close(self) -> None:
        if self._order is not None:
            self._order.close()
        self.packets.close()
        if self.frames is None:
            self.frames = self._stream("frames.csv", FRAME_COLUMNS, FrameRecord)
        self.frames.close()
        if self.audio is not None:
            self.audio.close()

    def tables(self):
        """(packets, frames) DataFrames of a run kept in memory."""
        return self.packets.frame(), self.frames.frame()
