"""The event loop without Python's cyclic garbage collector scanning the simulation's objects.

A run with many flows holds millions of long-lived objects (elements, frame states, packets in
flight); each full collection walks all of them, so the collector's time grows with the square of
the flow count (4,000 five-second flows: a third of the run). The objects built before the loop
are frozen out of the collector's sight and young collections are made rarer; reference counting
still frees everything that is not in a cycle. Both settings are process-wide: runs in threads
(a Dask worker's) share them, and the last run to leave restores them.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_inside = 0
_saved: tuple | None = None


@contextmanager
def quiet_gc(first_generation: int = 100_000):
    global _inside, _saved
    with _lock:
        if _inside == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(first_generation, _saved[0]), *_saved[1:])
        _inside += 1
        gc.freeze()  # garbage frozen with the rest is collected after unfreeze
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
