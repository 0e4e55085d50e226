"""score_run: whole-clip metrics for summary.csv and windows.csv, checked against packets.csv
and frames.csv computed independently here."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from helpers import run, scenario

from simlab.audio import SHARED_SPEECH, SHIPPED_CLIP
from simlab.errors import UserError
from simlab.metrics.net_windows import NETWORK_COLUMNS, network_windows, read_masks, window_grid
from simlab.metrics.run import score_run
from simlab.metrics.transcript import resolve_transcript

PHASES = ["network.forward.schedule=[{until_s: 4.0, loss: {model: uniform, p: 0.0}}]",
          "network.forward.loss.p=0.3"]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """12 s synthetic run, 6 tokens sent per frame, 2 of them twice, loss 0 then 30 %."""
    tmp = tmp_path_factory.mktemp("synthetic")
    overrides = ["duration_s=12", "system.quantizers=6", "system.redundant=2", "windows.window_s=2.0",
                 "windows.hop_s=0.4", "metrics=[token_accuracy]", *PHASES]
    out, summary = run(tmp, "eq24", overrides)
    return scenario("eq24", overrides), out, summary


def _expected(packets: pd.DataFrame, frames: pd.DataFrame, t0: float, t1: float, flows: int = 1) -> dict:
    """The network columns of one window, the plain way: filter, sum, divide."""
    p = packets[(packets.send_s >= t0) & (packets.send_s < t1) & (packets.dropped == 0)]
    media, fb = p[p.kind != "feedback"], p[p.kind == "feedback"]  # forward: media and redundant
    sent = packets[(packets.send_s >= t0) & (packets.send_s < t1) & (packets.kind != "feedback")]
    per = (t1 - t0) * flows
    pay = media.payload_bytes.sum() * 8 / per
    hdr = media.header_bytes.sum() * 8 / per
    ctrl = (fb.header_bytes + fb.payload_bytes).sum() * 8 / per
    exp = {"payload_bps": pay, "header_bps": hdr, "ctrl_bps": ctrl, "total_bps": pay + hdr + ctrl,
           "packets_sent": len(sent),
           "loss_rate": (sent.lost.sum() + sent.dropped.sum()) / len(sent) if len(sent) else math.nan}
    if frames is not None:
        f = frames[(frames.capture_s >= t0) & (frames.capture_s < t1)]
        masks = f["mask"].astype(str).str.zfill(8)
        exp.update({"p_hat_mean": f.p_hat.mean(),
                    "tokens_sent_mean": masks.map(lambda m: sum(c != "0" for c in m)).mean(),
                    "tokens_doubled_mean": masks.map(lambda m: m.count("2")).mean()})
    return exp


def test_windows_csv_agrees_with_packets_and_frames(synthetic_run):
    sc, out, summary = synthetic_run
    win = pd.read_csv(out / "windows.csv")
    packets, frames = pd.read_csv(out / "packets.csv"), pd.read_csv(out / "frames.csv")
    # 12 s, 2 s windows every 0.4 s: floor((12 - 2) / 0.4) + 1 = 26 windows
    assert len(win) == 26
    assert np.allclose(win.t_start_s, np.arange(26) * 0.4) and np.allclose(win.t_end_s - win.t_start_s, 2.0)
    assert list(win.columns) == ["t_start_s", "t_end_s", *NETWORK_COLUMNS]
    for _, w in win.iterrows():
        exp = _expected(packets, frames, w.t_start_s, w.t_end_s)
        for k, v in exp.items():
            assert w[k] == pytest.approx(v, rel=1e-9, abs=1e-12, nan_ok=True), (k, w.t_start_s)
    # the fixed controller: 6 tokens a frame, 2 of them doubled; 2 s of 6.25 packets/s is 12 or 13
    assert (win.tokens_sent_mean == 6).all() and (win.tokens_doubled_mean == 2).all()
    assert set(win.packets_sent) <= {12, 13}
    # loss phases: nothing lost in windows inside the first 4 s, about 30 % after
    assert (win.loss_rate[win.t_end_s <= 4.0] == 0).all()
    late = win[win.t_start_s >= 4.5]
    assert 0.15 < late.loss_rate.mean() < 0.45


def test_synthetic_summary_says_why_metrics_are_missing(synthetic_run):
    _, out, summary = synthetic_run
    assert math.isnan(summary["token_accuracy"])
    assert "no concealed_mask" in summary["token_accuracy_status"]
    row = pd.read_csv(out / "summary.csv").iloc[0]
    assert row["token_accuracy_status"].startswith("skipped:")


def test_audio_metric_without_audio_is_a_status_not_a_number(synthetic_run, tmp_path):
    sc, out, _ = synthetic_run
    sc2 = scenario(sc.resolved() | {"metrics": ["visqol", "plcmos"]})
    cols = score_run(sc2, out)
    assert math.isnan(cols["visqol"]) and math.isnan(cols["plcmos"])
    assert "no reference.wav" in cols["visqol_status"]


def test_bad_input_is_a_user_error(synthetic_run, tmp_path):
    sc, out, _ = synthetic_run
    with pytest.raises(UserError, match="unknown metric"):
        score_run(scenario(sc.resolved() | {"metrics": ["visqul"]}), out)
    with pytest.raises(UserError, match="run folder not found"):
        score_run(sc, tmp_path / "nope")
    with pytest.raises(UserError, match="must be > 0"):
        window_grid(10.0, 0.0, 0.5)
    (tmp_path / "packets.csv").write_text("flow,seq\n0,0\n")
    (tmp_path / "frames.csv").write_text("flow,capture_s,p_hat\n0,0.0,0.0\n")
    with pytest.raises(UserError, match="lacks column"):
        network_windows(tmp_path, np.array([0.0]), np.array([1.0]))


def test_window_grid_short_and_exact():
    s, e = window_grid(1.0, 2.5, 0.5)  # shorter than a window: one window, the whole call
    assert s.tolist() == [0.0] and e.tolist() == [1.0]
    s, e = window_grid(5.0, 2.5, 0.5)  # the last window ends exactly at the end
    assert len(s) == 6 and e[-1] == pytest.approx(5.0)


def test_two_flows_rates_are_per_flow(tmp_path):
    out, summary = run(tmp_path, "eq24", ["duration_s=6", "flows=2"])
    starts, ends = np.array([0.0]), np.array([6.0])
    win = network_windows(out, starts, ends)
    packets = pd.read_csv(out / "packets.csv")
    exp = _expected(packets, None, 0.0, 6.0, flows=2)
    assert win.payload_bps[0] == pytest.approx(exp["payload_bps"])
    # the whole call by send time misses only the last packet (sent at the end): within one packet
    assert abs(win.payload_bps[0] - summary["payload_bps"]) <= 24 * 8 / 6 / 2 + 1e-9


def test_redundant_packets_count_as_media_not_control(tmp_path):
    """`redundancy: own` sends second copies in packets of their own: forward traffic, as in
    summary.csv, not loss reports (they were counted as ctrl_bps)."""
    out, summary = run(tmp_path, "eq24", ["duration_s=6", "system.redundant=2", "packetization.redundancy=own"])
    win = network_windows(out, np.array([0.0]), np.array([6.0]))
    assert win.ctrl_bps[0] == pytest.approx(summary["ctrl_bps"], rel=0.02)
    # by send time the call misses the last group's two packets (sent at its end): 2 x 40 B
    assert win.header_bps[0] == pytest.approx(summary["header_bps"], abs=2 * 40 * 8 / 6 + 1e-9)
    assert win.packets_sent[0] == pytest.approx(summary["packets_sent"], abs=2)


def test_masks_keep_leading_zeros(tmp_path):
    (tmp_path / "frames.csv").write_text("flow,capture_s,mask\n0,0.0,00000000\n0,0.08,01222000\n1,0.0,11111111\n")
    t, m = read_masks(tmp_path / "frames.csv", flow=0)
    assert t.tolist() == [0.0, 0.08]
    assert m.tolist() == [[0] * 8, [0, 1, 2, 2, 2, 0, 0, 0]]
    (tmp_path / "frames.csv").write_text("flow,capture_s,mask\n0,0.0,0130\n")
    with pytest.raises(UserError, match="0, 1 or 2"):
        read_masks(tmp_path / "frames.csv")


OPUS = {"name": "opus_windows", "seed": 5, "audio": "package:clip.wav", "duration_s": 5.0,
        "system": {"kind": "opus", "bitrate_bps": 24000, "frame_ms": 20, "fec": True},
        "network": {"forward": {"loss": {"model": "uniform", "p": 0.2}}},
        "metrics": ["plcmos"], "windows": {"window_s": 2.5, "hop_s": 0.5}}


@pytest.fixture(scope="module")
def opus_run(tmp_path_factory):
    pytest.importorskip("speechmos", reason="PLCMOS needs speechmos (pip install speechmos)")
    pytest.importorskip("onnxruntime", reason="PLCMOS needs onnxruntime")
    tmp = tmp_path_factory.mktemp("opus")
    return run(tmp, OPUS)


@pytest.mark.slow
def test_audio_run_scores_whole_clip_and_windows(opus_run):
    import soundfile as sf

    from simlab.metrics import compute_metrics, window_metrics

    out, summary = opus_run
    win = pd.read_csv(out / "windows.csv")
    ref, sr = sf.read(str(out / "reference.wav"), dtype="float32")
    rec, _ = sf.read(str(out / "received.wav"), dtype="float32")
    # the summary column is compute_metrics on the run's own files, with the scenario's seed
    direct = compute_metrics(["plcmos"], ref, rec, sr, seed=5, workers=1)
    assert summary["plcmos"] == pytest.approx(direct["plcmos"])
    assert 1.0 <= summary["plcmos"] <= 5.0
    # window traces: the metric's own windows, then the network columns for the same spans
    direct_w = window_metrics(["plcmos"], ref, rec, sr, window_s=2.5, hop_s=0.5, seed=5, workers=1)
    assert np.allclose(win.t_start_s, direct_w.t_start_s) and np.allclose(win.plcmos, direct_w.plcmos)
    assert len(win) == len(direct_w) >= 5 and list(win.columns[:3]) == ["t_start_s", "t_end_s", "plcmos"]
    packets, frames = pd.read_csv(out / "packets.csv"), pd.read_csv(out / "frames.csv")
    for _, w in win.iterrows():
        p = packets[(packets.send_s >= w.t_start_s) & (packets.send_s < w.t_end_s) & (packets.kind == "media")]
        assert w.payload_bps == pytest.approx(p.payload_bytes.sum() * 8 / (w.t_end_s - w.t_start_s))
    # Opus has no token mask: no decision columns
    assert "tokens_sent_mean" not in win and "mask" not in frames


def test_transcript_resolution(tmp_path):
    sc = scenario({"transcript": "HELLO WORLD"})
    assert resolve_transcript(sc, None) == "HELLO WORLD"
    with pytest.raises(UserError, match="not found"):
        resolve_transcript(scenario({"transcript": "missing.txt"}), None)
    (tmp_path / "t.txt").write_text("SOME TEXT\n")
    assert resolve_transcript(scenario({"transcript": str(tmp_path / "t.txt")}), None) == "SOME TEXT"
    assert resolve_transcript(scenario({}), SHIPPED_CLIP) is None
    flac = SHARED_SPEECH / "dev/1089/134686/1089-134686-0000.flac"
    if not flac.is_file():
        pytest.skip(f"LibriSpeech dev speech not found at {flac.parent} (shared/speech is absent)")
    line = (flac.parent / "1089-134686.trans.txt").read_text().splitlines()[0]
    assert resolve_transcript(scenario({}), flac) == line.split(" ", 1)[1]
