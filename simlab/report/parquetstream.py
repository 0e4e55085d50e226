"""Records streamed to a Parquet file (pyarrow): for runs whose tables reach gigabytes as CSV.

Rows are buffered and written one row group at a time, so memory stays flat in the run's
length. Columns are typed as their record declares (`simlab.records`); a system's own columns
hold the text a CSV cell would (``str`` of the value, "" for None), so `simlab.records.read_table`
gives the same DataFrame from either file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from simlab.errors import UserError
from simlab.records import COUNTING_COLUMNS
from simlab.report import column_block as cb
from simlab.report.csvstream import RowStream


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("outputs.format: parquet needs pyarrow (pip install 'simlab[parquet]')") from None
    return pa, pq


def _texts(values) -> list[str]:
    """A text column's cells: what a CSV cell holds (``str`` of the value, "" for None)."""
    return ["" if v is None else str(v) for v in values]


class ParquetStream(RowStream):
    """``types``: column -> pandas dtype (int64, float64; anything else is text)."""

    def __init__(self, path: str | Path, columns: Sequence[str], types: Mapping[str, str],
                 buffer_rows: int = 65_536):
        super().__init__(buffer_rows)
        pa, pq = _pyarrow()
        self._pa = pa
        self.path = Path(path)
        self.columns = list(columns)
        arrow = {"int64": pa.int64(), "float64": pa.float64()}
        self._types = [arrow.get(types.get(c, "object"), pa.string()) for c in self.columns]
        self._schema = pa.schema(list(zip(self.columns, self._types)))
        self._pool = cb.memory_pool()  # the pool blocks are formatted in (see there why not Arrow's default)
        # Dictionaries for text and for integers of few values, not for times or counters: a column
        # of distinct values dictionary-encoded is larger and slower than plain (a 1-hour call's
        # frames: 339 kB in 12 ms, against 420 kB in 16 ms with dictionaries on the counters too and
        # 681 kB in 30 ms on every column; 20 flows, whose times repeat from flow to flow: 2.4 MB in
        # 104 ms, 2.1 MB in 104 ms and 1.6 MB in 147 ms).
        coded = [c for c, t in zip(self.columns, self._types) if t != pa.float64() and c not in COUNTING_COLUMNS]
        self._writer = pq.ParquetWriter(str(self.path), self._schema, compression="zstd", use_dictionary=coded,
                                        memory_pool=self._pool)
        # Blocks (add_block) buffered ahead of self._rows: Arrow arrays per column, and their rows.
        self._pieces: list[list] = []
        self._pending = 0

    def _arrays(self, rows: list) -> list:
        pa = self._pa
        arrays = []
        for values, t in zip(zip(*rows), self._types):
            if t == pa.string():
                values = _texts(values)
            arrays.append(pa.array(values, type=t, memory_pool=self._pool))
        return arrays

    def _write(self, rows: list) -> None:
        self._writer.write_table(self._pa.Table.from_arrays(self._arrays(rows), schema=self._schema))

    def _column(self, col, t):
        """A block's column as the Arrow array its rows would give (numpy straight through)."""
        pa = self._pa
        if t == pa.string():
            cells = cb.text_cells(col)  # str() of each value, as the rows' cells
            if cells is not None:
                return cells
            return pa.array(_texts(cb.pylist(col)), type=t, memory_pool=self._pool)
        if isinstance(col, np.ndarray) and col.dtype == t.to_pandas_dtype():
            return pa.array(col, type=t, memory_pool=self._pool)
        return pa.array(cb.pylist(col), type=t, memory_pool=self._pool)

    def add_block(self, columns: Sequence) -> None:
        """The rows buffered by ``add`` first, then the block: the same row groups as row by row."""
        n = cb.block_len(columns, len(self.columns))
        if not n:
            return
        if self._rows:
            self._pieces.append(self._arrays(self._rows))
            self._pending += len(self._rows)
            self._rows = []
        arrays = [self._column(c, t) for c, t in zip(columns, self._types)]
        start = 0
        while start < n:  # a block may complete a group and start the next
            take = min(n - start, self._buffer_rows - self._pending)
            self._pieces.append([a.slice(start, take) for a in arrays])
            self._pending += take
            start += take
            if self._pending >= self._buffer_rows:
                self.flush()
        self._room = self._buffer_rows - self._pending

    def flush(self) -> None:
        if not self._pieces:
            return super().flush()
        if self._rows:
            self._pieces.append(self._arrays(self._rows))
        # One contiguous array a column: Parquet pages come out as from a single block of rows.
        arrays = [self._pa.concat_arrays([p[i] for p in self._pieces], memory_pool=self._pool)
                  for i in range(len(self.columns))]
        self._writer.write_table(self._pa.Table.from_arrays(arrays, schema=self._schema))
        self.count += self._pending + len(self._rows)
        self._pieces, self._pending, self._room = [], 0, self._buffer_rows
        self._rows.clear()

    def close(self) -> None:
        if not self._rows and not self._pieces and self.count == 0:  # an empty table still has its columns
            self._writer.write_table(self._schema.empty_table())
        self.flush()
        self._writer.close()
