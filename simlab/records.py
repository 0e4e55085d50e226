"""The records a run produces, one definition each: the fields of a record are its CSV columns
(packets.csv, frames.csv), in order. Elements hand records to a `Recorder`; writers and
DataFrames take the columns from here, never from a list of their own."""
from __future__ import annotations

from typing import NamedTuple, Protocol, Sequence


class PacketRecord(NamedTuple):
    """A packet whose fate is known: media and redundant packets forward, reports back."""

    flow: int
    seq: int
    kind: str  # media | redundant | feedback
    send_s: float
    arrival_s: float  # NaN when it did not arrive
    header_bytes: int
    payload_bytes: int
    payload_bits: int
    first_frame: int  # -1 for reports
    lost: int  # erased by the channel
    late: int  # arrived after its frames' playout deadline
    dropped: int  # dropped by a full queue

    @classmethod
    def of(cls, pkt) -> "PacketRecord":
        return cls(pkt.flow, pkt.seq, pkt.kind, pkt.send_s, pkt.arrival_s, pkt.header_bytes, pkt.payload_bytes,
                   pkt.payload_bits, pkt.first_frame, int(pkt.lost), int(pkt.late), int(pkt.dropped))


class FrameRecord(NamedTuple):
    """A frame from capture to playout: the latency decomposition of eq. (21)-(23) and its
    token bookkeeping (sent = received + lost + late). A system adds columns of its own
    (``info``: the controller's mask, FEC use) after these."""

    flow: int
    frame: int
    capture_s: float
    send_s: float
    release_s: float
    playout_s: float
    t_context_s: float
    t_encoder_s: float
    t_ra_s: float
    t_transmit_s: float
    t_wait_s: float
    t_lm_s: float
    t_decoder_s: float
    t_coder_s: float
    latency_s: float
    eq22_latency_s: float
    p_hat: float
    tokens_sent: int
    tokens_repeated: int
    tokens_received: int
    tokens_lost: int
    tokens_late: int
    tokens_concealed: int
    payload_bits: int


PACKET_COLUMNS: list[str] = list(PacketRecord._fields)
FRAME_COLUMNS: list[str] = list(FrameRecord._fields)
#: Integer columns that count up (a value a row, or nearly): Parquet writes them plain, as times.
COUNTING_COLUMNS = frozenset({"frame", "seq", "first_frame"})


class Recorder(Protocol):
    """Where elements report. ``packet``: a packet's fate is known (every packet, once);
    ``frame``: a frame's record and the system's extra values, named by ``info_columns`` (the
    same for every frame of a run); ``playout``: a frame's decoded audio (None without audio)."""

    def packet(self, pkt) -> None:
        ...

    def frame(self, record: FrameRecord, info: Sequence, info_columns: Sequence[str]) -> None:
        ...

    def playout(self, flow: int, frame: int, audio) -> None:
        ...


class NullRecorder:
    """Keeps nothing (an element used alone, a benchmark of the simulation)."""

    def packet(self, pkt) -> None:
        pass

    def frame(self, record, info, info_columns) -> None:
        pass

    def playout(self, flow, frame, audio) -> None:
        pass


def column_types(record) -> dict[str, str]:
    """Column -> pandas dtype, from the record's field annotations."""
    names = {"int": "int64", "float": "float64", "str": "object"}
    return {c: names[getattr(t, "__forward_arg__", t)] for c, t in record.__annotations__.items()}


def read_table(path):
    """packets.csv or frames.csv (or the .parquet a run wrote instead, `simlab.table_file`) as a
    DataFrame whose columns have the types their record declares (a system's own frame columns
    stay strings: a mask like ``22211110`` is no number)."""
    import pandas as pd

    from simlab.table_file import read_parquet, table_columns, table_file

    path = table_file(path)
    record = PacketRecord if path.stem == "packets" else FrameRecord
    header = table_columns(path)
    types = column_types(record)
    dtypes = {c: types.get(c, "object") for c in header}
    if path.suffix == ".parquet":
        return read_parquet(path, dtypes)
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values={c: ["", "nan"] for c in header
                                                                             if types.get(c) == "float64"})


def frame_of(rows: list, columns: list[str], record) -> "pandas.DataFrame":  # noqa: F821
    """Rows kept in memory as the DataFrame `read_table` would give for them on disk."""
    import pandas as pd

    df = pd.DataFrame.from_records(rows, columns=columns)
    types = column_types(record)
    for c in columns:  # a system's own columns: the text a CSV cell would hold, as read_table gives it
        if c not in types:
            df[c] = [("" if v is None else str(v)) for v in df[c]]
    return df.astype({c: types.get(c, "object") for c in columns})
