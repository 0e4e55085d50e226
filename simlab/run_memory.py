"""How much memory a run needs, estimated before it starts, and whether this machine has it.

`flows: 100000` passes the scenario's checks, but each call holds its own sender, receiver,
monitor, links and, for a model system, its own streaming state: such a run used to die with a
traceback after 25 s. `check_memory` (called by `simlab check` and before
every run, `simlab.scenario_inputs`) refuses it in one line with the estimate.

The constants are measured (peak RSS of `simlab.simulation.simulate` beyond the process before
it, on this project's 2-core CPU, Python 3.11, numpy 2): a synthetic call takes 34 kB (1,000 flows
of 2 s: 33 MB; 3,000: 100 MB; 20,000: 671 MB, so 100,000 flows fit in 3.4 GB), plus the frames each
monitor buffers before it folds them into its histograms, about 115 B a frame up to 4,096 frames
(100 flows of 600 s: 50 MB, 0.5 MB a call). It was 0.70 MB a call and 400 B a frame before the
histograms kept only the bins they use and the buffers became arrays. What a system adds comes from its registry entry's
``memory`` trait (AAC 1.3 MB a call and 100 MB once; LargeSC's small profile 21 MB a call, its
streaming state, and 0.32 GB once for torch, moshi and the models its calls share).
"""
from __future__ import annotations

import math
from pathlib import Path

from simlab import registry
from simlab.errors import UserError

#: What one call takes whatever its length (measured; see the module's docstring).
FLOW_BYTES = 34e3
#: What a call's monitor holds per frame until it folds a block of them into its statistics.
FRAME_BYTES = 115
#: The block `simlab.sim.monitor.Monitor` folds at (frames held at most per call).
FRAMES_HELD = 4096
#: The most frames a second any of simlab's systems makes (Opus at 20 ms): an upper bound.
MAX_FRAME_RATE = 50


def estimate_bytes(sc) -> float:
    """The memory a run of ``sc`` needs beyond what the process holds before it (an estimate)."""
    once, each = (0.0, 0.0)
    entry = registry.system(sc.system)
    if entry.memory is not None:
        once, each = entry.memory(sc.system)
    # duration_s None: the audio's length, unknown here without reading it; assume the most held
    frames = FRAMES_HELD if sc.duration_s is None else min(FRAMES_HELD, math.ceil(sc.duration_s * MAX_FRAME_RATE))
    return once + sc.flows * (FLOW_BYTES + FRAME_BYTES * frames + each)


def available_bytes() -> tuple[float, str] | None:
    """The memory a new allocation can get now and where that figure comes from: MemAvailable of
    ``/proc/meminfo``, or a control group's limit less its usage when that is smaller; None where
    neither can be read (not Linux): the check is skipped there."""
    found: list[tuple[float, str]] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append((float(line.split()[1]) * 1024, "MemAvailable"))
    except (OSError, ValueError, IndexError):
        pass
    try:  # cgroup v2: a container's limit, which MemAvailable does not see
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = float(Path("/sys/fs/cgroup/memory.current").read_text())
            found.append((float(limit) - used, "the control group's memory.max less memory.current"))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def _gb(x: float) -> str:
    return f"{x / 1e9:.1f} GB" if x >= 1e9 else f"{x / 1e6:.3g} MB" if x >= 1e6 else f"{x / 1e3:.3g} kB"


def check_memory(sc) -> None:
    """`UserError` (key ``flows``) when the run's estimate exceeds the memory available now."""
    have = available_bytes()
    if have is None:
        return
    need = estimate_bytes(sc)
    if need > have[0]:
        raise UserError(f"flows: {sc.flows} call{'s' if sc.flows != 1 else ''} of this scenario need about {_gb(need)} "
                        f"of memory ({_gb(need / sc.flows)} each), more than the {_gb(max(have[0], 0))} available "
                        f"({have[1]}); run fewer flows, or spread them over several runs")
