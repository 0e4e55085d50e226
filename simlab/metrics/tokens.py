"""How often the concealer guessed a lost token exactly, overall and per codebook depth.

Input is the frames table (frames.csv as a pandas DataFrame). Its columns
``concealed_mask`` and ``conceal_hit_mask`` hold one character per token depth (``"1"`` =
that token was concealed / concealed and exactly right). ``pandas.read_csv`` turns
``"00100000"`` into the integer 100000, so integers are read back as zero-padded strings.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from simlab.errors import UserError
from simlab.metrics.base import MetricInput, Skipped

N_DEPTHS = 8
COLUMNS = ("concealed_mask", "conceal_hit_mask")


def _bits(values: Any, column: str, depths: int) -> np.ndarray:
    """[frames, depths] bool matrix from mask strings (or integers that lost leading zeros)."""
    rows = []
    for i, v in enumerate(values):
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)  # a column with gaps reads back as float
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            s = str(int(v)).zfill(depths)
        elif isinstance(v, str):
            s = v.strip()
        else:
            raise UserError(f"frames table: {column} row {i} is {v!r}, not a string of 0/1")
        if len(s) != depths or set(s) - {"0", "1"}:
            raise UserError(f"frames table: {column} row {i} is {s!r}, expected {depths} characters of 0/1")
        rows.append([c == "1" for c in s])
    return np.array(rows, dtype=bool).reshape(len(rows), depths)


def token_accuracy(frames: Any, depths: int = N_DEPTHS) -> dict[str, float]:
    """Share of concealed tokens that were exactly right: ``token_accuracy`` (all depths),
    ``token_accuracy_d<k>`` per depth k (NaN where nothing was concealed at k), and
    ``token_accuracy_n`` (tokens concealed). Empty dict when no token was concealed."""
    missing = [c for c in COLUMNS if c not in getattr(frames, "columns", ())]
    if missing:
        raise UserError(f"frames table lacks column(s) {', '.join(missing)} needed by token_accuracy")
    concealed = _bits(frames["concealed_mask"].tolist(), "concealed_mask", depths)
    hit = _bits(frames["conceal_hit_mask"].tolist(), "conceal_hit_mask", depths)
    bad = np.flatnonzero((hit & ~concealed).any(axis=1))
    if bad.size:
        raise UserError(f"frames table row {bad[0]}: conceal_hit_mask marks a token that concealed_mask does not")
    n = int(concealed.sum())
    if n == 0:
        return {}
    out = {"token_accuracy": float(hit.sum() / n), "token_accuracy_n": float(n)}
    per_depth = concealed.sum(axis=0)
    for k in range(depths):
        out[f"token_accuracy_d{k}"] = float(hit[:, k].sum() / per_depth[k]) if per_depth[k] else float("nan")
    return out


def token_accuracy_metric(inp: MetricInput) -> dict[str, float]:
    """`token_accuracy` as a registered metric: the frames table rides in ``inp.frames``."""
    if inp.frames is None:
        raise Skipped("skipped: no frames table given")
    out = token_accuracy(inp.frames)
    if not out:
        raise Skipped("no tokens were concealed")
    return out
