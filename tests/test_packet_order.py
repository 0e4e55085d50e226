"""packets.csv is in send order per flow: read top to bottom, a Gilbert-Elliott run's loss bursts
are the bursts the channel made (a packet's fate is known at different times: an erasure at its
send, a delivery at its arrival, a report when the receiver makes it)."""
import numpy as np
import pandas as pd

from helpers import run
from simlab.records import PacketRecord
from simlab.report.recorder import SendOrder

GE = ["network.forward.loss={model: gilbert_elliott, loss: 0.2, burst: 4}", "duration_s=240",
      "network.forward.delay_s=0.3", "network.forward.jitter_s=0.05"]


def bursts(lost: np.ndarray) -> np.ndarray:
    """Lengths of the runs of 1s in a 0/1 sequence."""
    edges = np.diff(np.concatenate([[0], lost.astype(np.int8), [0]]))
    return np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)


def test_gilbert_elliott_bursts_read_top_to_bottom_are_the_sent_bursts(tmp_path):
    out, _ = run(tmp_path, overrides=GE + ["flows=2"])
    pk = pd.read_csv(out / "packets.csv")
    for flow, rows in pk.groupby("flow", sort=True):
        for kinds in (["media", "redundant"], ["feedback"]):
            part = rows[rows["kind"].isin(kinds)]
            assert (np.diff(part["seq"].to_numpy()) == 1).all(), (flow, kinds)  # numbered in send order
        key = rows.assign(k=(rows["kind"] == "feedback").astype(int))[["send_s", "k", "seq"]]
        assert key.equals(key.sort_values(["send_s", "k", "seq"], kind="stable")), flow
        media = rows[rows["kind"] != "feedback"]
        as_read = bursts((media["lost"] + media["dropped"]).to_numpy())
        by_send = bursts((media.sort_values(["send_s", "seq"], kind="stable")[["lost", "dropped"]].sum(axis=1))
                         .to_numpy())
        assert len(as_read) > 40 and np.array_equal(as_read, by_send)
        assert 2.5 < by_send.mean() < 6.0  # burst: 4


def _rec(flow, seq, kind, send_s):
    return PacketRecord(flow, seq, kind, send_s, send_s + 1, 40, 20, 160, seq, 0, 0, 0)


def test_send_order_holds_a_packet_until_the_earlier_ones_are_known_and_flushes_the_rest_sorted():
    out = []
    order = SendOrder(out.append)
    order.add(_rec(0, 1, "media", 0.2))  # seq 0 still in flight
    order.add(_rec(0, 0, "feedback", 0.1))
    assert out == []
    order.add(_rec(0, 0, "media", 0.0))
    assert [(r.kind, r.seq) for r in out] == [("media", 0), ("feedback", 0)]  # media 1 waits for report 1
    order.add(_rec(1, 0, "media", 0.05))
    order.add(_rec(0, 1, "feedback", 0.2))
    assert [(r.flow, r.kind, r.seq) for r in out[2:]] == [(0, "media", 1)]  # ties: forward first
    order.close()
    assert [(r.flow, r.kind, r.seq) for r in out[3:]] == [(0, "feedback", 1), (1, "media", 0)]
