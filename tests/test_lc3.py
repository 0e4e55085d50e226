"""The lc3 system (Google's liblc3 through lc3py): settings, bytes per frame, delay, LC3's PLC."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from helpers import decode_all, encode_all, run, tables
from simlab.actors.base import DictWindow, Received, Timer
from simlab.audio import SHIPPED_CLIP, read_audio
from simlab.errors import UserError

lc3 = pytest.importorskip("lc3", reason="the lc3 system needs lc3py (pip install lc3py)")

from simlab.actors.lc3 import Lc3System, bitrate_range, frame_bytes  # noqa: E402


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - test).astype(np.float64) ** 2)))


@pytest.mark.parametrize("frame_ms", [7.5, 10])
def test_bytes_per_frame_are_liblc3s(frame_ms):
    enc = lc3.Encoder(int(frame_ms * 1000), 16000)
    lo, hi = bitrate_range(frame_ms)
    assert (lo, hi) == ((16000, 320000) if frame_ms == 10 else (21334, 426667))
    for b in list(range(lo, lo + 3000, 7)) + [24000, 27734, 32000, 64000, hi - 1, hi]:
        assert frame_bytes(b, frame_ms) == enc.get_frame_bytes(b)
    assert frame_bytes(lo, frame_ms) == 20 and frame_bytes(lo - 1, frame_ms) == 19
    assert frame_bytes(hi, frame_ms) == 400


@pytest.mark.parametrize("rate, frame_ms, bitrate", [(16000, 10, 32000), (8000, 10, 16000), (48000, 7.5, 32000),
                                                     (24000, 7.5, 27734), (32000, 10, 64000)])
def test_lossless_run_carries_the_nominal_bitrate_and_counts_the_delay(tmp_path, rate, frame_ms, bitrate):
    out, _ = run(tmp_path, {"name": "lc3", "seed": 1, "audio": "package:clip.wav", "duration_s": 3.0,
                            "system": {"kind": "lc3", "bitrate_bps": bitrate, "frame_ms": frame_ms,
                                       "sample_rate": rate}})
    _, frames, summary = tables(out)
    s = Lc3System(bitrate, frame_ms, rate)
    coded = s.describe()["bitrate_bps_coded"]
    print(f"lc3 {rate} Hz {frame_ms} ms {bitrate} bit/s: {s.frame_bytes} bytes per frame, coded {coded:.0f}, "
          f"payload {summary.payload_bps:.0f} bit/s, delay {s.algorithmic_delay_samples} samples")
    assert summary.payload_bps == pytest.approx(coded, rel=1e-9)
    assert summary.payload_bps == pytest.approx(bitrate, rel=0.02)
    assert (frames.payload_bits == 8 * s.frame_bytes).all() and (frames.recovery == "none").all()
    assert s.frame_samples == rate * frame_ms / 1000
    assert s.algorithmic_delay_samples == rate * (2.5 if frame_ms == 10 else 4.0) / 1000
    delay_s = s.algorithmic_delay_samples / rate
    assert np.allclose(frames.t_context_s - (frames.send_s - frames.capture_s), delay_s)


@pytest.mark.parametrize("frame_ms", [7.5, 10])
def test_delay_is_what_cross_correlation_finds(frame_ms):
    from scipy.signal import correlate

    x = read_audio(SHIPPED_CLIP, 16000)[: 16000 * 6]
    s = Lc3System(64000, frame_ms, 16000)
    y, _ = decode_all(Lc3System(64000, frame_ms, 16000), encode_all(s, x))
    c = correlate(y, x[: len(y)], mode="full", method="fft")[len(y) - 1: len(y) - 1 + 400]
    assert int(np.argmax(c)) == s.algorithmic_delay_samples
    d = s.algorithmic_delay_samples
    snr = snr_db(x[: len(y) - d], y[d:])
    print(f"lc3 64 kbit/s {frame_ms} ms at 16 kHz: waveform SNR {snr:.1f} dB")
    assert snr > 10


def test_plc_continues_a_steady_sound_and_fades_in_a_burst():
    t = np.arange(16000 * 2) / 16000
    x = sum(0.2 / k * np.sin(2 * np.pi * 150 * k * t + k) for k in range(1, 6)).astype(np.float32)
    enc = encode_all(Lc3System(32000, 10, 16000), x)
    ref, _ = decode_all(Lc3System(32000, 10, 16000), enc)
    y, d = decode_all(Lc3System(32000, 10, 16000), enc, {100} | set(range(150, 175)))
    assert [d[k].info["recovery"] for k in (99, 100, 101)] == ["none", "plc", "none"]
    assert d[100].concealed == 1 and d[101].concealed == 0
    lost = slice(100 * 160, 101 * 160)
    snr = snr_db(ref[lost], y[lost])
    level = float(np.sqrt(np.mean(y[lost] ** 2) / np.mean(ref[lost] ** 2)))
    print(f"lc3 PLC of one frame of a steady 150 Hz harmonic tone: {snr:.1f} dB (silence: 0 dB), level {level:.2f}")
    # LC3's PLC repeats the spectrum with scrambled signs: the level and spectrum continue,
    # the waveform only in part
    assert snr > 1.5 and 0.7 < level < 1.3
    rms = [float(np.sqrt(np.mean(y[k * 160:(k + 1) * 160] ** 2))) for k in (150, 172)]
    assert rms[1] < 0.1 * rms[0]  # a long burst fades out (to a tenth within 220 ms)


@pytest.mark.parametrize("kwargs, message", [
    (dict(bitrate_bps=12000), "lc3 bitrate_bps 12000 is outside 16000..320000 for frame_ms 10"),
    (dict(bitrate_bps=16000, frame_ms=7.5), "outside 21334..426667 for frame_ms 7.5"),
    (dict(frame_ms=5), "lc3 frame_ms 5 is not one of 7.5, 10"),
    (dict(sample_rate=44100), "lc3 sample_rate 44100 is not one of 8000, 16000, 24000, 32000, 48000"),
])
def test_bad_settings_are_user_errors(kwargs, message):
    with pytest.raises(UserError, match=message):
        Lc3System(**kwargs)


@pytest.mark.parametrize("system, message", [
    ("{kind: lc3, bitrate_bps: 12000}", "system: bitrate_bps: 12000 is outside 16000..320000 for frame_ms 10 "
                                        "(LC3 frames of 20..400 bytes)"),
    ("{kind: lc3, bitrate_bps: 500000, frame_ms: 7.5}", "system: bitrate_bps: 500000 is outside 21334..426667 "
                                                        "for frame_ms 7.5"),
    ("{kind: lc3, frame_ms: 5}", "system.frame_ms: 5 is not one of 7.5 or 10"),
    ("{kind: lc3, sample_rate: 44100}", "system.sample_rate: 44100 is not one of 8000, 16000, 24000, 32000 or 48000"),
])
def test_check_refuses_settings_in_one_line(tmp_path, system, message):
    (tmp_path / "s.yaml").write_text(f"audio: package:clip.wav\nsystem: {system}\n")
    r = subprocess.run([sys.executable, "-m", "simlab.cli", "check", str(tmp_path / "s.yaml")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert message in r.stderr
