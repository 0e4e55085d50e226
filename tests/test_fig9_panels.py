"""The run figure tells whose numbers it shows: panel (d) draws every run's own loss and p̂ (runs of
several systems meet different channels), and the spectrogram shows the source's band (a 16 kHz
file resampled to 24 kHz has only leakage above 8 kHz) over the whole clip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from helpers import run

from simlab.audio import SHIPPED_CLIP, read_audio
from simlab.report.fig9 import fig9_figure, window_centres
from simlab.report.run_data import load_run, load_runs

SYNTH = ["duration_s=8", "system.quantizers=5", "network.forward.loss.p=0.3"]


def test_overlay_draws_each_runs_own_loss(tmp_path):
    a, _ = run(tmp_path, "eq24", SYNTH, name="a")
    b, _ = run(tmp_path, "eq24", SYNTH + ["seed=2", "network.forward.loss.p=0.1"], name="b")
    runs = load_runs([a, b])
    ax = fig9_figure(runs).axes[3]
    lines = ax.loss_axis.lines
    assert [ln.get_label() for ln in lines] == ["synthetic (a) forward loss", "synthetic (a) p̂",
                                                "synthetic (b) forward loss", "synthetic (b) p̂"]
    for (loss, phat), r in zip((lines[:2], lines[2:]), runs):
        w = r.windows  # computed from each run's packets.csv and frames.csv
        assert np.allclose(loss.get_xdata(), window_centres(w))
        assert np.allclose(loss.get_ydata(), w.loss_rate, equal_nan=True)
        assert np.allclose(phat.get_ydata(), w.p_hat_mean, equal_nan=True)
    assert lines[0].get_ydata().mean() > lines[2].get_ydata().mean()  # 30 % vs 10 %: not the same channel
    # each run's loss in its payload line's colour; the title says whose loss it is
    payload = ax.lines
    assert [ln.get_color() for ln in payload] == [lines[0].get_color(), lines[2].get_color()]
    assert "each run's own loss" in ax.get_title(loc="left")
    top = ax.loss_axis.get_ylim()[1]
    assert top >= max(np.nanmax(ln.get_ydata()) for ln in lines[::2])


@pytest.fixture(scope="module")
def run16k(tmp_path_factory):
    pytest.importorskip("opuslib")
    tmp = tmp_path_factory.mktemp("fig9_16k")
    wav = tmp / "speech16k.wav"
    x = read_audio(SHIPPED_CLIP, 16000)[: int(5.33 * 16000)]  # not a whole number of windows
    sf.write(str(wav), x, 16000, subtype="PCM_16")
    out, _ = run(tmp, {"name": "s16k", "seed": 1, "audio": str(wav),
                       "system": {"kind": "opus", "bitrate_bps": 24000, "frame_ms": 20},
                       "network": {"forward": {"loss": {"model": "uniform", "p": 0.1}}}, "metrics": []})
    return out


def test_spectrogram_shows_the_source_band_and_the_whole_clip(run16k):
    assert json.loads((run16k / "manifest.json").read_text())["audio_sample_rate"] == 16000
    ref, sr = sf.read(str(run16k / "reference.wav"))
    assert sr == 24000
    r = load_run(run16k)
    assert r.source_rate == 16000
    fig = fig9_figure([r])
    spec = fig.axes[2]
    assert spec.get_ylim()[1] == pytest.approx(8.0)  # the source's Nyquist, not the reference's 12 kHz
    mesh = spec.collections[0]
    corners = mesh.get_coordinates()  # cell corners: (rows + 1, cols + 1, 2)
    assert corners[..., 1].max() == pytest.approx(8.0)
    assert corners[..., 0].min() == 0.0 and corners[..., 0].max() == pytest.approx(len(ref) / sr)
    # the time axis shows the whole call, beyond the last full window
    w = r.windows
    assert w["t_end_s"].max() < r.duration_s
    assert spec.get_xlim()[1] == pytest.approx(max(r.duration_s, w["t_end_s"].max()))
    assert r.duration_s > 5.2 and "source 16 kHz" in spec.get_title(loc="left")


def test_a_source_at_the_reference_rate_keeps_the_full_band(run16k, tmp_path):
    manifest = json.loads((run16k / "manifest.json").read_text())
    for rate, top in ((24000, 12.0), (48000, 12.0), (None, 12.0)):
        folder = tmp_path / f"r{rate}"
        folder.mkdir()
        for f in ("summary.csv", "packets.csv", "frames.csv", "reference.wav"):
            (folder / f).write_bytes((run16k / f).read_bytes())
        (folder / "manifest.json").write_text(json.dumps({**manifest, "audio_sample_rate": rate}))
        assert fig9_figure([load_run(folder)]).axes[2].get_ylim()[1] == pytest.approx(top)
