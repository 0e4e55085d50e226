"""Network side of the sliding-window traces: bitrate, loss and the controller's decisions
per time window, from a run's packets.csv and frames.csv.

Packets fall in a window by their send time (``send_s``), frames by their capture time
(``capture_s``, the start of the frame's audio, the time axis of reference.wav). Windows
are half-open, [t_start_s, t_end_s). Rates are per flow (divided by the number of flows),
as in summary.csv. Only the columns used are read, with compact types, so memory grows
with the packet count by about 20 bytes a packet and not with the CSV's width.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from simlab.errors import UserError
from simlab.table_file import read_parquet, table_columns, table_file

PACKET_USECOLS = {"flow": "int32", "kind": "category", "send_s": "float64", "header_bytes": "int32",
                  "payload_bytes": "int32", "lost": "int8", "late": "int8", "dropped": "int8"}
#: Network columns of windows.csv, in order.
NETWORK_COLUMNS = ["payload_bps", "header_bps", "ctrl_bps", "total_bps", "packets_sent", "loss_rate",
                   "late_rate", "p_hat_mean", "tokens_sent_mean", "tokens_doubled_mean"]


def window_grid(duration_s: float, window_s: float, hop_s: float) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of windows of ``window_s`` every ``hop_s`` that fit in ``duration_s``;
    one window [0, duration_s] when the run is shorter than a window (the rule
    `simlab.metrics.window_metrics` uses, so network and audio windows coincide)."""
    if not window_s > 0 or not hop_s > 0:
        raise UserError(f"windows: window_s and hop_s must be > 0, got {window_s} and {hop_s}")
    if not duration_s > 0:
        raise UserError(f"windows: the run lasts {duration_s} s, nothing to cut into windows")
    n = max(1, int(np.floor((duration_s - window_s) / hop_s + 1e-9)) + 1)
    starts = np.arange(n) * hop_s
    return starts, np.minimum(starts + window_s, duration_s)


def read_csv(path: Path, usecols: dict[str, str], what: str) -> pd.DataFrame:
    """``path`` with just ``usecols`` (name -> dtype); a missing file or column is a `UserError`.
    A run that wrote Parquet has ``X.parquet`` for ``X.csv`` (`simlab.table_file`)."""
    path = table_file(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    header = table_columns(path)
    missing = [c for c in usecols if c not in header]
    if missing:
        raise UserError(f"{path}: lacks column(s) {', '.join(missing)}")
    if path.suffix == ".parquet":
        return read_parquet(path, usecols, list(usecols))
    return pd.read_csv(path, usecols=list(usecols), dtype=usecols)


def read_masks(path: Path, flow: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(capture_s [frames], mask [frames, depths] int8 in {0,1,2}) from frames.csv's ``mask``
    column (one character per token depth), or None when the system writes no mask.
    ``flow`` keeps one flow's frames only."""
    path = table_file(path)
    if "mask" not in table_columns(path):
        return None
    dtypes = {"flow": "int32", "capture_s": "float64", "mask": str}
    if path.suffix == ".parquet":
        df = read_parquet(path, dtypes, list(dtypes))
    else:
        df = pd.read_csv(path, usecols=list(dtypes), dtype=dtypes, keep_default_na=False)
    if flow is not None:
        df = df[df["flow"] == flow]
    masks = df["mask"].to_numpy(dtype=str)
    if len(masks) == 0:
        return df["capture_s"].to_numpy(), np.zeros((0, 0), dtype=np.int8)
    depth = len(masks[0])
    lengths = np.char.str_len(masks)
    if depth == 0 or np.any(lengths != depth):
        bad = int(np.flatnonzero(lengths != depth)[0]) if np.any(lengths != depth) else 0
        raise UserError(f"{path}: mask row {bad} is {masks[bad]!r}, expected {depth or 'some'} characters of 0/1/2")
    codes = np.frombuffer("".join(masks).encode("ascii"), dtype=np.uint8).reshape(len(masks), depth)
    mask = codes.astype(np.int16) - ord("0")
    if mask.min() < 0 or mask.max() > 2:
        bad = int(np.flatnonzero(((mask < 0) | (mask > 2)).any(axis=1))[0])
        raise UserError(f"{path}: mask row {bad} is {masks[bad]!r}, expected characters 0, 1 or 2")
    return df["capture_s"].to_numpy(), mask.astype(np.int8)


def _window_sums(t: np.ndarray, values: list[np.ndarray], starts: np.ndarray,
                 ends: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Count and per-value sums of the items whose time t lies in each [start, end)."""
    order = np.argsort(t, kind="stable")
    ts = t[order]
    lo, hi = np.searchsorted(ts, starts, "left"), np.searchsorted(ts, ends, "left")
    sums = []
    for v in values:
        c = np.concatenate([[0.0], np.cumsum(np.asarray(v, dtype=np.float64)[order])])
        sums.append(c[hi] - c[lo])
    return (hi - lo).astype(np.int64), sums


def network_windows(folder: Path, starts: np.ndarray, ends: np.ndarray) -> pd.DataFrame:
    """One row per window: bitrates (bit/s per flow), forward loss, p̂ and decisions.

    - ``payload_bps``: media payload bytes on the wire × 8 / window length (packets dropped
      at a full queue never went out and are not counted, as in summary.csv);
      ``header_bps`` the media packets' RTP/UDP/IP headers; ``ctrl_bps`` the loss reports
      (header and payload); ``total_bps`` their sum (eq. 24, measured).
    - ``packets_sent``: forward packets (media and redundant) sent in the window; ``loss_rate`` = (lost + dropped)
      / sent, ``late_rate`` = late / sent (NaN without packets).
    - ``p_hat_mean``: mean loss estimate the sender used for the frames captured in the window.
    - ``tokens_sent_mean`` / ``tokens_doubled_mean``: mean tokens per frame with mask ≥ 1 /
      mask = 2 (only when frames.csv has a ``mask`` column).
    """
    folder = Path(folder)
    starts, ends = np.asarray(starts, dtype=np.float64), np.asarray(ends, dtype=np.float64)
    length = ends - starts
    pk = read_csv(folder / "packets.csv", PACKET_USECOLS, "packets table")
    fr = read_csv(folder / "frames.csv", {"flow": "int32", "capture_s": "float64", "p_hat": "float64"},
                  "frames table")
    n_flows = int(pk["flow"].max()) + 1 if len(pk) else 1
    per = length * n_flows
    media = (pk["kind"] != "feedback").to_numpy()  # forward packets: media and redundant, as summary.csv
    out = (pk["dropped"] == 0).to_numpy()
    bits_payload = np.where(media & out, pk["payload_bytes"].to_numpy() * 8, 0)
    bits_header = np.where(media & out, pk["header_bytes"].to_numpy() * 8, 0)
    bits_ctrl = np.where(~media & out, (pk["header_bytes"] + pk["payload_bytes"]).to_numpy() * 8, 0)
    lost = np.where(media, pk["lost"].to_numpy() + pk["dropped"].to_numpy(), 0)
    late = np.where(media, pk["late"].to_numpy(), 0)
    _, (pay, hdr, ctrl, sent, lo, la) = _window_sums(
        pk["send_s"].to_numpy(), [bits_payload, bits_header, bits_ctrl, media, lost, late], starts, ends)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = pd.DataFrame({"t_start_s": starts, "t_end_s": ends,
                           "payload_bps": pay / per, "header_bps": hdr / per, "ctrl_bps": ctrl / per,
                           "total_bps": (pay + hdr + ctrl) / per, "packets_sent": sent.astype(np.int64),
                           "loss_rate": np.where(sent > 0, lo / sent, np.nan),
                           "late_rate": np.where(sent > 0, la / sent, np.nan)})
        n_fr, (p_sum,) = _window_sums(fr["capture_s"].to_numpy(), [fr["p_hat"].to_numpy()], starts, ends)
        df["p_hat_mean"] = np.where(n_fr > 0, p_sum / n_fr, np.nan)
        masks = read_masks(folder / "frames.csv")
        if masks is not None:
            t, m = masks
            n_m, (s1, s2) = _window_sums(t, [(m >= 1).sum(axis=1), (m == 2).sum(axis=1)], starts, ends)
            df["tokens_sent_mean"] = np.where(n_m > 0, s1 / n_m, np.nan)
            df["tokens_doubled_mean"] = np.where(n_m > 0, s2 / n_m, np.nan)
    return df
