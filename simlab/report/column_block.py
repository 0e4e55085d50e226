"""Column blocks (the block engine's rows as numpy columns) turned into CSV text or Arrow arrays,
exactly as the row path (`CsvStream`, `ParquetStream`) writes the same rows one by one.

A block is a list with one entry per table column, in the table's order: a numpy array (float64,
int64, bool) or a Python list (text columns: a packet's kind, a mask "11111111"), all the same
length. Its rows are ``zip(*(c.tolist() ...))``: Python floats, ints and strings.

Why pyarrow: csv.writer calls repr per float cell (~0.2-0.5 us); numpy's ``astype(str)`` gives
the same text but is slower still. Arrow's float->string cast writes the same shortest
round-trip digits as repr in C, ~10x faster, in another layout ("1" for 1.0, "1e+15" for
1000000000000000.0, "0.00001" for 1e-05, "2.5e-7" for 2.5e-07). Cells are kept where the two
layouts agree: repr is positional for 1e-4 <= |x| < 1e16, so an Arrow cell there without an
exponent is repr once ".0" is added to integral values. Zero, NaN and inf agree too (after ".0"
for zero). The rest (|x| < 1e-4, |x| >= 1e16, the odd exponent Arrow writes below 1e16) is
formatted by repr, cell by cell: rare in a run's tables. Without pyarrow, or when a text cell
needs csv quoting, the caller writes the block's rows with csv.writer instead.
"""
from __future__ import annotations

import csv
import io

import numpy as np

try:  # optional (the `parquet` extra): CSV falls back to csv.writer without it
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - exercised by monkeypatching HAVE_ARROW
    pa = pc = None
HAVE_ARROW = pa is not None
CHUNK_ROWS = 65_536  # rows formatted at a time: ~25 MB of frames.csv text


def block_len(columns, ncols: int) -> int:
    """The block's row count; a one-line error for a block that does not fit the table."""
    if len(columns) != ncols:
        raise ValueError(f"add_block: {len(columns)} columns given, the table has {ncols}")
    lens = {len(c) for c in columns}
    if len(lens) > 1:
        raise ValueError(f"add_block: columns of different lengths {sorted(lens)}")
    for c in columns:
        if isinstance(c, np.ndarray) and c.ndim != 1:
            raise ValueError(f"add_block: a column must be 1-D, got shape {c.shape}")
    return lens.pop() if lens else 0


def pylist(col) -> list:
    """The column's Python values (what ``add`` would get)."""
    return col.tolist() if isinstance(col, np.ndarray) else list(col)


def rows(columns) -> list:
    """The block as row tuples of Python values."""
    return list(zip(*(pylist(c) for c in columns)))


def _repeat(text: str, n: int):
    return pa.array([text], pa.string()).take(np.zeros(n, np.int64))


def _arrow_layout() -> bool:
    """Whether Arrow writes floats positionally exactly for 1e-6 <= |x| < 1e10 (double-conversion's
    shortest mode, decimal exponents -6..9), checked once: then which cells need repr is known
    from |x| alone; else from the text (an exponent in it)."""
    probe = [1e-6, 9.999999999999997e-07, 9999999999.999998, 1e10, 0.00015, -123456789.01234567]
    text = ["0.000001", "9.999999999999997e-7", "9999999999.999998", "1e+10", "0.00015", "-123456789.01234567"]
    return pc.cast(pa.array(probe), pa.string()).to_pylist() == text


_KNOWN_LAYOUT: list = []


def _float_cells(x: np.ndarray):
    """repr of each float64 (NaN 'nan'), as an Arrow string array."""
    n = len(x)
    bits = x.view(np.int64)  # values compared bitwise: -0.0 is not 0.0
    if n == 0 or (bits == bits[0]).all():  # a constant column: one repr
        return _repeat(repr(float(x[0])), n) if n else pa.array([], pa.string())
    sample = bits[::max(1, n // 1024)]
    if n >= 4096 and 4 * len(np.unique(sample)) <= len(sample):
        # Few distinct values (a delay that takes a handful): format each once (hashing is
        # ~10x cheaper than formatting), then index. The same text either way.
        d = pa.array(bits).dictionary_encode()
        return _float_text(d.dictionary.to_numpy().view(np.float64)).take(d.indices)
    return _float_text(x)


def _float_text(x: np.ndarray):
    s = pc.cast(pa.array(x), pa.string())
    if not _KNOWN_LAYOUT:
        _KNOWN_LAYOUT.append(_arrow_layout())
    a = np.abs(x)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(x)
        # repr is positional for 1e-4 <= |x| < 1e16, Arrow below 1e10: the rest as repr writes it
        fallback = finite & (x != 0) & ((a < 1e-4) | (a >= (1e10 if _KNOWN_LAYOUT[0] else 1e16)))
        if not _KNOWN_LAYOUT[0]:
            fallback |= finite & pc.match_substring(s, "e").to_numpy(zero_copy_only=False)
        dot0 = (x == np.trunc(x)) & ~fallback & finite  # "1" -> "1.0", "-0" -> "-0.0"
    if dot0.any():
        s = pc.replace_with_mask(s, dot0, pc.binary_join_element_wise(s.filter(dot0), ".0", ""))
    if fallback.any():
        s = pc.replace_with_mask(s, fallback, pa.array([repr(v) for v in x[fallback].tolist()], pa.string()))
    return s


def _number_cells(col: np.ndarray):
    if col.dtype.kind == "f":
        return _float_cells(col.astype(np.float64, copy=False))
    if col.dtype.kind == "b":
        return pc.if_else(pa.array(col), "True", "False")
    if len(col) and (col == col[0]).all():
        return _repeat(str(col[0].item()), len(col))
    return pc.cast(pa.array(col), pa.string())


_QUOTING: dict = {}


def _plain(v: str) -> bool:
    """Whether csv.writer writes the text as it is (no quotes), asked of csv.writer itself."""
    if v not in _QUOTING:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([v, ""])
        _QUOTING[v] = buf.getvalue() == v + ",\n"
    return _QUOTING[v]


def text_cells(col):
    """The column's cells as the text csv.writer writes (str() of each value; None empty), an
    Arrow string array; None when a cell is neither a number nor plain text (csv.writer then)."""
    if isinstance(col, np.ndarray) and col.dtype.kind in "fiub":
        return _number_cells(col)
    values = pylist(col)
    text = all(k is type(None) or issubclass(k, str) for k in set(map(type, values)))
    if not text or not all(_plain(v) for v in set(values) if v is not None):
        return None
    return pa.array(values, pa.string()).fill_null("")


def csv_text(columns):
    """The block's CSV lines (after the header) as csv.writer writes its rows, UTF-8 bytes (a
    memoryview); None when it needs csv.writer (no pyarrow, text that needs quotes, a single
    column, other cell types)."""
    if not HAVE_ARROW or len(columns) < 2:  # csv quotes a lone empty cell: leave that to it
        return None
    cells = []
    for col in columns:
        c = text_cells(col)
        if c is None:
            return None
        cells.append(c)
    cells[-1] = pc.binary_join_element_wise(cells[-1], "\n", "")  # each line's end
    lines = pc.binary_join_element_wise(*cells, ",")
    # The lines lie end to end in the array's data buffer: the block's text, no copy.
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]
