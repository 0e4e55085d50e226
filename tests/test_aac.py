"""AacSystem (FFmpeg AAC-LC through PyAV), its frame-interpolation concealment, and the bench."""
from __future__ import annotations

import numpy as np
import pytest

from simlab.actors import waveform_conceal as wc
from simlab.actors.base import DictWindow, Received, Timer
from simlab.audio import SHIPPED_CLIP, read_audio, shared_speech
from simlab.errors import UserError

pytest.importorskip("av", reason="PyAV (pip install av) is needed for the AAC baseline")

from simlab.actors.aac import AacSystem  # noqa: E402

N = 1024


FakeWindow = DictWindow  # the receiver's view: a dict of frame -> Received


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_audio(SHIPPED_CLIP)[: 24000 * 8]


def encode_all(system: AacSystem, x: np.ndarray) -> list:
    timer = Timer(profile=None)
    return [system.transmit(i, x[i * N:(i + 1) * N], 0.0, timer) for i in range(len(x) // N)]


def decode_all(system: AacSystem, encoded: list, lost: set[int]) -> tuple[np.ndarray, list]:
    w = FakeWindow({e.frame: Received(e.frame, np.array([True]), np.array([e.frame not in lost]), e.payload)
                    for e in encoded})
    timer = Timer(profile=None)
    out = [system.receive(e.frame, w, timer) for e in encoded]
    assert all(d.audio.shape == (N,) and d.audio.dtype == np.float32 for d in out)
    return np.concatenate([d.audio for d in out]), out


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - test).astype(np.float64) ** 2)))


@pytest.mark.parametrize("bitrate, min_snr", [(48000, 12.0), (24000, 5.0)])
def test_lossless_round_trip_reproduces_input(speech, bitrate, min_snr):
    s = AacSystem(bitrate)
    enc = encode_all(s, speech)
    y, d = decode_all(AacSystem(bitrate), enc, set())
    lag = s.algorithmic_delay_samples
    snr = snr_db(speech[: len(y) - lag], y[lag:])
    rate = sum(int(e.unit_bits.sum()) for e in enc) / (len(enc) * N / 24000)
    print(f"aac {bitrate} bit/s: waveform SNR {snr:.1f} dB, payload {rate:.0f} bit/s, delay {lag} samples")
    assert snr > min_snr
    assert all(x.concealed == 0 and x.info["recovery"] == "none" for x in d)


def test_priming_frame_is_an_empty_unit_and_stream_stays_continuous(speech):
    enc = encode_all(AacSystem(24000), speech[: 10 * N])
    assert len(enc) == 10
    assert enc[0].payload == b"" and enc[0].unit_bits.tolist() == [0] and enc[0].copies.tolist() == [1]
    assert all(len(e.payload) > 0 and e.unit_bits[0] == 8 * len(e.payload) for e in enc[1:])
    y, _ = decode_all(AacSystem(24000), enc, set())
    assert len(y) == 10 * N


def test_delay_is_what_cross_correlation_finds_on_other_speech(speech):
    """The delay is measured on the clip's first seconds; other speech must agree."""
    from scipy.signal import correlate

    libri = shared_speech("dev")
    if libri is not None and any(libri.rglob("*.flac")):
        x = read_audio(sorted(libri.rglob("*.flac"))[0])[: 24000 * 6]
    else:
        x = read_audio(SHIPPED_CLIP)[24000 * 8: 24000 * 14]
    s = AacSystem(32000)
    y, _ = decode_all(AacSystem(32000), encode_all(s, x), set())
    x = x[: len(y)]
    c = correlate(y, x, mode="full", method="fft")[len(x) - 1: len(x) - 1 + 8 * N]
    assert int(np.argmax(c)) == s.algorithmic_delay_samples


def test_concealment_stays_within_the_signals_peaks_and_slopes(speech):
    s = AacSystem(24000)
    enc = encode_all(s, speech)
    ref, _ = decode_all(AacSystem(24000), enc, set())
    rng = np.random.default_rng(7)
    lost = set(np.flatnonzero(rng.random(len(enc)) < 0.25).tolist()) | {40, 41, 42, 43, 44}
    y, d = decode_all(AacSystem(24000), enc, lost)
    concealed = np.repeat([x.concealed == 1 for x in d], N)
    assert concealed.sum() == N * len(lost)
    played = y[~concealed]
    assert np.abs(y[concealed]).max() <= np.abs(played).max() + 1e-6
    # no click: no sample step in or into a concealed frame larger than the lossless decode's
    near = concealed[1:] | concealed[:-1]
    assert np.abs(np.diff(y))[near].max() <= np.abs(np.diff(ref)).max()
    # a burst repeats and fades to silence; the frame that ends it is crossfaded back in
    assert [d[k].info["recovery"] for k in range(40, 45)] == ["repeat"] * 5
    assert np.abs(y[42 * N: 45 * N]).max() == 0.0  # faded out after two frames
    if 45 not in lost:
        assert d[45].info["recovery"] == "resume" and d[45].concealed == 0


def test_isolated_loss_continues_a_steady_voiced_sound():
    """On a steady harmonic sound, pitch repetition recovers the lost frame and the
    crossfade the damaged one after it; silence in their place would be 0 dB."""
    t = np.arange(24000 * 2) / 24000
    x = sum(0.2 / k * np.sin(2 * np.pi * 150 * k * t + k) for k in range(1, 6)).astype(np.float32)
    enc = encode_all(AacSystem(48000), x)
    ref, _ = decode_all(AacSystem(48000), enc, set())
    y, d = decode_all(AacSystem(48000), enc, {25})
    assert d[25].info["recovery"] == "repeat" and d[25].concealed == 1
    assert d[26].info["recovery"] == "resume" and d[26].concealed == 0
    lost, after = slice(25 * N, 26 * N), slice(26 * N, 27 * N)
    snr, snr_after = snr_db(ref[lost], y[lost]), snr_db(ref[after], y[after])
    # what decoding frame 26 without frame 25's overlap would give, without the crossfade
    enc_skip = [e for e in enc if e.frame != 25]
    raw = AacSystem(48000)
    raw_out = [raw._codec.decode(e.payload) for e in enc_skip]
    snr_raw = snr_db(ref[after], raw_out[25])
    print(f"steady 150 Hz harmonic tone: lost frame {snr:.1f} dB, next frame {snr_after:.1f} dB "
          f"(decoded raw, no crossfade: {snr_raw:.1f} dB)")
    assert snr > 6.0 and snr_after > 3.0
    assert snr_after > snr_raw + 3.0


def test_pitch_period_and_continuation_of_a_periodic_signal():
    sr = 24000
    t = np.arange(4000) / sr
    x = (np.sin(2 * np.pi * 200 * t) + 0.5 * np.sin(2 * np.pi * 400 * t + 1)).astype(np.float32)
    p = wc.pitch_period(x[:3000], sr)
    assert p % 120 == 0  # 200 Hz at 24 kHz: 120 samples, or a multiple
    cont = wc.continue_forward(x[:3000], 1000, sr)
    assert np.abs(cont - x[3000:]).max() < 1e-3  # a periodic signal continues exactly
    hist = x[:3000] * 0.3
    filled = wc.fill(hist, 1000, sr, 1.0, 0.5)
    assert np.abs(filled).max() <= np.abs(hist).max()
    assert np.allclose(filled, cont * 0.3 * np.linspace(1.0, 0.5, 1000), atol=1e-6)
    dec = x[3000:] * 0.9
    faded = wc.fade_in(hist, dec, 1000, sr, 0.5)
    ramp = wc.raised_cosine(1000)
    assert np.allclose(faded, (1 - ramp) * 0.5 * cont * 0.3 + ramp * dec, atol=1e-6)
    assert np.abs(faded).max() <= max(np.abs(hist).max(), np.abs(dec).max())
    assert wc.fill(np.zeros(0, np.float32), 64, sr, 1.0, 1.0).tolist() == [0.0] * 64


def test_describe_reports_what_ffmpeg_really_does():
    """FFmpeg's encoder does not go below ~11.6 kbit/s at 24 kHz mono: describe says so."""
    s = AacSystem(8000)
    x = read_audio(SHIPPED_CLIP)
    enc = encode_all(s, x)
    real = sum(int(e.unit_bits.sum()) for e in enc) / (len(enc) * N / 24000)
    d = s.describe()
    print(f"aac requested 8000 bit/s: describe says {d['bitrate_bps_measured']}, whole clip {real:.0f}")
    assert d["bitrate_bps_requested"] == 8000
    assert abs(d["bitrate_bps_measured"] - real) < 0.15 * real
    assert real > 11000
    assert "libavcodec" in d["library"] and d["algorithmic_delay_samples"] == s.algorithmic_delay_samples


@pytest.mark.parametrize("kwargs, word", [(dict(bitrate_bps=500), "bitrate_bps"),
                                          (dict(bitrate_bps=24000, sample_rate=24001), "sample_rate"),
                                          (dict(bitrate_bps=400000), "bitrate_bps")])
def test_bad_settings_are_user_errors(kwargs, word):
    with pytest.raises(UserError, match=word):
        AacSystem(**kwargs)


def test_bench_codecs_times_every_setting():
    from simlab.actors.codec_bench import bench_codecs

    settings = (("aac", dict(bitrate_bps=24000)), ("opus", dict(bitrate_bps=24000, frame_ms=20, fec=True)))
    try:
        rows = bench_codecs(seconds=1.0, settings=settings)
    except UserError as exc:  # libopus missing on this machine
        pytest.skip(str(exc))
    assert [r["codec"] for r in rows] == ["aac", "opus"]
    assert rows[0]["frames"] == 23 and rows[1]["frames"] == 50
    for r in rows:
        assert r["encode_ms_per_frame"] > 0 and r["decode_ms_per_frame"] > 0 and r["decode_ms_per_frame_lossy"] > 0
        assert r["realtime_factor"] < 1.0  # both codecs run faster than real time
