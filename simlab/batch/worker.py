"""What a worker process does with one run: run its scenario into its own folder (or find the
folder already complete) and hand back the summary row, or the error, never raising: a failing
run is a result to record, not a reason to stop the batch."""
from __future__ import annotations

import csv
import os
import traceback
from pathlib import Path

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def limit_threads(threads: int | None) -> None:
    """Keep N workers on N cores from each starting a thread per core (torch, BLAS)."""
    if not threads:
        return
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def read_summary(folder: Path) -> dict[str, str]:
    """summary.csv's one row, as the strings it holds (so a reused run and a fresh one give the
    same table cells)."""
    with open(folder / "summary.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    if len(rows) != 2 or len(rows[0]) != len(rows[1]):
        raise ValueError(f"{folder / 'summary.csv'}: expected a header and one row")
    return dict(zip(rows[0], rows[1]))


def complete(folder: Path) -> bool:
    """A run folder appears only when whole (`run_scenario` renames it into place)."""
    return (folder / "summary.csv").is_file() and (folder / "manifest.json").is_file()


def execute(scenario: dict, base_dir: str, folder: str, threads: int | None = None) -> dict:
    """Run one resolved scenario into ``folder``. Returns ``{"status": "ok", "summary": {...}}``
    or ``{"status": "error", "error": "Type: message", "traceback": "..."}``."""
    limit_threads(threads)
    out = Path(folder)
    try:
        if not complete(out):  # a Dask retry after a lost worker may find it done
            from simlab import registry
            from simlab.simulation import run_scenario
            from simlab.scenario import parse_scenario

            sc = parse_scenario(scenario, base_dir, source=f"run {out.name}")
            if threads and registry.system(sc.system).uses_torch:
                import torch

                torch.set_num_threads(threads)
            run_scenario(sc, out, force=True)
        return {"status": "ok", "summary": read_summary(out)}
    except BaseException as exc:  # noqa: BLE001 (SystemExit and KeyboardInterrupt from a run are its errors too)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
