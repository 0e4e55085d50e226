"""The audio coordinate of an experiment: folders, globs and files -> a sorted list of files,
each named the way a scenario names it (``shared:dev/...``, ``package:clip.wav`` or a path
relative to the experiment), and the transcript LibriSpeech keeps beside it."""
from __future__ import annotations

import glob
import os
from functools import lru_cache
from pathlib import Path

from simlab.errors import UserError

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg")
_PREFIXES = ("shared:", "package:")


class AudioMissing(UserError):
    """The experiment's audio is not on this machine (e.g. the shared LibriSpeech folder)."""


def _resolve(entry: str, base_dir: Path) -> Path:
    from simlab.scenario import Scenario

    return Scenario(base_dir=str(base_dir)).path(entry)  # the scenario's own path rules


def _name(path: Path, entry: str, base_dir: Path) -> str:
    """``path`` named like ``entry``: keep its prefix, so names (and so seeds and run keys) do not
    depend on where the project lives."""
    for prefix in _PREFIXES:
        if entry.startswith(prefix):
            prefix_root = _resolve(prefix, base_dir)
            return prefix + path.relative_to(prefix_root).as_posix()
    return Path(os.path.relpath(path, base_dir)).as_posix()


#: Folder entries an experiment's audio may make simlab look at: a speech corpus holds thousands,
#: ``/`` millions (and walking it took minutes before it failed on /proc).
MAX_SCANNED = 1_000_000


def _bounded(items, entry: str):
    for n, item in enumerate(items):
        if n >= MAX_SCANNED:
            raise UserError(f"audio: {entry} names more than {MAX_SCANNED} files: name the folder of the speech files")
        yield item


def _audio_under(folder: Path, entry: str) -> list[Path]:
    """The audio files under ``folder``, as ``rglob`` finds them (folders that are symbolic links
    are not entered), skipping folders that cannot be read; `UserError` past `MAX_SCANNED` entries."""
    found, seen = [], 0
    for top, dirs, names in os.walk(folder):
        seen += len(dirs) + len(names)
        if seen > MAX_SCANNED:
            raise UserError(f"audio: {entry} holds more than {MAX_SCANNED} files and folders: name the folder of "
                            f"the speech files")
        for name in names:
            f = Path(top) / name
            if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file():
                found.append(f)
    return found


def expand_audio(entries: str | list[str], base_dir: str | Path, limit: int | None = None) -> list[str]:
    """Every audio file the entries name, sorted, de-duplicated, at most ``limit``."""
    base_dir = Path(base_dir)
    entries = [entries] if isinstance(entries, str) else list(entries)
    names: list[str] = []
    for entry in entries:
        path = _resolve(entry, base_dir)
        if any(ch in entry for ch in "*?["):
            files = sorted(Path(p) for p in _bounded(glob.iglob(str(path), recursive=True), entry))
            files = [f for f in files if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES]
        elif path.is_dir():
            files = sorted(_audio_under(path, entry))
        elif path.is_file():
            files = [path]
        else:
            files = []
        if not files:
            hint = (" (the shared speech folder is absent: see ../shared/speech/README.md)"
                    if entry.startswith("shared:") else "")
            raise AudioMissing(f"audio: {entry} matches no audio file ({path}){hint}")
        names.extend(_name(f, entry, base_dir) for f in files)
    names = sorted(dict.fromkeys(names))
    return names[:limit] if limit is not None else names


@lru_cache(maxsize=256)
def _trans_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        utt, _, text = line.strip().partition(" ")
        if utt and text:
            out[utt] = text
    return out


def librispeech_transcript(audio: Path) -> str | None:
    """The line for ``<spk>-<chapter>-<utt>.flac`` in ``<spk>-<chapter>.trans.txt`` beside it, if any."""
    stem = audio.name.split(".")[0]
    parts = stem.split("-")
    if len(parts) != 3:
        return None
    trans = audio.parent / f"{parts[0]}-{parts[1]}.trans.txt"
    if not trans.is_file():
        return None
    return _trans_file(trans).get(stem)


def scenario_audio(name: str, experiment_dir: Path, scenario_dir: Path) -> tuple[str, Path]:
    """The audio key a scenario in ``scenario_dir`` uses for a coordinate name, and the file."""
    if name.startswith(_PREFIXES):
        return name, _resolve(name, experiment_dir)
    path = (experiment_dir / name).resolve()
    return Path(os.path.relpath(path, scenario_dir)).as_posix(), path
