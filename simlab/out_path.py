"""Checks on a user's output path before anything is written or removed there.

Every command that writes (run, batch, plot, calibrate, train) calls one of these first, so a
bad ``--out`` is a one-line `UserError` (exit status 2) instead of a traceback halfway through,
and an output folder that is replaced (``--force``) can never be one that holds the user's
working folder or the command's own input.
"""
from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from simlab.errors import UserError


def _creatable(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` is a writable folder."""
    parent = path
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
        if parent.is_file():
            raise UserError(f"{path}: cannot create the {what}: {parent} is a file")
    if not parent.is_dir():
        raise UserError(f"{path}: cannot create the {what}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{path}: cannot create the {what}: {parent} is not writable")


def check_out_dir(path: str | Path, replace: bool = False, inputs: tuple[str | Path, ...] = ()) -> Path:
    """``path`` as an output folder: not a file, creatable, and (when the command may ``replace``
    it) not a symbolic link, neither the working folder, one of its ancestors, nor a folder holding
    one of ``inputs``."""
    out = Path(path)
    if str(path).strip() == "":
        raise UserError("output folder: empty path")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: output folder is a file")
    _creatable(out, "output folder")
    if replace:
        if out.is_symlink():  # the finished folder is renamed over ``out``: over the link, not into it
            raise UserError(f"{out}: the output folder is a symbolic link (to {os.readlink(out)}); simlab replaces "
                            f"an output folder as a whole: give the folder itself, or another --out")
        resolved = out.resolve()
        cwd = Path.cwd().resolve()
        if resolved == cwd or resolved in cwd.parents:
            raise UserError(f"{out}: refusing to replace the working folder or a folder above it; choose a new --out")
        for item in inputs:
            held = Path(item).resolve()
            if resolved == held or resolved in held.parents:
                raise UserError(f"{out}: refusing to replace a folder that holds the input {item}")
    return out


def check_out_file(path: str | Path) -> Path:
    """``path`` as an output file: not a folder, its folder creatable."""
    out = Path(path)
    if str(path).strip() == "":
        raise UserError("output file: empty path")
    if out.is_dir():
        raise UserError(f"{out}: output file is a folder")
    _creatable(out.parent if str(out.parent) else Path("."), "output file's folder")
    return out


@contextmanager
def made_dirs(path: str | Path) -> Iterator[list[Path]]:
    """Create the folder ``path`` and its missing parents; if the block raises (a later
    `UserError`, an interrupt), remove again those this call created that are still empty, so a
    failed command leaves no folder behind. Yields the created folders, outermost first.

    An `OSError` while creating one (a read-only or virtual file system: root passes
    ``os.access`` but cannot write ``/proc``) is a `UserError` naming the folder."""
    path = Path(path)
    created = []
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except FileExistsError:
                if not folder.is_dir():
                    raise UserError(f"{path}: cannot create the folder: {folder} is a file") from None
                continue  # made meanwhile by someone else: theirs, not ours to remove
            except OSError as exc:
                raise UserError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from None
            created.append(folder)
        yield created
    except BaseException:
        for folder in reversed(created):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty: something else lives there now
        raise


def partial_path(out: Path) -> Path:
    """The hidden sibling a command writes ``out`` into before renaming it into place."""
    return out.parent / f".{out.name}.partial-{os.getpid()}"


#: `partial_path`'s names: ``.<output folder's name>.partial-<process id>``.
PARTIAL_NAME = re.compile(r"^\.(.+)\.partial-(\d+)$")


def stale_partials(folder: Path, recursive: bool = False) -> list[Path]:
    """The partial folders (`partial_path`) in ``folder`` (and its subfolders, ``recursive``;
    symbolic links not followed) whose process no longer runs, sorted. A live one is a run in
    progress: never listed."""
    found = []
    for top, dirs, _ in os.walk(folder):
        for name in list(dirs):
            m = PARTIAL_NAME.match(name)
            if m is None:
                continue
            dirs.remove(name)  # never into a partial folder: what it holds is the run's
            path = Path(top) / name
            if not path.is_symlink() and not _alive(int(m.group(2))):
                found.append(path)
        if not recursive:
            break
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OverflowError:
        return False
    return True


def remove_stale_partials(out: Path) -> None:
    """Remove ``out``'s partial siblings (`partial_path`) left by processes that no longer run
    (killed with SIGKILL, or a machine that went down): their output can never be completed.
    Process ids are this machine's: two machines writing the same output folder on a shared file
    system at the same time would be a mistake of its own, not guarded against here."""
    prefix = f".{out.name}.partial-"
    if not out.parent.is_dir():
        return
    for sibling in out.parent.iterdir():
        pid = sibling.name[len(prefix):]
        if sibling.name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(sibling, ignore_errors=True)
