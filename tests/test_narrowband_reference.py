"""A narrowband codec is scored against the wideband source, not against its own band-limited
reference.wav: otherwise G.711 at 8 kHz would look as good as a 16 kHz codec."""
import soundfile as sf

import simlab
from simlab.metrics import compute_metrics

G711 = {"name": "nb", "seed": 1, "audio": "package:clip.wav", "duration_s": 6,
        "system": {"kind": "ffmpeg", "codec": "pcm_mulaw"}, "packetization": {"frames_per_packet": 1},
        "metrics": ["visqol"], "windows": {"metrics": False}}


def test_narrowband_run_is_scored_against_the_16khz_source(tmp_path):
    res = simlab.run(G711, out=tmp_path / "run")
    ref, sr = sf.read(str(tmp_path / "run" / "reference.wav"), dtype="float32")
    rec, _ = sf.read(str(tmp_path / "run" / "received.wav"), dtype="float32")
    assert sr == 8000
    own_band = compute_metrics(["visqol"], ref, rec, sr)["visqol"]  # what scoring reference.wav gave
    assert own_band > 4.0  # lossless G.711 against its own 8 kHz band: near transparent
    assert res.summary["visqol"] < own_band - 0.3  # against the source, the lost 4-8 kHz band counts
