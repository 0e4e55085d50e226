"""experiments/ladder_table.py: docs/baselines.md's ladder table from a runs.csv and its run folders."""
from __future__ import annotations

import importlib.util
import json

import pandas as pd
import pytest

from tests.helpers import ROOT

spec = importlib.util.spec_from_file_location("ladder_table", ROOT / "experiments" / "ladder_table.py")
lt = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lt)

TEXTS = {"a.flac": "one two three four five six seven eight nine ten", "b.flac": "one, two!"}


def _table(tmp_path):
    """Codec2 1200 (40 ms packets) and G.711 (20 ms) on two files at 0 and 10 % loss."""
    rows = []
    for loss in (0.0, 0.1):
        spec_ = json.dumps({"burst": 3, "loss": loss, "model": "gilbert_elliott"})
        for label, system, ptime, payload in (("codec2", {"kind": "codec2", "mode": 1200}, 0.04, 1200.0),
                                              ("g711", {"kind": "ffmpeg", "codec": "pcm_mulaw", "bitrate_bps": 64000},
                                               0.02, 64000.0)):
            for audio, wer in (("a.flac", 0.1 + loss), ("b.flac", 1.0 if loss else 0.0)):
                key = f"{label}-{audio[0]}-{loss}"
                folder = tmp_path / "runs" / key
                folder.mkdir(parents=True)
                (folder / "manifest.json").write_text(json.dumps({"scenario": {"system": system,
                                                                               "transcript": TEXTS[audio]}}))
                frame_s = ptime / 2 if label == "codec2" else ptime  # codec2: two frames a packet, sent in pairs
                pd.DataFrame({"flow": 0, "frame": range(100), "capture_s": [frame_s * i for i in range(100)]}).to_csv(
                    folder / "frames.csv", index=False)
                fpp = 2 if label == "codec2" else 1
                sends = [0.3 * (i // 2) for i in range(50)]
                pd.DataFrame({"flow": 0, "kind": ["media"] * 49 + ["feedback"], "send_s": sends,
                              "first_frame": [fpp * i for i in range(49)] + [-1]}).to_csv(
                    folder / "packets.csv", index=False)
                rows.append({"network.forward.loss": spec_, "label": label, "audio": audio, "key": key, "status": "ok",
                             "payload_bps": payload, "total_bps": payload + 320 / ptime + 80, "visqol": 4 - 10 * loss,
                             "plcmos": 3.0, "wer": wer, "loss_rate": loss + 0.01})
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_rows_per_setting_with_corpus_wer_and_measured_loss(tmp_path):
    t = lt.ladder_table(lt.load(_table(tmp_path)))
    assert t[["label", "setting"]].values.tolist() == [["codec2", "mode 1200"], ["g711", "64 kbit/s"]]
    c2 = t.iloc[0]
    assert c2.packet_ms == pytest.approx(40) and t.iloc[1].packet_ms == pytest.approx(20)
    assert (c2.payload_bps, c2.total_bps, c2.n) == (1200.0, 1200.0 + 8000 + 80, 2)
    assert c2["visqol@0.1"] == pytest.approx(3.0) and c2["loss@0.1"] == pytest.approx(0.11)
    # corpus WER: 10 words at 0.2 (2 edits) and 2 words at 1.0 (2 edits): 4 / 12, not the mean 0.6
    assert c2["wer@0.1"] == pytest.approx(4 / 12) and c2["wer@0"] == pytest.approx(1 / 12)
    md = lt.markdown(t).splitlines()
    assert md[0].startswith("| system | setting | packet ms | payload bit/s | total bit/s | ViSQOL 0 % | ViSQOL 10 % |")
    assert md[2] == ("| codec2 | mode 1200 | 40 | 1 200 | 9 280 | 4.00 | 3.00 | 3.00 | 3.00 | 0.08 | 0.33 "
                     "| 11 % | 2 |")
    t.loc[0, ["packet_ms", "loss@0.1"]] = float("nan")  # a setting that sends no packets
    assert lt.markdown(t).splitlines()[2].startswith("| codec2 | mode 1200 | — | 1 200 |")
    assert lt.markdown(t).splitlines()[2].endswith("| 0.33 | — % | 2 |")


def test_setting_text():
    assert lt.setting_text({"kind": "largesc", "quantizers": 4}) == "L=4"
    assert lt.setting_text({"kind": "codec2", "mode": "700C"}) == "mode 700C"
    assert lt.setting_text({"kind": "ffmpeg", "bitrate_bps": 12200}) == "12.2 kbit/s"
