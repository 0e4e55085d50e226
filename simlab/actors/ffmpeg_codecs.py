"""The speech codecs the ``ffmpeg`` system runs through PyAV, as facts: sample rate, frames,
bitrates, algorithmic delay, RTP payload type and clock, concealment. No PyAV here (the
scenario's spec validates against this table; `simlab.actors.ffmpeg_av` asks the installed
FFmpeg whether it really has each codec).

Codec names are FFmpeg's encoder names. Decode-only codecs (FFmpeg has a decoder, no encoder)
and codecs with a simlab system of their own are refused with that reason; anything else with
the list of the ones that work.
"""
from __future__ import annotations

from dataclasses import dataclass

#: RFC 3551 §6: a payload type from the dynamic range, for codecs without a static one.
DYNAMIC_PT = 96
#: RFC 4867 §4.3.1 octet-aligned header: CMR 15 (no mode request) and 4 reserved zero bits.
AMR_CMR = 0xF0
#: Speech bits per frame of each AMR-NB mode (3GPP TS 26.101 Table 1a), by bitrate.
AMR_MODE_BITS = {4750: 95, 5150: 103, 5900: 118, 6700: 134, 7400: 148, 7950: 159, 10200: 204, 12200: 244}


@dataclass(frozen=True)
class CodecInfo:
    """One codec: ``encoder``/``decoder`` are FFmpeg's names; ``frame_ms`` the frame lengths it
    takes (the first is the default); ``bitrates`` its rates (the first is the default);
    ``delay_samples`` how far its decoded stream lags the input (checked by cross-correlation in
    the tests); ``plc``: ``decoder`` (the codec's own concealment) or ``waveform``
    (`simlab.actors.waveform_conceal`); ``rtp_pt``/``rtp_clock``/``rtp_name``: RFC 3551,
    RFC 4867 or RFC 4856; ``standard``: what it is."""

    encoder: str
    decoder: str
    standard: str
    sample_rate: int
    frame_ms: tuple[int, ...]
    bitrates: tuple[int, ...]
    delay_samples: int
    plc: str
    rtp_pt: int
    rtp_clock: int
    rtp_name: str

    def frame_bytes(self, bitrate_bps: int, frame_ms: int) -> int:
        """Payload bytes of one frame as simlab sends it (AMR: with its CMR and TOC bytes)."""
        if self.encoder == "libopencore_amrnb":
            return 2 + (AMR_MODE_BITS[bitrate_bps] + 7) // 8
        if self.encoder == "g723_1":
            return 24  # 6.3 kbit/s: 189 bits of parameters + 2 rate bits + 1 reserved, in 24 bytes
        return bitrate_bps * frame_ms // 8000


_SAMPLE_FRAMES = (20, 10, 30, 40)  # waveform codecs take any frame: RFC 3551's default ptime first

CODECS: dict[str, CodecInfo] = {c.encoder: c for c in (
    CodecInfo("pcm_mulaw", "pcm_mulaw", "ITU-T G.711 µ-law", 8000, _SAMPLE_FRAMES, (64000,), 0, "waveform",
              0, 8000, "PCMU"),
    CodecInfo("pcm_alaw", "pcm_alaw", "ITU-T G.711 A-law", 8000, _SAMPLE_FRAMES, (64000,), 0, "waveform",
              8, 8000, "PCMA"),
    # G.722 samples at 16 kHz but its RTP clock is 8 kHz (RFC 3551 §4.5.2, an old error kept for
    # compatibility). FFmpeg encodes the 64 kbit/s mode only (56 and 48 are decoder-side modes).
    # Its QMF analysis and synthesis filters delay the output by 22 samples (1.375 ms).
    CodecInfo("g722", "g722", "ITU-T G.722 SB-ADPCM", 16000, _SAMPLE_FRAMES, (64000,), 22, "waveform",
              9, 8000, "G722"),
    # FFmpeg's g726 packs codewords from the most significant bit (ITU-T I.366.2's AAL2 order:
    # RFC 4856's AAL2-G726-xx), g726le from the least (RFC 3551 §4.5.4's G726-xx).
    CodecInfo("g726", "g726", "ITU-T G.726 ADPCM, AAL2 (big-endian) packing", 8000, _SAMPLE_FRAMES,
              (32000, 16000, 24000, 40000), 0, "waveform", DYNAMIC_PT, 8000, "AAL2-G726-{kbps}"),
    CodecInfo("g726le", "g726le", "ITU-T G.726 ADPCM, RFC 3551 (little-endian) packing", 8000, _SAMPLE_FRAMES,
              (32000, 16000, 24000, 40000), 0, "waveform", DYNAMIC_PT, 8000, "G726-{kbps}"),
    # AMR-NB's encoder looks 5 ms ahead (3GPP TS 26.090): the decoded stream lags 40 samples.
    CodecInfo("libopencore_amrnb", "libopencore_amrnb", "3GPP AMR-NB (OpenCORE)", 8000, (20,),
              (12200, 4750, 5150, 5900, 6700, 7400, 7950, 10200), 40, "decoder", DYNAMIC_PT, 8000, "AMR"),
    # G.723.1 looks 7.5 ms ahead: 60 samples. FFmpeg encodes 6.3 kbit/s only.
    CodecInfo("g723_1", "g723_1", "ITU-T G.723.1 MP-MLQ", 8000, (30,), (6300,), 60, "decoder", 4, 8000, "G723"),
)}

#: Codecs FFmpeg (this build and FFmpeg in general) decodes but cannot encode.
DECODE_ONLY = {"amrnb": "AMR-NB (FFmpeg's native decoder; encode with libopencore_amrnb)",
               "amr_nb": "AMR-NB (encode with libopencore_amrnb)", "amrwb": "AMR-WB", "amr_wb": "AMR-WB",
               "libopencore_amrwb": "AMR-WB", "ilbc": "iLBC", "speex": "Speex", "gsm": "GSM 06.10",
               "gsm_ms": "GSM 06.10 (Microsoft)", "g729": "G.729", "g728": "G.728"}
#: Codecs FFmpeg encodes that simlab runs as systems of their own.
OWN_SYSTEM = {"libopus": "opus", "opus": "opus", "aac": "aac"}


@dataclass(frozen=True)
class Setting:
    """A codec at one bitrate and frame length."""

    info: CodecInfo
    bitrate_bps: int
    frame_ms: int

    @property
    def frame_samples(self) -> int:
        return self.info.sample_rate * self.frame_ms // 1000

    @property
    def frame_bytes(self) -> int:
        return self.info.frame_bytes(self.bitrate_bps, self.frame_ms)

    @property
    def payload_bps(self) -> float:
        """The payload bitrate simlab sends: every frame is the same size."""
        return 8.0 * self.frame_bytes * 1000.0 / self.frame_ms

    @property
    def rtp_name(self) -> str:
        return self.info.rtp_name.format(kbps=self.bitrate_bps // 1000)


def _names(values) -> str:
    return ", ".join(str(v) for v in values)


def resolve(codec: str, bitrate_bps: int | None = None, frame_ms: int | None = None) -> Setting:
    """The codec's setting, defaults filled in; ``ValueError`` (one line naming the key and the
    allowed values) for an unknown or decode-only codec, a bitrate or a frame it does not take."""
    if codec in DECODE_ONLY:
        raise ValueError(f"codec: {codec!r} ({DECODE_ONLY[codec]}) is decode-only in FFmpeg: it has no encoder; "
                         f"encodable: {_names(CODECS)}")
    if codec in OWN_SYSTEM:
        raise ValueError(f"codec: {codec!r} is the system kind {OWN_SYSTEM[codec]} (its own loss handling and "
                         f"settings); the ffmpeg system encodes: {_names(CODECS)}")
    info = CODECS.get(codec)
    if info is None:
        raise ValueError(f"codec: {codec!r} is not one of {_names(CODECS)}")
    bitrate = info.bitrates[0] if bitrate_bps is None else bitrate_bps
    if bitrate not in info.bitrates:
        why = " (FFmpeg's G.723.1 encoder has no 5.3 kbit/s mode)" if codec == "g723_1" else ""
        raise ValueError(f"bitrate_bps: {bitrate!r} is not one of {_names(sorted(info.bitrates))} for {codec}{why}")
    frame = info.frame_ms[0] if frame_ms is None else frame_ms
    if frame not in info.frame_ms:
        raise ValueError(f"frame_ms: {frame!r} is not one of {_names(sorted(info.frame_ms))} for {codec}")
    return Setting(info, int(bitrate), int(frame))
