"""OpusSystem against the real libopus: bitrate, delay, FEC truth, FEC vs PLC, feedback."""
from __future__ import annotations

import ctypes.util
import sys

import numpy as np
import pytest

from simlab.actors.base import DictWindow, Received, Timer
from simlab.audio import SHIPPED_CLIP, read_audio
from simlab.errors import UserError

from simlab.actors import opus_lib
from simlab.actors.opus import OpusSystem

try:
    opus_lib.load()
    _NO_OPUS = ""
except UserError as exc:  # no libopus here: the tests that encode say so and skip
    _NO_OPUS = str(exc)
needs_opus = pytest.mark.skipif(bool(_NO_OPUS), reason=_NO_OPUS)


FakeWindow = DictWindow  # the receiver's view: a dict of frame -> Received


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_audio(SHIPPED_CLIP)[: 24000 * 8]


def encode_all(system: OpusSystem, x: np.ndarray, p_hat: float) -> list:
    n = system.frame_samples
    timer = Timer(profile=None)
    return [system.transmit(i, x[i * n:(i + 1) * n], p_hat, timer) for i in range(len(x) // n)]


def window_for(encoded: list, lost: set[int]) -> FakeWindow:
    return FakeWindow({e.frame: Received(e.frame, np.array([True]), np.array([e.frame not in lost]), e.payload)
                       for e in encoded})


def decode_all(system: OpusSystem, encoded: list, lost: set[int]) -> tuple[np.ndarray, list]:
    w, timer = window_for(encoded, lost), Timer(profile=None)
    out = [system.receive(e.frame, w, timer) for e in encoded]
    return np.concatenate([d.audio for d in out]), out


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - test).astype(np.float64) ** 2)))


@needs_opus
def test_payload_bitrate_within_10_percent_of_target(speech):
    s = OpusSystem(24000, 20, fec=True)
    enc = encode_all(s, speech, p_hat=0.0)
    bits = sum(int(e.unit_bits.sum()) for e in enc)
    rate = bits / (len(enc) * 0.020)
    print(f"opus 24 kbit/s 20 ms: measured payload {rate:.0f} bit/s")
    assert abs(rate - 24000) <= 0.10 * 24000
    assert all(e.unit_bits[0] == 8 * len(e.payload) and e.copies.tolist() == [1] for e in enc)


@needs_opus
def test_decoded_stream_lags_input_by_algorithmic_delay(speech):
    from scipy.signal import correlate

    s = OpusSystem(24000, 20, fec=False)
    y, _ = decode_all(s, encode_all(s, speech, 0.0), set())
    x = speech[: len(y)]
    c = correlate(y, x, mode="full", method="fft")[len(x) - 1: len(x) - 1 + 2000]
    lag = int(np.argmax(c))
    print(f"opus delay: OPUS_GET_LOOKAHEAD {s.algorithmic_delay_samples}, cross-correlation {lag}")
    assert abs(lag - s.algorithmic_delay_samples) <= 2
    d = s.algorithmic_delay_samples
    assert snr_db(x[: len(y) - d], y[d:]) > 5.0  # aligned by it, the decode follows the input


@needs_opus
def test_fec_flag_is_the_truth_about_lbrr(speech):
    """fec_in_packet is 0 at 8 kbit/s (bitstream identical to FEC off) and mostly 1 at
    24 kbit/s; per packet it agrees with what libopus does with it (an FEC decode from a
    packet without LBRR is exactly PLC)."""
    x = speech[: 24000 * 4]
    low = encode_all(OpusSystem(8000, 20, fec=True), x, p_hat=0.2)
    low_off = encode_all(OpusSystem(8000, 20, fec=False), x, p_hat=0.2)
    assert all(e.info["fec_in_packet"] == 0 for e in low)
    assert [e.payload for e in low] == [e.payload for e in low_off]

    high = encode_all(OpusSystem(24000, 20, fec=True), x, p_hat=0.2)
    frac = np.mean([e.info["fec_in_packet"] for e in high])
    print(f"24 kbit/s, p_hat 0.2: {frac:.0%} of packets carry LBRR")
    assert frac > 0.5
    op = opus_lib.load()
    for k in range(5, len(high), 9):
        outs = []
        for use_fec in (True, False):
            dec = op.decoder.create_state(24000, 1)
            for j in range(k - 1):
                opus_lib.decode(op, dec, high[j].payload, 480)
            outs.append(opus_lib.decode(op, dec, high[k].payload if use_fec else None, 480, use_fec))
            op.decoder.destroy(dec)
        assert np.array_equal(*outs) == (high[k].info["fec_in_packet"] == 0), k


@needs_opus
def test_isolated_loss_fec_beats_plc_and_bursts_fall_back_to_plc(speech):
    tx = OpusSystem(24000, 20, fec=True)
    enc = encode_all(tx, speech, p_hat=0.1)
    ref, _ = decode_all(OpusSystem(24000, 20, fec=True), enc, set())
    # isolated losses where the next packet carries LBRR
    lost = {n for n in range(10, len(enc) - 1, 20) if enc[n + 1].info["fec_in_packet"]}
    assert len(lost) >= 10
    y_fec, d_fec = decode_all(OpusSystem(24000, 20, fec=True), enc, lost)
    y_plc, d_plc = decode_all(OpusSystem(24000, 20, fec=False), enc, lost)
    assert all(d_fec[n].info["recovery"] == "fec" and d_fec[n].concealed == 1 for n in lost)
    assert all(d_plc[n].info["recovery"] == "plc" for n in lost)
    s_fec, s_plc = snr_db(ref, y_fec), snr_db(ref, y_plc)
    print(f"isolated losses ({len(lost)}): SNR vs lossless decode FEC {s_fec:.1f} dB, PLC {s_plc:.1f} dB")
    assert s_fec > s_plc + 3.0

    # a burst of two: only the second loss is recoverable from the packet after it
    n = next(n for n in range(50, len(enc) - 2) if enc[n + 2].info["fec_in_packet"])
    _, d = decode_all(OpusSystem(24000, 20, fec=True), enc, {n, n + 1})
    assert [d[n].info["recovery"], d[n + 1].info["recovery"], d[n + 2].info["recovery"]] == ["plc", "fec", "none"]


@needs_opus
def test_fec_not_claimed_from_packet_without_lbrr(speech):
    enc = encode_all(OpusSystem(8000, 20, fec=True), speech[: 24000 * 2], p_hat=0.2)
    _, d = decode_all(OpusSystem(8000, 20, fec=True), enc, {30})
    assert d[30].info["recovery"] == "plc"


@needs_opus
def test_expected_loss_follows_p_hat(speech):
    s = OpusSystem(24000, 20, fec=True)
    timer = Timer(profile=None)
    frame = speech[24000: 24000 + 480]
    for k, p_hat in enumerate([0.0, 0.07, 0.25, 0.004, 1.0]):
        e = s.transmit(k, frame, p_hat, timer)
        assert e.info["expected_loss_pct"] == round(100 * p_hat)
        assert s.expected_loss_pct == round(100 * p_hat)  # read back from libopus
    assert OpusSystem(24000, 20, fec=True).lookahead_frames == 1
    assert OpusSystem(24000, 20, fec=False).lookahead_frames == 0
    with pytest.raises(ValueError, match="p_hat"):
        s.transmit(9, frame, 1.5, timer)


@needs_opus
def test_same_input_same_packets(speech):
    x = speech[: 24000]
    a = [e.payload for e in encode_all(OpusSystem(16000, 40, fec=True), x, 0.05)]
    b = [e.payload for e in encode_all(OpusSystem(16000, 40, fec=True), x, 0.05)]
    assert a == b and len(a) == 25


@pytest.mark.parametrize("kwargs, word", [
    (dict(bitrate_bps=24000, frame_ms=30, fec=True), "frame_ms"),
    (dict(bitrate_bps=100, frame_ms=20, fec=True), "bitrate_bps"),
    (dict(bitrate_bps=24000, frame_ms=20, fec=True, application="music"), "application"),
    (dict(bitrate_bps=24000, frame_ms=20, fec=True, sample_rate=44100), "sample_rate"),
])
def test_bad_settings_are_user_errors(kwargs, word):
    with pytest.raises(UserError, match=word):
        OpusSystem(**kwargs)


def test_missing_libopus_is_one_line_user_error(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    for mod in [m for m in sys.modules if m == "opuslib" or m.startswith("opuslib.")]:
        monkeypatch.delitem(sys.modules, mod)
    with pytest.raises(UserError) as info:
        OpusSystem(24000, 20, fec=True)
    msg = str(info.value)
    assert "libopus0" in msg and "apt-get install libopus0" in msg and "\n" not in msg


@needs_opus
def test_describe_names_library_and_settings():
    d = OpusSystem(24000, 60, fec=False, application="audio").describe()
    assert d["library"].startswith("libopus ")
    assert (d["bitrate_bps"], d["frame_ms"], d["fec"], d["application"], d["frame_samples"]) == \
        (24000, 60, False, "audio", 1440)
