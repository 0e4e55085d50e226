"""The writers benchmark: µs per row to write a run's packets and frames tables, row by row (what the
event engine does: `add` of each row tuple, csv.writer or Arrow from Python lists) and as column
blocks (what the block engine does: `add_block`, `simlab.report.column_block`), CSV and Parquet.

The rows are a real run's: the network bench's call (synthetic tokens, 10 % loss, reports every
100 ms) simulated for as long as it takes to make ``rows`` frames, read back from its CSV tables;
each column handed over as the block engine hands it (constants as broadcasts, a packet's kind
as a Categorical). Both paths write to files in the same process, best of ``repeats``.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np


def _tables(rows: int) -> dict:
    """{table: (columns, column names)} of a run with ``rows`` frames (and its packets)."""
    import pandas as pd

    from simlab.bench.network import scenario
    from simlab.scenario import parse_scenario
    from simlab.simulation import simulate

    with tempfile.TemporaryDirectory() as d:
        simulate(parse_scenario(scenario(1, rows * 0.08)), Path(d), engine="block")
        frames = pd.read_csv(Path(d) / "frames.csv", keep_default_na=False, na_values=["nan"], dtype={"mask": str})
        packets = pd.read_csv(Path(d) / "packets.csv", keep_default_na=False, na_values=["nan"])
    return {"frames": _columns(frames.iloc[:rows]), "packets": _columns(packets)}


def _columns(df) -> tuple[list, list]:
    import pandas as pd

    cols = []
    for name in df.columns:
        v = df[name].to_numpy()
        if name == "kind":
            v = pd.Categorical(df[name])
        elif _constant(v):
            v = np.broadcast_to(np.array(v[0]), len(v))  # as the engine gives a constant
        elif v.dtype == object:
            v = v.tolist()
        cols.append(v)
    return cols, list(df.columns)


def _constant(v: np.ndarray) -> bool:
    if not len(v):
        return False
    if v.dtype.kind == "f":  # bitwise: NaN is NaN
        return bool((v.view(np.int64) == v.view(np.int64)[0]).all())
    return bool((v == v[0]).all())


def _best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_writers(rows: int = 100_000, repeats: int = 3) -> list[dict]:
    """One row per table: µs per row of each path, and the speed-up of blocks over rows."""
    from simlab.records import FrameRecord, PacketRecord, column_types
    from simlab.report.column_block import pylist
    from simlab.report.csvstream import CsvStream
    from simlab.report.parquetstream import ParquetStream

    out = []
    for table, (cols, names) in _tables(rows).items():
        record = FrameRecord if table == "frames" else PacketRecord
        types = column_types(record)
        tuples = list(zip(*(pylist(c) for c in cols)))
        n = len(tuples)
        with tempfile.TemporaryDirectory() as d:
            def csv_rows():
                s = CsvStream(Path(d) / "a.csv", names)
                for r in tuples:
                    s.add(r)
                s.close()

            def csv_block():
                s = CsvStream(Path(d) / "b.csv", names)
                s.add_block(cols)
                s.close()

            def pq_rows():
                s = ParquetStream(Path(d) / "a.parquet", names, types)
                for r in tuples:
                    s.add(r)
                s.close()

            def pq_block():
                s = ParquetStream(Path(d) / "b.parquet", names, types)
                s.add_block(cols)
                s.close()

            us = {k: _best(f, repeats) / n * 1e6 for k, f in
                  (("csv_rows_us", csv_rows), ("csv_block_us", csv_block), ("parquet_rows_us", pq_rows),
                   ("parquet_block_us", pq_block))}
            same = ((Path(d) / "a.csv").read_bytes() == (Path(d) / "b.csv").read_bytes()
                    and (Path(d) / "a.parquet").read_bytes() == (Path(d) / "b.parquet").read_bytes())
        out.append({"table": table, "rows": n, "columns": len(names), **us,
                    "csv_speedup": us["csv_rows_us"] / us["csv_block_us"],
                    "parquet_speedup": us["parquet_rows_us"] / us["parquet_block_us"], "same_bytes": same})
    return out
