"""Column blocks (the block engine's rows as numpy columns) turned into CSV text or Arrow arrays,
exactly as the row path (`CsvStream`, `ParquetStream`) writes the same rows one by one.

A block is a list with one entry per table column, in the table's order: a numpy array (float64,
int64, bool) or a Python list (text columns: a packet's kind, a mask "11111111"), all the same
length. Its rows are ``zip(*(c.tolist() ...))``: Python floats, ints and strings.

Why pyarrow: csv.writer calls repr per float cell (~0.2-0.5 us); numpy's ``astype(str)`` gives
the same text but is slower still (~0.75 us). Arrow's float->string cast writes the same
shortest round-trip digits as repr in C (~0.08 us), in another layout: "1" for 1.0, "1e+10" from
1e10 up, "0.00001" for 1e-05, "2.5e-7" for 2.5e-07. repr is positional for 1e-4 <= |x| < 1e16,
Arrow for 1e-6 <= |x| < 1e10 (probed once; if a pyarrow writes otherwise, cells with an "e"
are found from the text): where both are positional the text is repr's once ".0" is added to
integral values; zero, NaN and inf agree too (zero after ".0"). The rest (|x| < 1e-4, |x| >= 1e10)
is formatted by repr, cell by cell: rare in a run's tables (times, delays, probabilities).
A constant column is formatted once; a column of few distinct values (a delay that takes a
handful) formats each value once. Without pyarrow, or when a cell is not a number or text
csv.writer leaves unquoted, the caller writes the block's rows with csv.writer instead.
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
SPLIT_ROWS = 8192  # a block this long is formatted in two halves at once (Arrow releases the GIL)
_POOL: list = []  # the two formatting threads, made at the first block that splits


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


def _arrow_layout() -> bool:
    """Whether Arrow writes floats positionally exactly for 1e-6 <= |x| < 1e10 (double-conversion's
    shortest mode, decimal exponents -6..9), checked once: then which cells need repr is known
    from |x| alone; else from the text (an exponent in it)."""
    probe = [1e-6, 9.999999999999997e-07, 9999999999.999998, 1e10, 0.00015, -123456789.01234567]
    text = ["0.000001", "9.999999999999997e-7", "9999999999.999998", "1e+10", "0.00015", "-123456789.01234567"]
    return pc.cast(pa.array(probe), pa.string()).to_pylist() == text


_KNOWN_LAYOUT: list = []


def _float_text(x: np.ndarray):
    """repr of each float64 (NaN 'nan'), as an Arrow string array."""
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


def _few_text(x: np.ndarray):
    """_float_text of a column of few distinct values: each formatted once (hashing is ~10x
    cheaper than formatting), then indexed. Values compared bitwise: -0.0 is not 0.0."""
    d = pa.array(x.view(np.int64)).dictionary_encode()
    return _float_text(d.dictionary.to_numpy().view(np.float64)).take(d.indices)


def _int_text(x: np.ndarray):
    return pc.cast(pa.array(x), pa.string())


_QUOTING: dict = {}


def _plain(v: str) -> bool:
    """Whether csv.writer writes the text as it is (no quotes), asked of csv.writer itself."""
    if v not in _QUOTING:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([v, ""])
        _QUOTING[v] = buf.getvalue() == v + ",\n"
    return _QUOTING[v]


def _cells(columns) -> list | None:
    """Each column's cells as the text csv.writer writes (str() of each value, None empty): an
    Arrow string array, or a string scalar for a constant column; None when a cell is neither a
    number nor plain text (csv.writer then). Numeric columns of a kind are formatted together,
    one Arrow call for the block, not one a column (blocks of a few hundred rows)."""
    cells: list = [None] * len(columns)
    groups: dict = {_float_text: [], _few_text: [], _int_text: []}
    for i, col in enumerate(columns):
        kind = col.dtype.kind if isinstance(col, np.ndarray) else None
        if kind == "b":
            cells[i] = pc.if_else(pa.array(col), "True", "False")
        elif kind in ("f", "i", "u"):
            x = col.astype(np.float64 if kind == "f" else col.dtype, copy=False)
            bits = x.view(np.int64) if kind == "f" else x  # floats bitwise: -0.0 is not 0.0
            if len(x) and (bits == bits[0]).all():
                cells[i] = pa.scalar(str(x[0].item()), pa.string())  # str: repr of a float
            elif kind != "f":
                groups[_int_text].append((i, x if kind == "i" else x.astype(np.uint64)))
            else:
                sample = bits[::max(1, len(x) // 1024)]
                few = len(x) >= 1024 and 4 * len(np.unique(sample)) <= len(sample)
                groups[_few_text if few else _float_text].append((i, x))
        else:
            values = pylist(col)
            text = all(k is type(None) or issubclass(k, str) for k in set(map(type, values)))
            if not text or not all(_plain(v) for v in set(values) if v is not None):
                return None
            cells[i] = pa.array(values, pa.string()).fill_null("")
    for fmt, members in groups.items():
        for dtype in {x.dtype for _, x in members}:  # ints and uint64s apart
            same = [(i, x) for i, x in members if x.dtype == dtype]
            text = fmt(np.concatenate([x for _, x in same]))
            for j, (i, x) in enumerate(same):
                cells[i] = text.slice(j * len(x), len(x))
    return cells


def text_cells(col):
    """The column's cells as csv.writer writes them, an Arrow string array (or None: `_cells`)."""
    cells = _cells([col])
    if cells is None:
        return None
    c = cells[0]
    return pa.array([c.as_py()], pa.string()).take(np.zeros(len(col), np.int64)) if isinstance(c, pa.Scalar) else c


def csv_text(columns):
    """The block's CSV lines (after the header) as csv.writer writes its rows, UTF-8 bytes (a
    memoryview); None when it needs csv.writer (no pyarrow, text that needs quotes, a single
    column, other cell types)."""
    if not HAVE_ARROW or len(columns) < 2 or not len(columns[0]):  # csv quotes a lone empty cell
        return None
    cells = _cells(columns)
    if cells is None:
        return None
    if all(isinstance(c, pa.Scalar) for c in cells):  # every column constant
        cells[0] = pa.array([cells[0].as_py()], pa.string()).take(np.zeros(len(columns[0]), np.int64))
    cells[-1] = pc.binary_join_element_wise(cells[-1], "\n", "")  # each line's end
    lines = pc.binary_join_element_wise(*cells, ",")
    # The lines lie end to end in the array's data buffer: the block's text, no copy.
    offsets = np.frombuffer(lines.buffers()[1], np.int32, len(lines) + 1, lines.offset * 4)
    return memoryview(lines.buffers()[2])[offsets[0]:offsets[-1]]


def chunks(n: int) -> list[tuple[int, int]]:
    """The row ranges a block of ``n`` rows is formatted in: halves of a long block (two cores
    format it at once), pieces of at most CHUNK_ROWS."""
    size = min(CHUNK_ROWS, (n + 1) // 2) if n >= SPLIT_ROWS else CHUNK_ROWS
    return [(a, min(n, a + size)) for a in range(0, n, size)]


def csv_texts(parts: list) -> list:
    """`csv_text` of each part, in order; two at a time on two threads when there are several."""
    if len(parts) < 2 or not HAVE_ARROW:
        return [csv_text(p) for p in parts]
    if not _POOL:
        from concurrent.futures import ThreadPoolExecutor

        _POOL.append(ThreadPoolExecutor(2, "simlab-csv"))
    return list(_POOL[0].map(csv_text, parts))
