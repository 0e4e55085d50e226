"""simlab from Python: load a scenario, run it, get the tables back; run a sweep.

    import simlab
    sc = simlab.load_scenario("scenarios/eq24.yaml", {"network.forward.loss.p": 0.2})
    res = simlab.run(sc)                             # nothing written: tables in memory
    res.summary["total_bps"], res.packets.lost.mean()
    table = simlab.run_batch("experiments/eq24_overhead.yaml", "results/eq24", jobs=2)

The command line is a thin layer over these (`simlab.cli`).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from simlab.scenario import Scenario, load_scenario


class Result:
    """One run: ``summary`` (summary.csv's row), ``packets`` and ``frames`` (packets.csv and
    frames.csv as pandas DataFrames, typed as `simlab.records` declares; read from the run's
    folder when first asked for), ``out`` (the folder written, or None), ``warnings``."""

    def __init__(self, summary: dict[str, Any], packets=None, frames=None, out: Path | None = None,
                 warnings: list[str] | None = None):
        self.summary, self.out, self.warnings = summary, out, list(warnings or [])
        self._tables = {"packets": packets, "frames": frames}

    def _table(self, name: str):
        if self._tables[name] is None:
            from simlab.records import read_table

            self._tables[name] = read_table(self.out / f"{name}.csv")
        return self._tables[name]

    @property
    def packets(self):
        return self._table("packets")

    @property
    def frames(self):
        return self._table("frames")

    def __repr__(self) -> str:
        return f"Result(out={self.out}, summary={{{len(self.summary)} columns}}, warnings={self.warnings})"


def _scenario(scenario) -> Scenario:
    return scenario if isinstance(scenario, Scenario) else load_scenario(scenario)


def run(scenario: Scenario | str | Path | dict, out: str | Path | None = None, force: bool = False,
        engine: str = "auto") -> Result:
    """Run a scenario (a `Scenario`, or what `load_scenario` takes). With ``out``, the run's
    folder is written atomically as ``simlab run --out`` writes it (``force`` replaces one that
    exists); without, nothing is kept on disk (a run that scores quality works in a temporary
    folder, removed afterwards) and the tables come back in memory. ``engine``: auto (the block
    engine where the scenario allows it, `simlab.block_run`; the same outputs), event or block."""
    from simlab.records import read_table
    from simlab.simulation import run_scenario, simulate
    from simlab.scenario_inputs import check_inputs

    sc = _scenario(scenario)
    if out is None and not sc.metrics and not sc.outputs.pcap:
        check_inputs(sc)
        result = simulate(sc, None, keep=True, engine=engine)
        packets, frames = result["tables"]
        return Result(result["summary"], packets, frames, None, list(result["facts"]["warnings"]))
    tmp = None
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="simlab-run-"))
        folder = tmp / "run"
    else:
        folder = Path(out)
    try:
        summary = run_scenario(sc, folder, force=force, engine=engine)
        import json

        warnings = json.loads((folder / "manifest.json").read_text()).get("warnings", [])
        if tmp is None:
            # Absolute, as written: the tables stay readable after a chdir, and pandas, which
            # expands a leading "~" that the run did not, reads them from where they are.
            return Result(summary, out=folder.absolute(), warnings=warnings)
        return Result(summary, read_table(folder / "packets.csv"), read_table(folder / "frames.csv"), None,
                      warnings)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_batch(experiment: str | Path, out: str | Path, jobs: int = 1, dask: str | None = None,
              only: dict[str, Any] | None = None, progress: bool = False, retry_failed: bool = False,
              keep_other_runs: bool = False):
    """Run an experiment file's sweep into ``out`` (resumable, as ``simlab batch``) and return
    its runs table (runs.csv) as a DataFrame. ``dask``: a scheduler address or ``"local"``;
    ``only``: coordinate -> value, the runs to do now; ``retry_failed``: run again the runs whose
    row says error; ``keep_other_runs``: accept a folder that holds other runs (``--keep-other-runs``).

    Runs execute in spawned worker processes, which import the calling script: a script must
    call this under ``if __name__ == "__main__":``."""
    import multiprocessing

    import pandas as pd

    from simlab.batch.runner import run_batch as _run_batch

    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A worker importing a script that calls run_batch at its top level: without this, the
        # worker would start a batch of its own on the same folder and die on its lock.
        raise RuntimeError("simlab.run_batch was called while a worker process was importing the script: "
                           "call it under `if __name__ == \"__main__\":`")
    result = _run_batch(experiment, out, jobs=jobs, dask=dask, progress=progress, only=only,
                        retry_failed=retry_failed, keep_other_runs=keep_other_runs)
    # A run's key is 16 hex digits: left to guess, pandas reads "1234567890123456" as an integer
    # and "00012e4567890123" as a float (inf). ``error`` is "" for a run that succeeded.
    table = pd.read_csv(result.out / "runs.csv", dtype={"key": str, "status": str, "error": str})
    table["error"] = table["error"].fillna("")
    return table
