"""The codec2 system (libcodec2 through pycodec2): settings, bits, delay, noise state, concealment."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers import decode_all, encode_all, run, tables
from simlab.actors.base import DictWindow, Received, Timer
from simlab.audio import SHIPPED_CLIP, read_audio, shared_speech
from simlab.entries.codec2 import MODES as SPEC_MODES
from simlab.errors import UserError

pytest.importorskip("pycodec2", reason="the codec2 system needs pycodec2 (pip install pycodec2)")

from simlab.actors.codec2 import Codec2System  # noqa: E402
from simlab.actors.codec2_lib import DELAY_SAMPLES, MODES  # noqa: E402

NOMINAL = {"3200": 3200, "2400": 2400, "1600": 1600, "1400": 1400, "1300": 1300, "1200": 1200, "700C": 700}


def speech_8k(seconds: float = 8.0, which: int = 0) -> np.ndarray:
    dev = shared_speech("dev")
    files = sorted(dev.rglob("*.flac")) if dev is not None else []
    if files:
        return read_audio(files[which * 7 % len(files)], 8000)[: int(seconds * 8000)]
    x = read_audio(SHIPPED_CLIP, 8000)
    start = int(which * 3 * 8000) % max(1, len(x) - int(seconds * 8000))
    return x[start: start + int(seconds * 8000)]


def test_spec_modes_are_the_bound_modes():
    assert [str(m) for m in SPEC_MODES] == list(MODES)


@pytest.mark.parametrize("mode", list(MODES))
def test_each_mode_codes_its_bits_per_frame(mode):
    s = Codec2System(mode)
    enc = encode_all(s, speech_8k(2.0))
    frame_s = s.frame_samples / 8000
    assert frame_s == (0.02 if mode in ("3200", "2400") else 0.04)
    assert s.bits_per_frame == round(NOMINAL[mode] * frame_s)  # 1200 bit/s x 40 ms = 48 bits
    assert all(e.unit_bits.tolist() == [s.bits_per_frame] and len(e.payload) == -(-s.bits_per_frame // 8)
               for e in enc)
    d = s.describe()
    assert d["payload_bps_nominal"] == NOMINAL[mode] and d["noise_generator"] == "per decoder"
    assert "libcodec2" in d["library"] and d["algorithmic_delay_samples"] == DELAY_SAMPLES[mode]


@pytest.mark.parametrize("mode", list(MODES))
def test_lossless_run_carries_the_nominal_bitrate_and_counts_the_delay(tmp_path, mode):
    out, _ = run(tmp_path, {"name": "c2", "seed": 1, "audio": "package:clip.wav", "duration_s": 4.0,
                            "system": {"kind": "codec2", "mode": mode}})
    _, frames, summary = tables(out)
    print(f"codec2 {mode}: payload {summary.payload_bps:.0f} bit/s")
    assert summary.payload_bps == pytest.approx(NOMINAL[mode], rel=0.02)
    assert summary.packets_lost == 0 and (frames.recovery == "none").all()
    # the codec's delay is in t_context (no compute is charged without a latency profile)
    delay_s = DELAY_SAMPLES[mode] / 8000
    assert np.allclose(frames.t_context_s - (frames.send_s - frames.capture_s), delay_s)


def _lag_of_envelopes(x: np.ndarray, y: np.ndarray) -> int:
    """The lag (samples) that best aligns y's amplitude envelope with x's: a vocoder keeps the
    envelope, not the waveform, so waveform correlation cannot find its delay."""
    from scipy.signal import butter, correlate, sosfiltfilt

    sos = butter(2, 50, fs=8000, output="sos")
    ex, ey = (sosfiltfilt(sos, np.abs(v.astype(np.float64))) for v in (x, y))
    ex, ey = ex - ex.mean(), ey - ey.mean()
    c = correlate(ey, ex, mode="full", method="fft")[len(ex) - 1: len(ex) - 1 + 800]
    return int(np.argmax(c))


@pytest.mark.parametrize("mode", ["3200", "1200", "700C"])
def test_delay_is_where_the_envelopes_line_up(mode):
    lags = []
    for k in range(4):
        x = speech_8k(6.0, k)
        s = Codec2System(mode)
        y, _ = decode_all(s, encode_all(s, x))
        lags.append(_lag_of_envelopes(x[: len(y)], y))
    print(f"codec2 {mode}: envelope lags {lags}, declared {DELAY_SAMPLES[mode]}")
    assert abs(np.median(lags) - DELAY_SAMPLES[mode]) <= 12


def test_decoders_keep_their_own_noise_state():
    """libcodec2's noise generator is one static state; each decoder gets its own, so a decode
    does not depend on what other decoders in the process did before."""
    x = speech_8k(4.0)
    enc = encode_all(Codec2System("1300"), x)
    first, _ = decode_all(Codec2System("1300"), enc)
    other = Codec2System("1300")  # interleave another decoder's work
    a, b = Codec2System("1300"), []
    w = DictWindow({e.frame: Received(e.frame, np.array([True]), np.array([True]), e.payload) for e in enc})
    for e in enc:
        other.receive(e.frame, w, Timer(profile=None))
        b.append(a.receive(e.frame, w, Timer(profile=None)).audio)
    assert np.array_equal(first, np.concatenate(b))


def test_same_run_twice_in_one_process_is_byte_identical(tmp_path):
    sc = {"name": "c2", "seed": 3, "audio": "package:clip.wav", "duration_s": 3.0,
          "system": {"kind": "codec2", "mode": "700C"},
          "network": {"forward": {"loss": {"model": "uniform", "p": 0.2}}}}
    a, _ = run(tmp_path, sc, name="a")
    b, _ = run(tmp_path, sc, name="b")
    for f in ("received.wav", "frames.csv", "packets.csv"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


@pytest.mark.parametrize("concealment", ["repeat", "waveform"])
def test_a_burst_is_concealed_then_fades_and_resumes(concealment):
    x = speech_8k(6.0)
    enc = encode_all(Codec2System("1200"), x)
    ref, _ = decode_all(Codec2System("1200", concealment), enc)
    lost = {40, 41, 42, 43, 60}
    y, d = decode_all(Codec2System("1200", concealment), enc, lost)
    n = 320
    assert [d[k].concealed for k in (39, 40, 43, 44, 60, 61)] == [0, 1, 1, 0, 1, 0]
    assert [d[k].info["recovery"] for k in (39, 40, 44, 60, 61)] == ["none", concealment, "resume", concealment,
                                                                     "resume"]
    assert np.abs(y[40 * n: 41 * n]).max() > 0  # the first lost frame is filled ...
    assert np.abs(y[42 * n: 44 * n]).max() == 0.0  # ... and a burst is silent after 80 ms
    assert np.abs(y[60 * n: 61 * n]).max() <= 1.0
    assert np.abs(y[:40 * n] - ref[:40 * n]).max() == 0.0


@pytest.mark.parametrize("mode", ["3200", "1200"])
def test_auto_concealment_is_the_better_one_for_the_mode(tmp_path, mode):
    from simlab.actors.codec2 import BEST

    assert set(BEST) == set(MODES) and set(BEST.values()) == {"repeat", "waveform"}
    s = Codec2System(mode)
    assert s.describe()["concealment"] == BEST[mode] and s.describe()["concealment_setting"] == "auto"
    out, _ = run(tmp_path, {"name": "c2", "seed": 2, "audio": "package:clip.wav", "duration_s": 4.0,
                            "system": {"kind": "codec2", "mode": mode},
                            "network": {"forward": {"loss": {"model": "uniform", "p": 0.2}}}})
    _, frames, _ = tables(out)
    assert set(frames.recovery) == {"none", "resume", BEST[mode]}


def test_bad_settings_are_user_errors():
    with pytest.raises(UserError, match="mode '450' is not one of 3200, 2400, 1600, 1400, 1300, 1200, 700C"):
        Codec2System("450")
    with pytest.raises(UserError, match="concealment"):
        Codec2System("1200", "lm")


@pytest.mark.parametrize("mode, message", [
    (450, "system.mode: 450 is not available: pycodec2's libcodec2 1.2 has no 450 coder "
          "(allowed: 3200, 2400, 1600, 1400, 1300, 1200, 700C)"),
    ("450PWB", "system.mode: '450PWB' is not available"),
    (2000, "system.mode: 2000 is not one of 3200, 2400, 1600, 1400, 1300, 1200, 700C"),
    ("700B", "system.mode: '700B' is not one of 3200, 2400, 1600, 1400, 1300, 1200, 700C"),
])
def test_check_refuses_modes_in_one_line(tmp_path, mode, message):
    (tmp_path / "s.yaml").write_text(f"audio: package:clip.wav\nsystem: {{kind: codec2, mode: {mode}}}\n")
    r = subprocess.run([sys.executable, "-m", "simlab.cli", "check", str(tmp_path / "s.yaml")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert message in r.stderr


def test_schema_lists_the_modes():
    import json

    r = subprocess.run([sys.executable, "-m", "simlab.cli", "schema"], capture_output=True, text=True, timeout=120)
    schema = json.loads(r.stdout)
    spec = next(d for d in schema["$defs"].values() if d.get("properties", {}).get("kind", {}).get("const") == "codec2")
    assert spec["properties"]["mode"]["enum"] == [3200, 2400, 1600, 1400, 1300, 1200, "700C"]
