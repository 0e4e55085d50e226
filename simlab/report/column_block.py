"""Column blocks (the block engine's rows as numpy columns) turned into CSV text or Arrow arrays,
exactly as the row path (`CsvStream`, `ParquetStream`) writes the same rows one by one.

A block is a list with one entry per table column, in the table's order, all the same length: a
numpy array (float64, int64, bool; a broadcast, ``np.broadcast_to``, for a constant), a pandas
Categorical (a packet's kind) or a Python list (text: a mask "11111111"). Its rows are
``zip(*(c.tolist() ...))``: Python floats, ints and strings.

Why pyarrow: csv.writer calls repr per float cell (~0.2-0.5 us); numpy's ``astype(str)`` gives
the same text but is slower still (~0.75 us). Arrow's float->string cast writes the same
shortest round-trip digits as repr in C (~0.06 us), in another layout: "1" for 1.0, "1e+10" from
1e10 up, "0.00001" for 1e-05, "2.5e-7" for 2.5e-07. repr is positional for 1e-4 <= |x| < 1e16,
Arrow for 1e-6 <= |x| < 1e10 (probed once; if a pyarrow writes otherwise, cells with an "e"
are found from the text): where both are positional the text is repr's once ".0" is added to
integral values; zero, NaN and inf agree too (zero after ".0"). The rest (|x| < 1e-4, |x| >= 1e10)
is formatted by repr, cell by cell: rare in a run's tables (times, delays, probabilities).

What costs is formatting and joining cells (~10 ns a cell and join argument), so each is done as
few times as it can be: a constant column is formatted once; a column of few distinct values (a
delay that takes a handful) formats each value once (`Coded`); neighbouring constant and
few-valued columns become one column whose distinct rows are each written once (the nineteen
columns of frames.csv from t_context_s to a mask take some 1,700 distinct rows in 32k). Without pyarrow, or
when a cell is not a number or text csv.writer leaves unquoted, the caller writes the block's
rows with csv.writer instead.
"""
from __future__ import annotations

import csv
import io
import os

import numpy as np
import pandas as pd

try:  # optional (the `parquet` extra): CSV falls back to csv.writer without it
    import pyarrow as pa
    import pyarrow.compute as pc
except ImportError:  # pragma: no cover - exercised by monkeypatching HAVE_ARROW
    pa = pc = None
HAVE_ARROW = pa is not None
CHUNK_ROWS = 65_536  # rows formatted at a time: ~25 MB of frames.csv text
SPLIT_ROWS = 8192  # a block this long is formatted in two halves at once (Arrow releases the GIL)
_POOL: list = []  # the two formatting threads, made at the first block that splits
_MEMORY: list = []  # the Arrow memory pool the formatting allocates from, chosen once


def memory_pool():
    """The Arrow pool blocks are formatted in: jemalloc where the pyarrow build has it, else the
    system's allocator; Arrow's default where the user chose one (ARROW_DEFAULT_MEMORY_POOL).
    Why not the default mimalloc: its per-thread heaps made a fresh writer thread's first blocks
    2-4x slower now and then (a half block of 16k frame rows took 50-95 ms instead of 20) and
    held more (the bench's one-hour call peaked at 242 MB against 174 MB with jemalloc)."""
    if not _MEMORY:
        if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
            pool = pa.default_memory_pool()
        else:
            try:
                pool = pa.jemalloc_memory_pool()
            except pa.ArrowNotImplementedError:  # pyarrow built without jemalloc (Windows wheels)
                pool = pa.system_memory_pool()
        _MEMORY.append(pool)
    return _MEMORY[0]


def release_memory() -> None:
    """Hands unused pages back to the system: the pool's, and Arrow's default pool's (what else
    pyarrow allocates, Parquet's writer among them)."""
    if HAVE_ARROW:
        for pool in {id(p): p for p in (*_MEMORY, pa.default_memory_pool())}.values():
            pool.release_unused()


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
    mp = memory_pool()
    s = pc.cast(pa.array(x), pa.string(), memory_pool=mp)
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
        s = _append(s, dot0, b".0")
    if fallback.any():
        s = pc.replace_with_mask(s, fallback, pa.array([repr(v) for v in x[fallback].tolist()], pa.string()),
                                 memory_pool=mp)
    return s


def _append(s, mask: np.ndarray, suffix: bytes):
    """``suffix`` after the cells of the string array ``s`` (no nulls) where ``mask``: each byte
    moved once, in numpy (Arrow's replace_with_mask rebuilds every cell: twice the time)."""
    offsets = np.frombuffer(s.buffers()[1], np.int32, len(s) + 1, s.offset * 4)
    data = np.frombuffer(s.buffers()[2], np.uint8)[offsets[0]:offsets[-1]]
    k = len(suffix)
    new = offsets - offsets[0]
    new[1:] += k * np.cumsum(mask, dtype=np.int32)
    out = np.empty(int(new[-1]), np.uint8)
    at = new[1:][mask] - k  # where each suffix starts
    keep = np.ones(len(out), bool)
    for j in range(k):
        keep[at + j] = False
    out[keep] = data
    for j, byte in enumerate(suffix):
        out[at + j] = byte
    return pa.StringArray.from_buffers(len(s), pa.py_buffer(new), pa.py_buffer(out))


class Coded:
    """A low-cardinality column as ``codes`` into ``text`` (an Arrow string array of its distinct
    cells): each distinct value formatted once (hashing is ~10x cheaper than formatting), and
    neighbouring coded columns combined before their text is made (`_combine`)."""

    __slots__ = ("codes", "text")

    def __init__(self, codes: np.ndarray, text):
        self.codes, self.text = codes, text

    def cells(self):
        return pc.take(self.text, self.codes, memory_pool=memory_pool())


def _coded(values: np.ndarray, fmt) -> Coded:
    """``values`` (int64; a float column's bits) dictionary-encoded, the distinct ones formatted by
    ``fmt`` (floats compared bitwise: -0.0 is not 0.0)."""
    d = pc.dictionary_encode(pa.array(values), memory_pool=memory_pool())
    return Coded(d.indices.to_numpy().astype(np.int64), fmt(d.dictionary.to_numpy()))


def _int_text(x: np.ndarray):
    return pc.cast(pa.array(x), pa.string(), memory_pool=memory_pool())


_QUOTING: dict = {}


def _plain(v: str) -> bool:
    """Whether csv.writer writes the text as it is (no quotes), asked of csv.writer itself."""
    if v not in _QUOTING:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow([v, ""])
        _QUOTING[v] = buf.getvalue() == v + ",\n"
    return _QUOTING[v]


def _cell(v) -> str | None:
    """The text csv.writer writes for the Python value ``v`` in a row of several cells (None: a
    value it would quote, or one of another type: csv.writer itself then)."""
    if v is None:
        return ""
    if isinstance(v, str):
        return str(v) if _plain(str(v)) else None
    return str(v) if isinstance(v, (bool, int, float)) else None


def _few(bits: np.ndarray) -> bool:
    """Whether the column takes few values (at most a quarter of an even sample of ~1-2k of it
    distinct; sorting the sample is ~10x cheaper than np.unique's own overhead at this size)."""
    if len(bits) < 1024:
        return False
    s = np.sort(bits[::len(bits) // 1024])
    return 4 * (1 + int(np.count_nonzero(s[1:] != s[:-1]))) <= len(s)


def _text(col):
    """A column of text (str, or None for an empty cell) as an Arrow string array or `Coded` (a
    pandas Categorical); None when a value is of another type or csv.writer would quote it."""
    mp = memory_pool()
    if isinstance(col, pd.Categorical):
        text = _text(list(col.categories))
        if text is None or not len(col) or (col.codes < 0).any():  # NaN: csv.writer writes it
            return text if text is None else _text(pylist(col))
        return Coded(col.codes.astype(np.int64), text)
    values = pylist(col)
    try:
        distinct = set(values)
    except TypeError:  # unhashable cells
        return None
    if not all(v is None or (isinstance(v, str) and _plain(v)) for v in distinct):
        return None
    return pc.coalesce(pa.array(values, pa.string(), memory_pool=mp), "", memory_pool=mp)


def _cells(columns) -> list | None:
    """Each column's cells as the text csv.writer writes (str() of each value, None empty): an
    Arrow string array, a Python str for a constant column or a `Coded` column; None when a cell
    is neither a number nor plain text (csv.writer then). Many-valued numeric columns of a kind
    are formatted together, one Arrow call for the block, not one a column (blocks of a few
    hundred rows). A broadcast column (numpy stride 0, as ``np.broadcast_to`` makes) is known
    constant without a look."""
    cells: list = [None] * len(columns)
    groups: dict = {_float_text: [], _int_text: []}
    for i, col in enumerate(columns):
        kind = col.dtype.kind if isinstance(col, np.ndarray) else None
        if kind is not None and len(col) and col.strides == (0,):
            cells[i] = _cell(col[0].item() if kind != "O" else col[0])
        elif kind == "b":
            cells[i] = Coded(col.astype(np.int64), pa.array(["False", "True"]))
        elif kind in ("f", "i", "u"):
            x = col.astype(np.float64 if kind == "f" else col.dtype, copy=False)
            bits = x.view(np.int64) if kind == "f" else x  # floats bitwise: -0.0 is not 0.0
            if len(x) and bits[0] == bits[-1] and (bits == bits[0]).all():
                cells[i] = str(x[0].item())  # str: repr of a float
            elif x.dtype != np.uint64 and _few(bits):
                fmt = (lambda d: _float_text(d.view(np.float64))) if kind == "f" else _int_text
                cells[i] = _coded(bits if kind == "f" else x.astype(np.int64), fmt)
            else:  # formatted with the block's other columns of its kind, below
                cells[i] = False
                groups[_float_text if kind == "f" else _int_text].append(
                    (i, x if kind == "f" or x.dtype == np.uint64 else x.astype(np.int64)))
        else:
            cells[i] = _text(col)
        if cells[i] is None:
            return None
    for fmt, members in groups.items():
        for dtype in {x.dtype for _, x in members}:  # int64s and uint64s apart
            same = [(i, x) for i, x in members if x.dtype == dtype]
            text = fmt(np.concatenate([x for _, x in same]))
            for j, (i, x) in enumerate(same):
                cells[i] = text.slice(j * len(x), len(x))
    return cells


def _combine(run: list) -> list:
    """A run of neighbouring constant (str) and `Coded` cells, as few join arguments as it can:
    with two coded columns or more, one column whose distinct rows (combinations of codes, one
    int64 key a row) are each written once. Constants alone stay str."""
    coded = [c for c in run if isinstance(c, Coded)]
    if len(coded) < 2:
        return [c.cells() if isinstance(c, Coded) else c for c in run]
    mp = memory_pool()
    key, radix = np.zeros(len(coded[0].codes), np.int64), 1
    for j, c in enumerate(run):
        if isinstance(c, Coded):
            if radix * len(c.text) >= 1 << 62:  # the key would overflow: the rest is a run of its own
                return _combine(run[:j]) + _combine(run[j:])
            key, radix = key * len(c.text) + c.codes, radix * len(c.text)
    d = pc.dictionary_encode(pa.array(key), memory_pool=mp)
    rest, pieces = d.dictionary.to_numpy(), []
    for c in reversed(run):  # each distinct key's codes, last column first
        if isinstance(c, Coded):
            pieces.append(pc.take(c.text, rest % len(c.text), memory_pool=mp))
            rest = rest // len(c.text)
        else:
            pieces.append(c)
    rows = pc.binary_join_element_wise(*reversed(pieces), ",", memory_pool=mp) if len(pieces) > 1 else pieces[0]
    return [pc.take(rows, d.indices, memory_pool=mp)]


def text_cells(col):
    """The column's cells as csv.writer writes them, an Arrow string array (or None: `_cells`)."""
    cells = _cells([col])
    if cells is None:
        return None
    c = cells[0]
    return _repeat(c, len(col)) if isinstance(c, str) else c.cells() if isinstance(c, Coded) else c


def _repeat(text: str, n: int):
    return pc.take(pa.array([text], pa.string()), np.zeros(n, np.int64), memory_pool=memory_pool())


def csv_text(columns):
    """The block's CSV lines (after the header) as csv.writer writes its rows, UTF-8 bytes (a
    memoryview); None when it needs csv.writer (no pyarrow, text that needs quotes, a single
    column, other cell types)."""
    if not HAVE_ARROW or len(columns) < 2 or not len(columns[0]):  # csv quotes a lone empty cell
        return None
    cells = _cells(columns)
    if cells is None:
        return None
    mp = memory_pool()
    last = cells[-1]  # each line's end, on a coded column's distinct cells where it can
    if isinstance(last, str):
        cells[-1] = last + "\n"
    elif isinstance(last, Coded):
        cells[-1] = Coded(last.codes, pc.binary_join_element_wise(last.text, "\n", "", memory_pool=mp))
    else:
        cells[-1] = pc.binary_join_element_wise(last, "\n", "", memory_pool=mp)
    # Each join argument costs ~10 ns a row: runs of constant and coded columns are combined,
    # neighbouring constants are one string.
    parts: list = []
    run: list = []
    for c in cells + [None]:
        if isinstance(c, (str, Coded)):
            run.append(c)
            continue
        for p in _combine(run):
            if isinstance(p, str) and parts and isinstance(parts[-1], str):
                parts[-1] += "," + p
            else:
                parts.append(p)
        run = []
        if c is not None:
            parts.append(c)
    if len(parts) == 1:  # every column constant, or all in one combined run
        lines = _repeat(parts[0], len(columns[0])) if isinstance(parts[0], str) else parts[0]
    else:
        lines = pc.binary_join_element_wise(*parts, ",", memory_pool=mp)
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
