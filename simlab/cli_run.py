"""How every command line of simlab (``simlab``, ``python -m simlab.train``, ``python -m
simlab.batch``) runs its command: a `UserError` is one line and exit status 2; Ctrl-C and SIGTERM
become an interrupt, so the same cleanup runs for both (no temporary folder, no half-written
output, no worker left), then "simlab: interrupted" and the shell's 128 + signal number."""
from __future__ import annotations

import signal
import sys
import threading
from typing import Callable

from simlab.errors import UserError


class Terminated(KeyboardInterrupt):
    """SIGTERM (``timeout``, ``kill``, a batch scheduler), raised as an interrupt."""


def _terminate(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once, cleanup or not
    raise Terminated()


def run_command(fn: Callable[[], int], error_prefix: str = "simlab: error: ") -> int:
    """``fn()``'s exit status, or 2 after a `UserError`, 130 after Ctrl-C, 143 after SIGTERM."""
    # signal handlers belong to the main thread (a command may also be run from another one)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return fn()
    except UserError as exc:
        print(f"{error_prefix}{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("simlab: interrupted", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
