"""The ``ffmpeg`` system: a speech codec FFmpeg encodes, through PyAV (G.711, G.722, G.726,
AMR-NB, G.723.1). The spec checks the codec, bitrate and frame against the codec table (no PyAV
needed: `simlab schema`/`check` see it); the ``check`` trait asks the installed FFmpeg for the
encoder and decoder, so a build without them is refused before anything is written."""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from simlab.actors.ffmpeg_codecs import CODECS, resolve
from simlab.registry import SystemEntry
from simlab.spec import Strict


class FfmpegSpec(Strict):
    """A speech codec from FFmpeg, by its encoder name: pcm_mulaw, pcm_alaw (G.711, 64 kbit/s),
    g722 (16 kHz, 64 kbit/s), g726/g726le (16/24/32/40 kbit/s), libopencore_amrnb (AMR-NB, 4750..12200),
    g723_1 (6300, 30 ms frames). ``bitrate_bps`` and ``frame_ms`` default to the codec's own
    (20 ms frames); G.711, G.722 and G.726 take 10, 20, 30 or 40 ms."""

    kind: Literal["ffmpeg"]
    codec: str = Field("pcm_mulaw", json_schema_extra={"enum": list(CODECS)})
    bitrate_bps: Optional[int] = None
    frame_ms: Optional[int] = None

    @model_validator(mode="before")
    @classmethod
    def _codec_defaults(cls, data):
        """The codec's own bitrate and frame where the scenario leaves them out, so that a resolved
        scenario (`simlab check`, manifest.json) shows them."""
        codec = data.get("codec", "pcm_mulaw") if isinstance(data, dict) else None
        if isinstance(codec, str) and codec in CODECS:
            info = CODECS[codec]
            data = {**data, "bitrate_bps": data.get("bitrate_bps", info.bitrates[0]),
                    "frame_ms": data.get("frame_ms", info.frame_ms[0])}
        return data

    @model_validator(mode="after")
    def _known_setting(self):
        resolve(self.codec, self.bitrate_bps, self.frame_ms)  # ValueError: one line naming the key
        return self


def check(spec: FfmpegSpec, scenario) -> None:
    """The installed FFmpeg has the codec's encoder and decoder (PyAV imported, nothing built)."""
    from simlab.actors.ffmpeg_av import missing
    from simlab.errors import UserError

    try:
        problem = missing(resolve(spec.codec, spec.bitrate_bps, spec.frame_ms))
    except UserError as exc:  # PyAV itself is missing
        raise ValueError(str(exc)) from None
    if problem:
        raise ValueError(problem)


def build(spec: FfmpegSpec, ctx):
    from simlab.actors.ffmpeg import FfmpegSystem

    return FfmpegSystem(spec.codec, spec.bitrate_bps, spec.frame_ms)


ENTRY = SystemEntry("ffmpeg", FfmpegSpec, build, check=check)
