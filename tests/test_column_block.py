"""add_block (rows as numpy columns) writes exactly what add() of each row writes: CSV and Parquet
bytes, MemoryStream rows, counts; mixed with add() calls and across Parquet row groups."""
import importlib
import sys

import numpy as np
import pytest

from simlab.records import FRAME_COLUMNS, PACKET_COLUMNS, FrameRecord, PacketRecord, column_types
from simlab.report import column_block
from simlab.report.csvstream import CsvStream, NullStream
from simlab.report.recorder import MemoryStream

SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1.0, -1.0, 1e15, 1e16, 1e17, 9999999999999998.0, 1e16 - 2,
           1e15 + 0.5, 123456789012345.6, 1e-4, 1e-5, 9.999999999999999e-05, 1.0000000000000002e-4, 5e-324,
           2.2250738585072014e-308, 1.7976931348623157e308, 0.1 + 0.2, 2.5e-07, 1e21, 1e22, 0.08, 0.32]


def floats(rng, n):
    """Float64s over every magnitude, and the values a run's times take (k*0.08, k*0.16+0.02048)."""
    k = rng.integers(0, 10**6, n)
    pool = np.concatenate([
        rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-320, 300, n),
        k * 0.08, k * 0.16 + 0.02048, k.astype(float), -k.astype(float), rng.uniform(0, 100, n),
        rng.uniform(1e14, 1e17, n), rng.uniform(1e-6, 1e-3, n), np.round(rng.uniform(0, 1e6, n), 3),
        rng.integers(-2**63, 2**63 - 1, n, dtype=np.int64).view(np.float64), np.array(SPECIAL)])
    return rng.choice(pool, n)


def packet_block(rng, n):
    """A packets.csv-like block: 12 columns, `kind` as a list of str."""
    cols = [rng.integers(0, 3, n), np.arange(n), rng.choice(["media", "redundant", "feedback"], n).tolist(),
            floats(rng, n), floats(rng, n)]
    cols += [rng.integers(-5, 10**6, n) for _ in range(4)] + [rng.integers(0, 2, n) for _ in range(3)]
    return cols


def frame_block(rng, n, info=True):
    """A frames.csv-like block: FrameRecord's 24 numeric columns (+ a system's text columns)."""
    types = column_types(FrameRecord)
    cols = [floats(rng, n) if types[c] == "float64" else rng.integers(-1, 200, n) for c in FRAME_COLUMNS]
    cols[4] = np.full(n, 0.015913334500055498)  # constant columns take a shortcut
    cols[5] = np.full(n, 7.0)
    if info:
        cols += [["".join(m) for m in rng.choice(["0", "1"], (n, 8))], rng.integers(1, 9, n)]
    return cols


def pyrows(cols):
    return list(zip(*(c.tolist() if isinstance(c, np.ndarray) else list(c) for c in cols)))


def split(rng, n, cuts=12):
    """Odd sizes that add up to n."""
    cuts = np.sort(rng.choice(np.arange(1, n), min(n - 1, cuts), replace=False))
    return np.diff(np.concatenate([[0], cuts, [n]]))


def feed(stream, cols, rng, mixed=True, cuts=12):
    """The block's rows in pieces: blocks of odd sizes, some rows through add()."""
    rows = pyrows(cols)
    start = 0
    for size in split(rng, len(rows), cuts):
        if mixed and rng.random() < 0.4:
            for r in rows[start:start + size]:
                stream.add(r)
        else:
            stream.add_block([c[start:start + size] for c in cols])
        start += size


def write_both(tmp_path, make, cols, rng, mixed=True, cuts=12):
    tmp_path.mkdir(exist_ok=True)
    old, new = make(tmp_path / "old"), make(tmp_path / "new")
    for r in pyrows(cols):
        old.add(r)
    feed(new, cols, rng, mixed, cuts)
    old.close()
    new.close()
    assert new.count == old.count == len(cols[0])
    return (tmp_path / "old").read_bytes(), (tmp_path / "new").read_bytes()


@pytest.mark.parametrize("known_layout", [True, False])
@pytest.mark.parametrize("seed", range(4))
def test_float_text_is_repr(seed, known_layout, monkeypatch):
    """repr's text, whether Arrow's layout is the one probed or found from the text."""
    assert column_block._arrow_layout()  # the pyarrow installed here writes the layout expected
    monkeypatch.setattr(column_block, "_KNOWN_LAYOUT", [known_layout])
    rng = np.random.default_rng(seed)
    x = floats(rng, 20_000)
    assert column_block.text_cells(x).to_pylist() == [repr(v) for v in x.tolist()]
    few = rng.choice(np.concatenate([floats(rng, 20), SPECIAL]), 20_000)  # formatted once each
    assert column_block.text_cells(few).to_pylist() == [repr(v) for v in few.tolist()]


@pytest.mark.parametrize("utf8", [True, False])
@pytest.mark.parametrize("mixed", [False, True])
@pytest.mark.parametrize("kind", ["packets", "frames"])
def test_csv_bytes(tmp_path, kind, mixed, utf8, monkeypatch):
    rng = np.random.default_rng(11)
    cols = packet_block(rng, 3000) if kind == "packets" else frame_block(rng, 3000)
    names = PACKET_COLUMNS if kind == "packets" else FRAME_COLUMNS + ["mask", "quantizers"]
    monkeypatch.setattr(column_block, "CHUNK_ROWS", 1000)  # a block in several chunks

    def make(path):
        s = CsvStream(path, names, buffer_rows=500)
        s._utf8 = s._utf8 and utf8  # False: the text through the file's own encoding
        return s

    old, new = write_both(tmp_path, make, cols, rng, mixed)
    assert new == old


def test_csv_cells_csv_writes_itself(tmp_path):
    """Text that needs quotes, None, bools, numbers in a list, float32: csv.writer's own text."""
    n = 40
    rng = np.random.default_rng(3)
    texts = ["a,b", 'say "x"', "two\nlines", "", " lead", "é", None]
    cases = [
        [np.arange(n), [texts[i % len(texts)] for i in range(n)]],
        [np.arange(n), [None if i % 3 else "x" for i in range(n)]],
        [rng.random(n) < 0.5, np.arange(n, dtype=np.uint32)],
        [[float(i) / 7 for i in range(n)], [i for i in range(n)]],
        [rng.normal(0, 1e3, n).astype(np.float32), np.full(n, -3)],
        [np.array([f"s{i}" for i in range(n)]), np.zeros(n)],
        [list(np.array(["media", "feedback"])[np.arange(n) % 2]), np.arange(n)],  # numpy str_ items
    ]
    for i, cols in enumerate(cases):
        old, new = write_both(tmp_path / str(i), lambda p: CsvStream(p, ["a", "b"], buffer_rows=7), cols, rng)
        assert new == old, i


@pytest.mark.parametrize("n", [5000, 20001])
def test_csv_one_big_block(tmp_path, n):
    """Columns formatted together: few-valued floats (formatted once each), ints of several
    dtypes, constants, a block where every column is constant; a long block is formatted in two
    halves at once (two threads), written in order."""
    rng = np.random.default_rng(4)
    few = np.concatenate([floats(rng, 8), [0.0, -0.0, np.nan]])
    cols = [rng.choice(few, n), floats(rng, n), rng.choice(few, n), np.full(n, -0.0), np.full(n, np.nan),
            rng.integers(-9, 9, n).astype(np.int32), rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2),
            rng.integers(-10**18, 10**18, n), np.full(n, 5, np.int16), rng.choice(["a", "b"], n).tolist()]
    names = [f"c{i}" for i in range(len(cols))]
    old, new = write_both(tmp_path / "a", lambda p: CsvStream(p, names), cols, rng, mixed=False, cuts=0)
    assert new == old
    const = [np.full(n, 0.5), np.full(n, 3), ["x"] * n]
    old, new = write_both(tmp_path / "b", lambda p: CsvStream(p, ["a", "b", "c"]), const, rng, mixed=False, cuts=0)
    assert new == old


def test_csv_without_pyarrow(tmp_path, monkeypatch):
    """No pyarrow: add_block writes the rows with csv.writer, the same bytes."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails
    monkeypatch.setitem(sys.modules, "pyarrow.compute", None)
    try:
        importlib.reload(column_block)
        assert not column_block.HAVE_ARROW
        rng = np.random.default_rng(5)
        cols = frame_block(rng, 600)
        names = FRAME_COLUMNS + ["mask", "quantizers"]
        old, new = write_both(tmp_path, lambda p: CsvStream(p, names, buffer_rows=64), cols, rng)
        assert new == old
    finally:
        monkeypatch.undo()
        importlib.reload(column_block)
    assert column_block.HAVE_ARROW


@pytest.mark.parametrize("buffer_rows", [7, 64, 5000])
@pytest.mark.parametrize("kind", ["packets", "frames"])
def test_parquet_bytes(tmp_path, kind, buffer_rows):
    pytest.importorskip("pyarrow")
    from simlab.report.parquetstream import ParquetStream

    rng = np.random.default_rng(buffer_rows)
    if kind == "packets":
        cols, names, types = packet_block(rng, 1500), PACKET_COLUMNS, column_types(PacketRecord)
    else:
        cols, names, types = frame_block(rng, 1500), FRAME_COLUMNS + ["mask", "quantizers"], column_types(FrameRecord)
    make = lambda p: ParquetStream(p, names, types, buffer_rows=buffer_rows)  # noqa: E731
    old, new = write_both(tmp_path, make, cols, rng)
    assert new == old
    old, new = write_both(tmp_path, make, cols, rng, mixed=False)
    assert new == old


def test_parquet_odd_columns(tmp_path):
    """A text column given numbers, an int column given a list: the rows' values, the same file."""
    pytest.importorskip("pyarrow")
    from simlab.report.parquetstream import ParquetStream

    rng = np.random.default_rng(9)
    n = 50
    cols = [list(range(n)), floats(rng, n), np.arange(n) % 3 == 0, [None if i % 4 else "a,b" for i in range(n)]]
    make = lambda p: ParquetStream(p, ["i", "f", "b", "s"], {"i": "int64", "f": "float64"}, buffer_rows=7)  # noqa: E731
    old, new = write_both(tmp_path, make, cols, rng)
    assert new == old


def test_empty_blocks(tmp_path):
    cols = [np.zeros(0), []]
    s = CsvStream(tmp_path / "a.csv", ["x", "y"])
    s.add_block(cols)
    s.close()
    assert (tmp_path / "a.csv").read_text() == "x,y\n" and s.count == 0
    m = MemoryStream(["x", "y"], None)
    m.add_block(cols)
    assert m.rows == [] and m.count == 0


def test_memory_and_null_streams():
    rng = np.random.default_rng(2)
    cols = frame_block(rng, 300, info=False)
    old, new = MemoryStream(FRAME_COLUMNS, FrameRecord), MemoryStream(FRAME_COLUMNS, FrameRecord)
    for r in pyrows(cols):
        old.add(r)
    feed(new, cols, rng)
    assert new.count == old.count == 300
    assert [repr(tuple(r)) for r in new.rows] == [repr(tuple(r)) for r in old.rows]  # NaN != NaN
    assert all(type(a) is type(b) for r, q in zip(new.rows, old.rows) for a, b in zip(r, q))
    null = NullStream()
    feed(null, cols, rng)
    assert null.count == 300


def test_bad_blocks(tmp_path):
    s = CsvStream(tmp_path / "a.csv", ["x", "y"])
    with pytest.raises(ValueError, match="1 columns given, the table has 2"):
        s.add_block([np.zeros(3)])
    with pytest.raises(ValueError, match="different lengths"):
        s.add_block([np.zeros(3), np.zeros(2)])
    with pytest.raises(ValueError, match="1-D"):
        s.add_block([np.zeros((3, 1)), np.zeros(3)])
    s.close()


def test_broadcast_and_categorical_columns(tmp_path):
    """Broadcast columns (stride 0: known constant unlooked) and pandas Categoricals (text made
    once a category): csv.writer's bytes, quoting and NaN included."""
    import pandas as pd

    n = 3000
    rng = np.random.default_rng(8)
    cases = [
        [np.arange(n), np.broadcast_to(np.array(0.1 + 0.2), n), np.broadcast_to(np.int64(-7), n),
         np.broadcast_to(np.array("11110000"), n), np.broadcast_to(np.array(None), n), np.broadcast_to(np.True_, n)],
        [np.broadcast_to(np.array(np.nan), n), np.broadcast_to(np.array(1e-5), n)],  # every column constant
        [np.arange(n), np.broadcast_to(np.array("a,b"), n)],  # needs quotes: csv.writer
        [np.arange(n), np.broadcast_to(np.array(b"x"), n)],  # bytes: csv.writer
        [np.arange(n), pd.Categorical.from_codes(rng.integers(0, 2, n), ["feedback", "media"])],
        [np.arange(n), pd.Categorical.from_codes(rng.integers(-1, 2, n), ["feedback", "media"])],  # NaN
        [np.arange(n), pd.Categorical.from_codes(rng.integers(0, 2, n), ["x", "say \"y\""])],
    ]
    for i, cols in enumerate(cases):
        names = [f"c{j}" for j in range(len(cols))]
        old, new = write_both(tmp_path / str(i), lambda p: CsvStream(p, names), cols, rng, mixed=False, cuts=3)
        assert new == old, i


@pytest.mark.parametrize("values", [3, 40, 3000])
def test_combined_runs(tmp_path, values):
    """Neighbouring low-cardinality columns (few-valued floats and ints, bools, constants) written
    as one column of distinct rows; a run whose combined key would overflow int64 is split; a
    block that is one such run whole."""
    n = 20_000
    rng = np.random.default_rng(values)
    pool = floats(rng, values)
    few = lambda: rng.choice(pool, n)  # noqa: E731
    cols = [few(), rng.integers(0, values, n), rng.random(n) < 0.5, np.broadcast_to(np.array(2.5), n), few(),
            floats(rng, n), *[rng.integers(-values, values, n) * 1000003 for _ in range(12)], few()]
    names = [f"c{j}" for j in range(len(cols))]
    old, new = write_both(tmp_path / "a", lambda p: CsvStream(p, names), cols, rng, mixed=False, cuts=2)
    assert new == old
    only = [few(), rng.integers(0, 4, n), np.broadcast_to(np.array("x"), n)]
    old, new = write_both(tmp_path / "b", lambda p: CsvStream(p, ["a", "b", "c"]), only, rng, mixed=False, cuts=0)
    assert new == old


def test_memory_pool_choice(tmp_path, monkeypatch):
    """jemalloc where pyarrow has it, else the system allocator; Arrow's default when the user set
    ARROW_DEFAULT_MEMORY_POOL. Blocks write the same bytes from either."""
    pa = pytest.importorskip("pyarrow")

    def no_jemalloc():
        raise pa.ArrowNotImplementedError("this build has no jemalloc")

    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.setattr(column_block, "_MEMORY", [])
    monkeypatch.setattr(column_block.pa, "jemalloc_memory_pool", no_jemalloc)
    assert column_block.memory_pool().backend_name == "system"
    rng = np.random.default_rng(6)
    cols = frame_block(rng, 2000)
    names = FRAME_COLUMNS + ["mask", "quantizers"]
    old, new = write_both(tmp_path / "a", lambda p: CsvStream(p, names), cols, rng, mixed=False, cuts=2)
    assert new == old
    monkeypatch.setattr(column_block, "_MEMORY", [])
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    assert column_block.memory_pool().backend_name == pa.default_memory_pool().backend_name
