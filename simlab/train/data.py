"""Training and development speech: LibriSpeech FLAC under ``../shared/speech``, read at 24 kHz.

The corpus is not part of a clone of the project; every entry point raises a `UserError`
that says so when it is absent, and tests skip on `speech_available() is False`.
LibriSpeech (Panayotov et al., ICASSP 2015, CC BY 4.0): anything trained on it credits it.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from simlab.audio import SAMPLE_RATE, read_audio, shared_speech
from simlab.errors import UserError

ABSENT = ("real speech not found at ../shared/speech/{sub} (LibriSpeech, present only beside "
          "the project's development checkout); training and evaluation need it")
#: ``data`` given as a path of its own (absolute, or ``~``): name that path, not shared/speech.
ABSENT_PATH = "data: {sub}: no speech folder there (it needs audio files: {suffixes})"


#: Audio files a speech folder may hold: LibriSpeech's FLAC, or WAV / Ogg Opus copies of it
#: (e.g. the compact copy `experiments/gpu/pack_speech.py` makes to carry to a GPU machine).
AUDIO_SUFFIXES = (".flac", ".wav", ".opus", ".ogg")


def _audio_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())


def speech_dir(sub: str) -> Path:
    """``../shared/speech/<sub>`` (or ``sub`` itself when it is an absolute folder), or
    `UserError` when it is absent or holds no audio."""
    path = shared_speech(sub)
    if path is None or not _audio_files(path):
        if Path(sub).expanduser().is_absolute():
            raise UserError(ABSENT_PATH.format(sub=sub, suffixes=", ".join(AUDIO_SUFFIXES)))
        raise UserError(ABSENT.format(sub=sub))
    return path


def speech_available(sub: str = "train") -> bool:
    """True when the shared speech folder ``sub`` exists and holds audio files."""
    path = shared_speech(sub)
    return path is not None and bool(_audio_files(path))


def list_files(sub: str) -> list[Path]:
    """Every audio file under ``sub``, sorted by path (a stable order for seeded subsets)."""
    return _audio_files(speech_dir(sub))


def transcripts(sub: str) -> dict[str, str]:
    """Utterance id -> transcript (capitals, as LibriSpeech has them) for ``sub``."""
    out: dict[str, str] = {}
    for path in sorted(speech_dir(sub).rglob("*.trans.txt")):
        for line in path.read_text().splitlines():
            utt, _, text = line.strip().partition(" ")
            if utt:
                out[utt] = text
    return out


def load_corpus(sub: str, max_minutes: float, rng: np.random.Generator,
                files: list[Path] | None = None) -> list[np.ndarray]:
    """Utterances of ``sub`` at 24 kHz (float32), a seeded random subset of at most
    ``max_minutes`` of audio (the whole folder when it is shorter)."""
    if not max_minutes > 0:
        raise UserError(f"max_minutes={max_minutes!r}: must be > 0")
    files = list_files(sub) if files is None else files
    budget = int(max_minutes * 60 * SAMPLE_RATE)
    order = [files[i] for i in rng.permutation(len(files))]
    out, total = [], 0
    # Decoding and resampling release the GIL: read in order-preserving parallel chunks
    # (the same files as one by one; a GPU machine's 16 cores read 2.5 h in seconds).
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        for at in range(0, len(order), 4 * workers):
            for x in pool.map(lambda f: read_audio(f, SAMPLE_RATE), order[at:at + 4 * workers]):
                out.append(x)
                total += len(x)
                if total >= budget:
                    return out
    return out


def random_crops(corpus: list[np.ndarray], batch: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """[batch, samples] float32: crops at random utterances and offsets (utterances shorter than
    ``samples`` are zero-padded at the end)."""
    out = np.zeros((batch, samples), dtype=np.float32)
    lengths = np.array([len(x) for x in corpus])
    picks = rng.choice(len(corpus), size=batch, p=lengths / lengths.sum())  # by duration
    for b, i in enumerate(picks):
        x = corpus[i]
        start = int(rng.integers(0, max(1, len(x) - samples + 1)))
        piece = x[start:start + samples]
        out[b, :len(piece)] = piece
    return out
