"""runs.csv: the batch's table, and its journal.

One row per finished run, appended by the parent process alone as one ``write`` of a whole line
on a file opened with ``O_APPEND``, then fsynced: a batch killed at any instant leaves every row
whole except, at worst, a trailing partial line, which `RunTable.load` cuts off. When a row brings
a column the header lacks (a metric only some systems have), the file is rewritten once with the
wider header, atomically (a temporary file renamed over it).
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any, Iterable

from simlab.report.csvstream import _cell


def cell(v: Any) -> str:
    """A value as runs.csv writes it: floats in shortest round-trip form, mappings and lists as
    compact JSON, every line break flattened so that one row is one line."""
    if isinstance(v, (dict, list, tuple)):
        v = json.dumps(v, sort_keys=True, separators=(",", ":"))
    text = str(_cell(v))
    return " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text


def _line(values: Iterable[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([cell(v) for v in values])
    return buf.getvalue().encode()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Write a whole file through a temporary sibling renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class RunTable:
    """runs.csv at ``path``; ``leading`` are the columns every row has, first (coordinates, key, ...)."""

    def __init__(self, path: str | Path, leading: list[str], key_column: str = "key"):
        self.path = Path(path)
        self.leading = list(leading)
        self.key_column = key_column
        self.header: list[str] = []
        self.rows: dict[str, dict[str, str]] = {}

    def load(self) -> dict[str, dict[str, str]]:
        """The rows on disk by key (the last one of a key wins); a trailing partial line is cut off
        the file, so that the next append starts a fresh line."""
        data, end = self._read()
        if end < len(data):  # killed in the middle of a write: that row never happened
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        self.header, self.rows = self._parse(data[:end])
        return self.rows

    def peek(self) -> dict[str, dict[str, str]]:
        """The rows on disk by key, as `load` reads them, without changing the file (to decide
        whether to write there at all)."""
        data, end = self._read()
        return self._parse(data[:end])[1]

    def _read(self) -> tuple[bytes, int]:
        """The file's bytes ('' if absent) and where its whole lines end."""
        data = self.path.read_bytes() if self.path.exists() else b""
        return data, data.rfind(b"\n") + 1

    def _parse(self, data: bytes) -> tuple[list[str], dict[str, dict[str, str]]]:
        reader = csv.reader(io.StringIO(data.decode()))
        header = next(reader, [])
        rows: dict[str, dict[str, str]] = {}
        for values in reader:
            if len(values) != len(header):
                continue  # not a row of this table (cannot happen with whole-line appends)
            row = dict(zip(header, values))
            if self.key_column in row:
                rows[row[self.key_column]] = row
        return header, rows

    def drop(self, keys: Iterable[str]) -> None:
        """Forget rows (e.g. failed runs to retry) and rewrite the file without them."""
        keys = set(keys)
        if keys & set(self.rows):
            self.rows = {k: r for k, r in self.rows.items() if k not in keys}
            self._rewrite(self.header)

    def _columns_for(self, row: dict[str, Any]) -> list[str]:
        cols = [c for c in self.leading]
        cols += [c for c in self.header if c not in cols]
        cols += [c for c in row if c not in cols]
        return cols

    def _rewrite(self, header: list[str]) -> None:
        out = [_line(header)] + [_line(r.get(c, "") for c in header) for r in self.rows.values()]
        write_atomic(self.path, b"".join(out))
        self.header = header

    def append(self, row: dict[str, Any]) -> None:
        """Add one row: widen the header first if the row has new columns, then one O_APPEND write."""
        cols = self._columns_for(row)
        if cols != self.header:
            self._rewrite(cols)
        data = _line(row.get(c, "") for c in self.header)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            while written < len(data):  # regular files write all at once; be safe anyway
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        self.rows[str(row[self.key_column])] = {c: cell(row.get(c, "")) for c in self.header}
