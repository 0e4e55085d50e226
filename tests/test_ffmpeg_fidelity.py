"""Fidelity: the ``ffmpeg`` system over a lossless link gives the audio the codec gives run on its
own, outside the testbed: received.wav equals, sample for sample (after the codec's delay), what
the ``ffmpeg`` command line encodes and decodes from the same 16-bit input. AMR-NB: Debian's
ffmpeg has no libopencore_amrnb encoder, so the reference there is Debian's own OpenCORE library
(libopencore-amrnb0) called directly, one encoder per process (its encoder carries state from one
instance to the next in a process)."""
from __future__ import annotations

import ctypes.util
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from helpers import run
from simlab.actors.ffmpeg_codecs import resolve
from simlab.audio import SHIPPED_CLIP, read_audio

pytest.importorskip("av", reason="PyAV (pip install av) runs the ffmpeg system")
FFMPEG = shutil.which("ffmpeg")
SECONDS = 6
#: codec, bitrate, raw format the ffmpeg command line writes and reads, its demuxer options.
CLI = [("pcm_mulaw", 64000, "mulaw", ["-ar", "8000"]), ("pcm_alaw", 64000, "alaw", ["-ar", "8000"]),
       ("g722", 64000, "g722", []), ("g726", 16000, "g726", ["-code_size", "2", "-sample_rate", "8000"]),
       ("g726", 40000, "g726", ["-code_size", "5", "-sample_rate", "8000"]),
       ("g726le", 32000, "g726le", ["-code_size", "4", "-sample_rate", "8000"]), ("g723_1", 6300, "g723_1", [])]


def source(tmp_path, sample_rate: int):
    """The first seconds of the shipped clip as a 16-bit wav at the codec's rate: simlab and the
    command line read the same samples."""
    path = tmp_path / f"in{sample_rate}.wav"
    sf.write(str(path), read_audio(SHIPPED_CLIP, sample_rate)[: sample_rate * SECONDS], sample_rate, subtype="PCM_16")
    return path


def simlab_received(tmp_path, wav, codec: str, bitrate: int) -> np.ndarray:
    out, _ = run(tmp_path, overrides=[f"system={{kind: ffmpeg, codec: {codec}, bitrate_bps: {bitrate}}}",
                                      f"audio={wav}", f"duration_s={SECONDS}", "network.forward.loss.p=0.0",
                                      "network.forward.bandwidth_bps=1000000", "packetization.frames_per_packet=1"])
    rx, _ = sf.read(str(out / "received.wav"), dtype="int16")
    return rx


def ffmpeg_cli(args: list[str]) -> None:
    r = subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr


def same_after_delay(rx: np.ndarray, ref: np.ndarray, delay: int) -> None:
    """received.wav is advanced by the codec's delay: sample i is the reference's sample i + delay."""
    n = min(len(rx), len(ref) - delay)
    assert n > 0.9 * len(rx) - delay and np.abs(rx[:n]).max() > 3000  # speech, not silence
    diff = np.flatnonzero(rx[:n] != ref[delay:delay + n])
    assert diff.size == 0, f"{diff.size} samples differ, the first at {diff[0]}"


@pytest.mark.skipif(FFMPEG is None, reason="the ffmpeg command line is not installed (apt-get install ffmpeg; "
                                           "install.sh does)")
@pytest.mark.parametrize("codec, bitrate, fmt, demux", CLI)
def test_received_audio_is_what_the_ffmpeg_command_line_makes(tmp_path, codec, bitrate, fmt, demux):
    encoders = subprocess.run([FFMPEG, "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    if f" {codec} " not in encoders:
        pytest.skip(f"this ffmpeg command line has no {codec} encoder")
    setting = resolve(codec, bitrate)
    wav = source(tmp_path, setting.info.sample_rate)
    coded, decoded = tmp_path / f"cli.{fmt}", tmp_path / "cli.raw"
    ffmpeg_cli(["-i", str(wav), "-c:a", codec, "-b:a", str(bitrate), "-f", fmt, str(coded)])
    ffmpeg_cli(["-f", fmt, *demux, "-i", str(coded), "-f", "s16le", "-ac", "1", str(decoded)])
    ref = np.fromfile(decoded, dtype="<i2")
    same_after_delay(simlab_received(tmp_path, wav, codec, bitrate), ref, setting.info.delay_samples)


AMR_REFERENCE = r"""
import ctypes, sys
import numpy as np
import soundfile as sf
mode, wav, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lib = ctypes.CDLL(sys.argv[4])
lib.Encoder_Interface_init.restype = lib.Decoder_Interface_init.restype = ctypes.c_void_p
lib.Encoder_Interface_Encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
lib.Decoder_Interface_Decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
x, _ = sf.read(wav, dtype="int16")
enc, dec = lib.Encoder_Interface_init(0), lib.Decoder_Interface_init()
buf, pcm, y = ctypes.create_string_buffer(64), np.zeros(160, np.int16), []
for i in range(len(x) // 160):
    frame = np.ascontiguousarray(x[i * 160:(i + 1) * 160])
    n = lib.Encoder_Interface_Encode(enc, mode, frame.ctypes.data, buf, 0)
    lib.Decoder_Interface_Decode(dec, buf.raw[:n], pcm.ctypes.data, 0)
    y.append(pcm.copy())
np.concatenate(y).tofile(out)
"""


@pytest.mark.parametrize("mode, bitrate", [(0, 4750), (4, 7400), (7, 12200)])
def test_amr_received_audio_is_what_opencore_makes_on_its_own(tmp_path, mode, bitrate):
    lib = ctypes.util.find_library("opencore-amrnb")
    if lib is None:
        pytest.skip("Debian's libopencore-amrnb0 (the AMR-NB reference outside FFmpeg) is not installed")
    wav = source(tmp_path, 8000)
    out = tmp_path / "opencore.raw"
    r = subprocess.run([sys.executable, "-c", AMR_REFERENCE, str(mode), str(wav), str(out), lib],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ref = np.fromfile(out, dtype=np.int16)
    same_after_delay(simlab_received(tmp_path, wav, "libopencore_amrnb", bitrate), ref,
                     resolve("libopencore_amrnb").info.delay_samples)
