"""Records streamed to a Parquet file (pyarrow): for runs whose tables reach gigabytes as CSV.

Rows are buffered and written one row group at a time, so memory stays flat in the run's
length. Columns are typed as their record declares (`simlab.records`); a system's own columns
hold the text a CSV cell would (``str`` of the value, "" for None), so `simlab.records.read_table`
gives the same DataFrame from either file.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from simlab.errors import UserError
from simlab.report.csvstream import RowStream


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError("outputs.format: parquet needs pyarrow (pip install 'simlab[parquet]')") from None
    return pa, pq


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
        self._writer = pq.ParquetWriter(str(self.path), self._schema, compression="zstd")

    def _write(self, rows: list) -> None:
        pa = self._pa
        arrays = []
        for values, t in zip(zip(*rows), self._types):
            if t == pa.string():
                values = ["" if v is None else str(v) for v in values]
            arrays.append(pa.array(values, type=t))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        if not self._rows and self.count == 0:  # an empty table still has its columns
            self._writer.write_table(self._schema.empty_table())
        self.flush()
        self._writer.close()
