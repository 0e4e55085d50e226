"""A run's tables on disk, CSV or Parquet (``outputs.format``): found and read the same way.

Readers name a table as ``folder / "packets.csv"``; a run that wrote Parquet has
``packets.parquet`` there instead, and `table_file` finds it. `read_parquet` reads one with
the columns and dtypes asked for: readers branch on the suffix, nothing else.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

FORMATS = ("csv", "parquet")


def table_file(path: str | Path) -> Path:
    """``path`` (``X.csv``) if it exists, else ``X.parquet`` beside it if that exists, else ``path``."""
    path = Path(path)
    if path.suffix == ".csv" and not path.exists():
        other = path.with_suffix(".parquet")
        if other.exists():
            return other
    return path


def table_columns(path: Path) -> list[str]:
    import pandas as pd

    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(str(path)).names)
    return list(pd.read_csv(path, nrows=0).columns)


def read_parquet(path: Path, dtypes: Mapping[str, object], usecols: list[str] | None = None):
    """A Parquet table as the matching CSV reader would give it: ``usecols`` only (None: all),
    typed by ``dtypes`` (columns not named stay as stored; text is text, NaN floats are NaN)."""
    import pandas as pd

    df = pd.read_parquet(path, columns=usecols)
    return df.astype({c: t for c, t in dtypes.items() if c in df.columns})
