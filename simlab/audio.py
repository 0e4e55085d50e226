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


#: Subtypes whose samples are floats: only these can hold NaN, infinities or values beyond full
#: scale (integer PCM cannot), so only these are read through when a file is checked.
FLOAT_SUBTYPES = ("FLOAT", "DOUBLE")


def _scan(path: Path) -> tuple[int, int, int, int, float, int]:
    """A float file's (samples, non-finite samples, index of the first one, samples beyond full
    scale, peak |x| of the finite ones, sample rate), read in blocks (memory does not grow with
    the file)."""
    import soundfile as sf

    n = bad = beyond = 0
    first, peak = -1, 0.0
    with sf.SoundFile(str(path)) as f:
        rate, channels = f.samplerate, f.channels
        for block in f.blocks(blocksize=1 << 16, dtype="float64", always_2d=True):
            finite = np.isfinite(block)
            if not finite.all():
                if first < 0:
                    first = n // channels + int(np.argmin(finite.all(axis=1)))
                bad += int(block.size - finite.sum())
            mag = np.abs(np.where(finite, block, 0.0))
            beyond += int((mag > 1.0).sum())
            peak = max(peak, float(mag.max(initial=0.0)))
            n += block.size
    return n, bad, first, beyond, peak, rate


def check_audio(path: str | Path) -> None:
    """`UserError` unless ``path`` is a non-empty audio file libsndfile reads whose samples are all
    finite. Reads the header only, and the samples of a float file (`FLOAT_SUBTYPES`), so a
    scenario's audio is checked before a run without decoding the usual PCM files."""
    import soundfile as sf

    from simlab.file_kind import not_a_file

    path = Path(path)
    what = not_a_file(path)
    if what is not None:
        raise UserError(f"{path}: audio file not found" if what == "does not exist" else f"{path}: {what}")
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile's message names the format problem
        raise UserError(f"{path}: cannot read audio ({exc})") from None
    if info.frames == 0:
        raise UserError(f"{path}: audio file is empty")
    if info.subtype in FLOAT_SUBTYPES:
        try:
            n, bad, first, _, _, rate = _scan(path)
        except Exception as exc:  # a header that reads but data that does not
            raise UserError(f"{path}: cannot read audio ({exc})") from None
        if bad:
            raise UserError(f"{path}: {bad} of its {n} samples are NaN or infinite (the first at "
                            f"{first / rate:.3f} s)")


def clipping_warning(path: str | Path) -> str | None:
    """For a float file with samples beyond full scale (|x| > 1), which `read_audio` clips: a
    warning saying how many and how far; None for any other file."""
    import soundfile as sf

    path = Path(path)
    if sf.info(str(path)).subtype not in FLOAT_SUBTYPES:
        return None
    n, _, _, beyond, peak, _ = _scan(path)
    if not beyond:
        return None
    return (f"audio {path}: {beyond / n:.1%} of its samples are beyond full scale and clipped to [-1, 1] "
            f"(peak {peak:.3g}, {20 * np.log10(peak):+.1f} dBFS)")


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Mono float32 at ``sample_rate``; any format libsndfile reads (wav, flac). A float file's
    samples beyond full scale are clipped to [-1, 1] first, as a DAC or a 16-bit file would
    (`clipping_warning` says how many); integer PCM never exceeds it."""
    import soundfile as sf

    check_audio(path)
    try:
        x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # a header that reads but data that does not
        raise UserError(f"{path}: cannot read audio ({exc})") from None
    return resample(np.clip(x, -1.0, 1.0).mean(axis=1), sr, sample_rate)


def write_audio(path: str | Path, x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM wav, clipped to [-1, 1]."""
    import soundfile as sf

    sf.write(str(path), np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0), sample_rate, subtype="PCM_16")


def shared_speech(sub: str = "") -> Path | None:
    """``../shared/speech/<sub>`` (``sub`` itself when absolute or under ``~``) when it exists,
    else None (a fresh clone has no shared/)."""
    p = SHARED_SPEECH / Path(sub).expanduser()
    return p if p.exists() else None
