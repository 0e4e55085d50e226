"""The transcript a run's WER is scored against, from the scenario's ``transcript`` key or,
when that is absent, from the LibriSpeech transcript file beside the audio.

LibriSpeech keeps ``<speaker>-<chapter>.trans.txt`` next to ``<speaker>-<chapter>-<utt>.flac``,
one line ``<utt-id> <TRANSCRIPT>`` per utterance, so a LibriSpeech scenario needs no
transcript key at all.
"""
from __future__ import annotations

from pathlib import Path

from simlab.errors import UserError


def _read(path: Path) -> str:
    """A transcript file's text; `UserError` when it cannot be read or is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:  # /proc/self/mem, a file the user may not read
        raise UserError(f"transcript: {path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise UserError(f"transcript: {path}: not a transcript (not UTF-8 text)") from None


def librispeech_line(trans_file: Path, utt_id: str) -> str | None:
    """The transcript of ``utt_id`` in a LibriSpeech ``*.trans.txt`` file, or None."""
    for line in _read(trans_file).splitlines():
        key, _, text = line.strip().partition(" ")
        if key == utt_id:
            return text.strip()
    return None


def beside_audio(audio: Path) -> str | None:
    """The LibriSpeech transcript of ``audio`` from the ``*.trans.txt`` in its folder, or None."""
    parts = audio.stem.split("-")
    if len(parts) != 3:
        return None
    trans = audio.with_name(f"{parts[0]}-{parts[1]}.trans.txt")
    return librispeech_line(trans, audio.stem) if trans.is_file() else None


def resolve_transcript(sc, audio: Path | None) -> str | None:
    """The reference text for ``wer``.

    ``transcript:`` may name a file (relative to the scenario; ``package:``/``shared:`` as for
    audio): a LibriSpeech ``*.trans.txt`` gives the audio's line, any other file its whole
    text. A value that names no file and does not end in ``.txt`` is the text itself.
    Without the key, the LibriSpeech transcript beside the audio is used when there is one.
    """
    value = sc.transcript
    if value is None:
        return beside_audio(audio) if audio is not None else None
    path = sc.path(value)
    if path.is_file():
        if path.name.endswith(".trans.txt") and audio is not None:
            text = librispeech_line(path, audio.stem)
            if text is None:
                raise UserError(f"transcript: {path} has no line for utterance {audio.stem}")
            return text
        return _read(path).strip()
    if value.endswith(".txt"):
        raise UserError(f"transcript: {path} not found")
    return value.strip()
