"""LargeSC in the loop: whole scenarios through the simulation with the `small` profile on the CPU."""
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import run, tables

BASE = {
    "name": "largesc-e2e", "seed": 3, "audio": "package:clip.wav", "duration_s": 10,
    "system": {"kind": "largesc", "profile": "small", "quantizers": 8, "controller": "learned", "concealer": "lm"},
    "packetization": {"frames_per_packet": 2, "interleave": True, "redundancy": "next"},
    "network": {"forward": {"loss": {"model": "gilbert_elliott", "loss": 0.2, "burst": 2}}},
    "compute": {"timing": "profile", "profile": None},
}


@pytest.mark.slow
def test_ten_seconds_of_speech_end_to_end(tmp_path):
    out, s = run(tmp_path, BASE)
    pk, fr, summ = tables(out)
    assert len(fr) == 125  # 10 s of 80 ms frames
    ref, sr = sf.read(out / "reference.wav")
    rec, sr2 = sf.read(out / "received.wav")
    assert sr == sr2 == 24000 and len(ref) == len(rec) == 125 * 1920
    assert np.abs(rec).max() > 0
    # Bookkeeping: no token twice, none silently; the LM only fills tokens that were sent and lost.
    assert (fr.tokens_sent == fr.tokens_received + fr.tokens_lost + fr.tokens_late).all()
    assert (fr.tokens_concealed <= fr.tokens_lost + fr.tokens_late).all()
    assert fr.tokens_concealed.sum() == fr.tokens_lost.sum() + fr.tokens_late.sum() > 0
    masks = fr["mask"].astype(str).str.zfill(8)
    assert masks.map(lambda m: sum(int(c) for c in m)).tolist() == (fr.tokens_sent + fr.tokens_repeated).tolist()
    # The LM's one-step acoustic delay and the next-packet copies show in the release time.
    lookahead_s = (1 + 4) * 0.08
    assert np.allclose(fr.release_s - fr.capture_s, 0.4 + lookahead_s)
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["system"]["profile"] == "small" and manifest["system"]["system"] == "largesc"
    # Untrained weights are never mistaken for a result: the manifest says so.
    if not manifest["system"]["trained"]:
        assert any("UNTRAINED" in w for w in manifest["warnings"])


@pytest.mark.slow
def test_payload_bitrate_span_from_packets(tmp_path):
    """Payload bitrate, counted from packets.csv, spans 550 bit/s .. 2.06 kbit/s as L and R vary."""
    rates = {}
    for L, R in ((1, 0), (8, 8)):
        spec = {**BASE, "duration_s": 3, "network": {"forward": {"loss": {"model": "uniform", "p": 0.0}}},
                "system": {"kind": "largesc", "profile": "small", "quantizers": L, "redundant": R,
                           "controller": "fixed", "concealer": "drop"},
                "packetization": {"frames_per_packet": 2, "interleave": False, "redundancy": "same"}}
        out, s = run(tmp_path, spec, name=f"L{L}R{R}")
        pk = pd.read_csv(out / "packets.csv")
        media = pk[pk.kind != "feedback"]
        rates[(L, R)] = media.payload_bytes.sum() * 8 / s["duration_s"]
        assert rates[(L, R)] == pytest.approx(s["payload_bps"])
    assert rates[(1, 0)] <= 550 and rates[(8, 8)] >= 2060


@pytest.mark.slow
def test_readme_default_scenario_runs_from_the_command_line(tmp_path):
    """The README's first command (`simlab run scenarios/default.yaml`), cut to 4 s."""
    import json
    import subprocess
    import sys

    from helpers import ROOT

    out = tmp_path / "default"
    r = subprocess.run([sys.executable, "-m", "simlab.cli", "run", str(ROOT / "scenarios" / "default.yaml"),
                        "--out", str(out), "--set", "duration_s=4"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    pk, fr, s = tables(out)
    assert len(fr) == 50  # 4 s of 80 ms frames
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["system"]["profile"] == "small" and manifest["warnings"] == []
    assert s.total_bps == s.eq24_total_bps and s.payload_bps > 0
    assert 1.0 <= s.visqol <= 5.0 and 1.0 <= s.plcmos <= 5.0
