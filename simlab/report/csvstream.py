"""Records streamed to disk: rows are buffered briefly and appended, so a long run does not grow
memory with the number of packets."""
from __future__ import annotations

import codecs
import csv
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence


def _cell(v):
    """A summary cell (simulation.write_summary): NaN and None empty, floats in their shortest exact form."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        return repr(v)  # shortest round-trip form: exact and deterministic
    if isinstance(v, bool):
        return int(v)
    return v


class RowStream(ABC):
    """Rows buffered, ``buffer_rows`` at a time, and handed to ``_write`` in order (a long run's
    memory stays flat); ``count`` the rows written."""

    def __init__(self, buffer_rows: int):
        self._rows: list = []
        self._buffer_rows = buffer_rows
        self._room = buffer_rows  # rows add() buffers before a flush (fewer after a block: Parquet)
        self.count = 0

    def add(self, row: Sequence) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._room:
            self.flush()

    @abstractmethod
    def add_block(self, columns: Sequence) -> None:
        """Rows given as columns (`simlab.report.column_block`), after the rows buffered so far:
        the same file as ``add`` of each row."""

    def flush(self) -> None:
        if self._rows:
            self._write(self._rows)
            self.count += len(self._rows)
            self._rows.clear()

    @abstractmethod
    def _write(self, rows: list) -> None:
        """Write a block of rows (in order) to the file."""


class CsvStream(RowStream):
    def __init__(self, path: str | Path, columns: Sequence[str], buffer_rows: int = 8192):
        super().__init__(buffer_rows)
        self.path = Path(path)
        self.columns = list(columns)
        self._fh = open(self.path, "w", newline="")
        self._w = csv.writer(self._fh, lineterminator="\n")
        self._w.writerow(self.columns)
        self._utf8 = codecs.lookup(self._fh.encoding).name == "utf-8"  # block text goes straight in

    def _write(self, rows: list) -> None:
        # Rows hold ints, strings and floats only: csv writes floats in their shortest exact
        # form (repr), NaN as 'nan', None as an empty cell.
        self._w.writerows(rows)

    def add_block(self, columns: Sequence) -> None:
        from simlab.report import column_block as cb  # pyarrow (optional) only for blocks

        n = cb.block_len(columns, len(self.columns))
        self.flush()
        parts = [[c[a:b] for c in columns] for a, b in cb.chunks(n)]
        for part, text in zip(parts, cb.csv_texts(parts)):  # written in order
            if text is None:
                self._w.writerows(cb.rows(part))
            elif self._utf8:
                self._fh.flush()  # what csv.writer wrote first
                self._fh.buffer.write(text)
            else:
                self._fh.write(str(text, "utf-8"))
        self.count += n

    def close(self) -> None:
        self.flush()
        self._fh.close()


class NullStream:
    """Counts rows and writes nothing (benchmarks of the simulation alone)."""

    def __init__(self, *_a, **_k):
        self.count = 0

    def add(self, row) -> None:
        self.count += 1

    def add_block(self, columns) -> None:
        self.count += len(columns[0]) if len(columns) else 0

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
