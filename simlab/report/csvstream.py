"""Records streamed to disk: rows are buffered briefly and appended, so a long run does not grow
memory with the number of packets."""
from __future__ import annotations

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
        self.count = 0

    def add(self, row: Sequence) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._buffer_rows:
            self.flush()

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

    def _write(self, rows: list) -> None:
        # Rows hold ints, strings and floats only: csv writes floats in their shortest exact
        # form (repr), NaN as 'nan', None as an empty cell.
        self._w.writerows(rows)

    def close(self) -> None:
        self.flush()
        self._fh.close()


class NullStream:
    """Counts rows and writes nothing (benchmarks of the simulation alone)."""

    def __init__(self, *_a, **_k):
        self.count = 0

    def add(self, row) -> None:
        self.count += 1

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
