"""Reading, resampling and writing speech files; the clip the package ships."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from simlab.errors import UserError

SAMPLE_RATE = 24_000
#: A clip synthesised by the project with espeak-ng (no third-party recording), 24 kHz mono.
SHIPPED_CLIP = Path(__file__).with_name("data") / "clip.wav"
#: Real speech beside the checkout (LibriSpeech), present for developers and CI only.
SHARED_SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "speech"


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Polyphase resampling (scipy), float32 out."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    ratio = Fraction(sr_out, sr_in)
    return resample_poly(x, ratio.numerator, ratio.denominator).astype(np.float32)


def check_audio(path: str | Path) -> None:
    """`UserError` unless ``path`` is a non-empty audio file libsndfile reads; reads the header
    only, so a scenario's audio is checked before a run without decoding it."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: audio file not found")
    try:
        frames = sf.info(str(path)).frames
    except Exception as exc:  # libsndfile's message names the format problem
        raise UserError(f"{path}: cannot read audio ({exc})") from None
    if frames == 0:
        raise UserError(f"{path}: audio file is empty")


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 in [-1, 1] at ``sample_rate``; any format libsndfile reads (wav, flac)."""
    import soundfile as sf

    check_audio(path)
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # a header that reads but data that does not
        raise UserError(f"{path}: cannot read audio ({exc})") from None
    return resample(x.mean(axis=1), sr, sample_rate)


def write_audio(path: str | Path, x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM wav, clipped to [-1, 1]."""
    import soundfile as sf

    sf.write(str(path), np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")


def shared_speech(sub: str = "") -> Path | None:
    """``../shared/speech/<sub>`` (``sub`` itself when absolute or under ``~``) when it exists,
    else None (a fresh clone has no shared/)."""
    p = SHARED_SPEECH / Path(sub).expanduser()
    return p if p.exists() else None
