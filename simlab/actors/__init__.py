"""Compute actors and the speech systems built from them (no SimPy here). Systems are built
from scenarios through their registry entries (`simlab.build.build_system`)."""
from __future__ import annotations

from simlab.actors.base import STAGES, BuildContext, Decoded, Encoded, Received, System, Timer

__all__ = ["STAGES", "BuildContext", "Decoded", "Encoded", "Received", "System", "Timer"]
