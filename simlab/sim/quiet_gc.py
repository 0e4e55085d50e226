"""The event loop without Python's cyclic garbage collector scanning the simulation's objects.

A run with many flows holds millions of long-lived objects (elements, frame states, packets in
flight); each full collection walks all of them, so the collector's time grows with the square of
the flow count (4,000 five-second flows: a third of the run). The objects built before the loop
are frozen out of the collector's sight and young collections are made rarer; reference counting
still frees everything that is not in a cycle, and both settings are restored afterwards.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def quiet_gc(first_generation: int = 100_000):
    was = gc.get_threshold()
    gc.freeze()  # garbage frozen with the rest is collected after unfreeze
    gc.set_threshold(max(first_generation, was[0]), *was[1:])
    try:
        yield
    finally:
        gc.set_threshold(*was)
        gc.unfreeze()
