"""What a path is, in words, when simlab needed a regular file there and found something else.

``Path.is_file()`` is False for a missing file, a folder, ``/dev/zero``, a symbolic link loop and
a name with a NUL in it alike; an error that says "not found" for all of them sends the user
looking in the wrong place. `not_a_file` says which it is.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_SPECIAL = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
            (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"))


def not_a_file(path: str | Path) -> str | None:
    """None when ``path`` is a regular file (symbolic links followed), else what it is instead:
    ``does not exist``, ``is a directory``, ``is a symbolic link loop``, ``is a broken symbolic
    link (to X)``, ``is not a regular file (a character device)``, ..."""
    try:
        mode = os.stat(path).st_mode
    except ValueError:  # a NUL character, or a name the file system cannot encode
        return "is not a valid path name"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if os.path.islink(path):
            return f"is a broken symbolic link (to {os.readlink(path)})"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            return "does not exist"
        return f"cannot be reached ({exc.strerror or exc})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    kind = next((name for test, name in _SPECIAL if test(mode)), "something else")
    return f"is not a regular file ({kind})"
