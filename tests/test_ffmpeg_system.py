"""The ``ffmpeg`` system: its settings refused in one line, every codec's payload bitrate, delay and
lossless round trip, G.726 in 20 ms frames, concealment, AMR's RFC 4867 payloads."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate

from helpers import decode_all, encode_all
from simlab.actors.ffmpeg_codecs import AMR_MODE_BITS, CODECS, resolve
from simlab.audio import SHIPPED_CLIP, read_audio
from simlab.errors import UserError
from simlab.scenario import parse_scenario

pytest.importorskip("av", reason="PyAV (pip install av) runs the ffmpeg system")

from simlab.actors.ffmpeg import FfmpegSystem  # noqa: E402

#: (codec, bitrate_bps): every codec, every rate it takes.
SETTINGS = [(c, b) for c, info in CODECS.items() for b in sorted(info.bitrates)]
#: Lossless waveform SNR floors on the shipped clip (measured: G.711 37, G.722 26, G.726 10.5..25,
#: AMR-NB 3.5..4.7 (CELP with pre-processing and a postfilter keeps little of the waveform), G.723.1 10.5).
MIN_SNR_DB = {"pcm_mulaw": 35, "pcm_alaw": 35, "g722": 23, "g726": 9, "g726le": 9, "libopencore_amrnb": 3,
              "g723_1": 9}


def spec_error(system: dict) -> str:
    with pytest.raises(UserError) as exc:
        parse_scenario({"name": "t", "audio": str(SHIPPED_CLIP), "system": system})
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("codec", ["ilbc", "speex", "gsm", "g729", "amr_wb", "amrwb", "libopencore_amrwb"])
def test_decode_only_codecs_are_refused_with_that_reason(codec):
    msg = spec_error({"kind": "ffmpeg", "codec": codec})
    assert f"system: codec: {codec!r}" in msg and "decode-only" in msg and "pcm_mulaw" in msg and "g723_1" in msg


@pytest.mark.parametrize("system, words", [
    ({"kind": "ffmpeg", "codec": "mp3"}, ["'mp3' is not one of pcm_mulaw, pcm_alaw, g722, g726"]),
    ({"kind": "ffmpeg", "codec": "libopus"}, ["system kind opus"]),
    ({"kind": "ffmpeg", "codec": "g726", "bitrate_bps": 20000}, ["bitrate_bps: 20000 is not one of 16000, 24000, 32000, 40000"]),
    ({"kind": "ffmpeg", "codec": "libopencore_amrnb", "bitrate_bps": 12000},
     ["bitrate_bps: 12000 is not one of 4750, 5150, 5900, 6700, 7400, 7950, 10200, 12200"]),
    ({"kind": "ffmpeg", "codec": "g723_1", "bitrate_bps": 5300}, ["not one of 6300", "no 5.3 kbit/s mode"]),
    ({"kind": "ffmpeg", "codec": "pcm_alaw", "bitrate_bps": 56000}, ["not one of 64000"]),
    ({"kind": "ffmpeg", "codec": "libopencore_amrnb", "frame_ms": 30}, ["frame_ms: 30 is not one of 20"]),
    ({"kind": "ffmpeg", "codec": "g722", "frame_ms": 25}, ["frame_ms: 25 is not one of 10, 20, 30, 40"]),
])
def test_settings_the_codec_does_not_take_are_refused_naming_the_allowed(system, words):
    msg = spec_error(system)
    assert all(w in msg for w in words), msg


def test_defaults_are_the_codecs_own_and_show_resolved():
    sc = parse_scenario({"name": "t", "audio": str(SHIPPED_CLIP), "system": {"kind": "ffmpeg", "codec": "g723_1"}})
    assert (sc.system.bitrate_bps, sc.system.frame_ms) == (6300, 30)
    sc = parse_scenario({"name": "t", "audio": str(SHIPPED_CLIP), "system": {"kind": "ffmpeg"}})
    assert (sc.system.codec, sc.system.bitrate_bps, sc.system.frame_ms) == ("pcm_mulaw", 64000, 20)


def test_an_ffmpeg_build_without_the_codec_says_what_to_install(monkeypatch):
    """`simlab check` and a run refuse it before anything is written (check_inputs), in one line."""
    import av

    from simlab.scenario_inputs import check_inputs

    real = av.Codec

    def no_amr(name, mode="r"):
        if name == "libopencore_amrnb":
            raise av.codec.codec.UnknownCodecError(name)
        return real(name, mode)

    monkeypatch.setattr(av, "Codec", no_amr)
    sc = parse_scenario({"name": "t", "audio": str(SHIPPED_CLIP), "system": {"kind": "ffmpeg", "codec": "libopencore_amrnb"}})
    with pytest.raises(UserError) as exc:
        check_inputs(sc)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("system: codec: libopencore_amrnb: this FFmpeg")
    assert "has no libopencore_amrnb encoder" in msg and "pip install" in msg
    with pytest.raises(UserError, match="has no libopencore_amrnb encoder"):
        FfmpegSystem("libopencore_amrnb")


@pytest.fixture(scope="module")
def clips() -> dict[int, np.ndarray]:
    return {r: read_audio(SHIPPED_CLIP, r)[: r * 6] for r in (8000, 16000)}


@pytest.mark.parametrize("codec, bitrate", SETTINGS)
def test_payload_bitrate_delay_and_lossless_round_trip(clips, codec, bitrate):
    s = FfmpegSystem(codec, bitrate)
    x = clips[s.sample_rate]
    enc = encode_all(s, x)
    bits = [int(e.unit_bits.sum()) for e in enc]
    assert len(set(bits)) == 1 and bits[0] == 8 * s.setting.frame_bytes  # every frame one fixed-size unit
    rate = sum(bits) / (len(enc) * s.frame_samples / s.sample_rate)
    assert rate == s.setting.payload_bps
    if codec == "libopencore_amrnb":  # RFC 4867 octet-aligned: CMR + TOC bytes, speech bits padded to a byte
        assert rate == 8 * 50 * (2 + (AMR_MODE_BITS[bitrate] + 7) // 8)
    else:
        assert abs(rate / bitrate - 1) <= 0.02
    y, dec = decode_all(FfmpegSystem(codec, bitrate), enc)
    assert all(d.concealed == 0 and d.info["recovery"] == "none" for d in dec)
    c = correlate(y, x[: len(y)], mode="full", method="fft")[len(y) - 1: len(y) + 400]
    lag = s.algorithmic_delay_samples
    assert int(np.argmax(c)) == lag
    ref = x[: len(y) - lag]
    snr = 10 * np.log10(np.sum(ref ** 2) / np.sum((y[lag:] - ref) ** 2))
    print(f"{codec} {bitrate}: payload {rate:.0f} bit/s, delay {lag} samples, SNR {snr:.1f} dB")
    assert snr > MIN_SNR_DB[codec]


@pytest.mark.parametrize("codec, bitrate", [("g726", 16000), ("g726", 40000), ("g726le", 24000)])
@pytest.mark.parametrize("frame_ms", [10, 20])
def test_g726_in_short_frames_gives_the_bytes_of_a_whole_clip_encode(clips, codec, bitrate, frame_ms):
    """FFmpeg's G.726 encoder frames 1640..4096 samples; simlab sets it to its own frame. ADPCM is
    sample by sample, so the bytes must be those of encoding the clip in one go."""
    import av

    x = clips[8000]
    payload = b"".join(e.payload for e in encode_all(FfmpegSystem(codec, bitrate, frame_ms), x))
    from simlab.actors.pcm16 import to_int16

    enc = av.CodecContext.create(codec, "w")
    enc.sample_rate, enc.layout, enc.format, enc.bit_rate = 8000, "mono", "s16", bitrate
    enc.open()
    n = len(payload) * 8 // (bitrate // 8000)
    fr = av.AudioFrame.from_ndarray(to_int16(x[:n])[None, :], format="s16", layout="mono")
    fr.sample_rate, fr.pts = 8000, 0
    whole = b"".join(bytes(p) for p in enc.encode(fr) + enc.encode(None))
    assert payload == whole


def test_amr_encoders_in_one_process_do_not_share_state(clips):
    """Flows and batch workers build several; each must give what a fresh one gives."""
    x = clips[8000][: 8000 * 2]
    first = [e.payload for e in encode_all(FfmpegSystem("libopencore_amrnb", 5150), x)]
    encode_all(FfmpegSystem("libopencore_amrnb", 4750), x)
    assert [e.payload for e in encode_all(FfmpegSystem("libopencore_amrnb", 5150), x)] == first


@pytest.mark.parametrize("codec", list(CODECS))
def test_losses_are_concealed_within_the_signals_peak(clips, codec):
    s = FfmpegSystem(codec)
    x = clips[s.sample_rate]
    enc = encode_all(s, x)
    clean, _ = decode_all(FfmpegSystem(codec), enc)
    n = s.frame_samples
    energy = (clean[: len(enc) * n].reshape(-1, n) ** 2).sum(axis=1)
    loud = 60 + int(np.argmax(energy[60:-2]))  # a single loss in the middle of speech
    lost = {40, 41, 42, 43, 44, 45, loud}
    y, dec = decode_all(FfmpegSystem(codec), enc, lost)
    kinds = [d.info["recovery"] for d in dec]
    plc = CODECS[codec].plc
    for f in sorted(lost):
        assert dec[f].concealed == 1 and kinds[f] == ("plc" if plc == "decoder" else "repeat")
    assert sum(d.concealed for d in dec) == len(lost)
    if plc == "waveform":
        assert kinds[46] == kinds[loud + 1] == "resume"
        # a long loss fades to silence 60 ms in; concealment never exceeds what was played
        assert np.all(y[int(round((40 + 3) * n)):46 * n] == 0)  # frames 43-45 begin past 60 ms at 20 ms frames
        assert np.max(np.abs(y[40 * n:46 * n])) <= np.max(np.abs(y[:40 * n])) + 1e-6
    else:  # the decoder's own concealment: not silence at first, and audio resumes after it
        assert np.any(y[loud * n:(loud + 1) * n] != 0)
        assert np.any(y[(loud + 1) * n:(loud + 2) * n] != 0)
    assert np.array_equal(y[: 40 * n], clean[: 40 * n])


def test_amr_rtp_payload_is_rfc4867_octet_aligned(clips):
    s = FfmpegSystem("libopencore_amrnb", 7950)
    enc = encode_all(s, clips[8000][: 160 * 3])
    one = enc[0].payload
    assert one[0] == 0xF0 and one[1] == (5 << 3 | 0x04) and len(one) == 2 + 20  # CMR 15, TOC FT 5 Q 1, 159 bits
    assert s.rtp_payload([one]) == one
    three = s.rtp_payload([e.payload for e in enc])
    assert three[0] == 0xF0 and list(three[1:4]) == [0x80 | 5 << 3 | 4, 0x80 | 5 << 3 | 4, 5 << 3 | 4]
    assert three[4:] == b"".join(e.payload[2:] for e in enc) and len(three) == 3 * len(one) - 2


def test_describe_names_codec_rtp_and_concealment():
    d = FfmpegSystem("g722").describe()
    assert d["rtp"] == {"payload_type": 9, "clock_rate": 8000, "encoding_name": "G722"}
    assert d["sample_rate"] == 16000 and d["frame_samples"] == 320 and d["algorithmic_delay_samples"] == 22
    assert "Appendix I" in d["concealment"] and "libavcodec" in d["library"]
    assert FfmpegSystem("g726", 24000).describe()["rtp"]["encoding_name"] == "AAL2-G726-24"
    assert FfmpegSystem("g726le", 40000).describe()["rtp"]["encoding_name"] == "G726-40"
    assert resolve("libopencore_amrnb").rtp_name == "AMR"


HIDE_AMR = r"""
import sys, av
real = av.Codec
def codec(name, mode="r"):
    if name == "libopencore_amrnb":
        raise av.codec.codec.UnknownCodecError(name)
    return real(name, mode)
av.Codec = codec
from simlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("codec, hide, words", [
    ("libopencore_amrnb", True, "has no libopencore_amrnb encoder: install a PyAV built with it"),
    ("gsm", False, "is decode-only in FFmpeg"),
])
@pytest.mark.parametrize("command", ["check", "run"])
def test_the_command_line_refuses_in_one_line_with_exit_2_and_writes_nothing(tmp_path, codec, hide, words, command):
    import subprocess
    import sys

    scenario = tmp_path / "s.yaml"
    scenario.write_text(f"name: t\naudio: {SHIPPED_CLIP}\nsystem: {{kind: ffmpeg, codec: {codec}}}\n")
    out = tmp_path / "out"
    args = [command, str(scenario)] + (["--out", str(out)] if command == "run" else [])
    prog = ["-c", HIDE_AMR] if hide else ["-m", "simlab"]
    r = subprocess.run([sys.executable, *prog, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and words in lines[0], r.stderr
    assert not out.exists()
