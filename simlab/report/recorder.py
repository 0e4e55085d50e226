"""The run's `Recorder` (simlab.records): packets.csv and frames.csv streamed to disk (or kept
in memory for the Python API), the forward media counts the summary needs, and flow 0's
playout into received.wav."""
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

    def close(self) -> None:
        pass

    def frame(self):
        return frame_of(self.rows, self.columns, self.record)


class RunRecorder:
    """``out``: the folder the CSVs go to; None with ``keep``: rows kept in memory; None
    without: counted only. ``audio``: an `AudioPair` that gets flow 0's playout."""

    def __init__(self, out: Path | None, keep: bool = False, audio=None):
        self.out, self.keep, self.audio = out, keep, audio
        self.packets = self._stream("packets.csv", PACKET_COLUMNS, PacketRecord)
        self.frames = None  # opened at the first frame, when the system's own columns are known
        # Forward media packets: sent, lost, dropped, late, header bytes and payload bytes carried.
        self.media = [0, 0, 0, 0, 0, 0]

    def _stream(self, name: str, columns, record):
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
        self.packets.add(PacketRecord.of(pkt))

    def frame(self, record: FrameRecord, info: Sequence, info_columns: Sequence[str]) -> None:
        if self.frames is None:  # every flow runs the same system: the same columns
            self.frames = self._stream("frames.csv", FRAME_COLUMNS + list(info_columns or []), FrameRecord)
        self.frames.add((*record, *info) if info else record)

    def playout(self, flow: int, frame: int, audio) -> None:
        if flow == 0 and self.audio is not None:
            self.audio.play(frame, audio)

    def close(self) -> None:
        self.packets.close()
        if self.frames is None:
            self.frames = self._stream("frames.csv", FRAME_COLUMNS, FrameRecord)
        self.frames.close()
        if self.audio is not None:
            self.audio.close()

    def tables(self):
        """(packets, frames) DataFrames of a run kept in memory."""
        return self.packets.frame(), self.frames.frame()
