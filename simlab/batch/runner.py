"""`simlab batch`: expand an experiment, run what is not done yet, record every run once.

Layout of the output folder::

    DIR/runs.csv            one row per run (coordinates, key, seed, status, error, summary)
    DIR/runs/<key>/         each run's own outputs (packets.csv, frames.csv, summary.csv, ...)
    DIR/errors/<key>.txt    the traceback of a failed run
    DIR/experiment.json     the experiment as it was expanded

Resuming is the normal case: a run is skipped when runs.csv has its key; a run whose folder is
complete but whose row is missing (killed between the two) gets its row from the folder's
summary.csv instead of running again. One batch at a time may write a folder (a lock file).
A folder holds one experiment: a table with runs the experiment does not have (it changed, or
it is another one) is refused unless pooling is asked for (``keep_other_runs``).
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simlab.batch.executors import Executor, make_executor
from simlab.batch.expand import Run, canon, canonical_json, coordinate_columns, expand
from simlab.batch.experiment import Experiment, load_experiment
from simlab.batch.table import RunTable, write_atomic
from simlab.batch.worker import complete, read_summary
from simlab.errors import UserError
from simlab.out_path import check_out_dir

META_COLUMNS = ["key", "seed", "status", "error"]


@dataclass
class BatchResult:
    """What a batch did: ``total`` runs, of which ``before`` were in the table already, ``reused``
    got their row from a complete folder, ``ran`` ran now and ``failed`` of all rows are errors."""

    out: Path
    total: int
    before: int
    reused: int
    ran: int
    failed: int

    def line(self) -> str:
        return (f"{self.total} runs: {self.before} done before, {self.reused} recovered from their folders, "
                f"{self.ran} run now; {self.failed} failed; table {self.out / 'runs.csv'}")


class _Lock:
    """An exclusive lock on DIR/.batch.lock, released by the kernel if the process dies."""

    def __init__(self, folder: Path):
        self.path = folder / ".batch.lock"
        self.fd = -1

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise UserError(f"{self.path.parent}: another batch is writing this folder") from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def row_for(run: Run, status: str, error: str = "", summary: dict[str, Any] | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {**run.coords, "key": run.key, "seed": run.seed, "status": status, "error": error}
    for col, value in (summary or {}).items():
        if col not in row:
            row[col] = value
        elif not _same(row[col], value):
            row[f"summary_{col}"] = value  # a summary column named like a coordinate: keep both
    return row


def _same(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _clean_partials(runs_dir: Path) -> None:
    """Temporary folders of runs that a killed batch left half-written."""
    for tmp in runs_dir.glob(".*.partial-*"):
        shutil.rmtree(tmp, ignore_errors=True)


def _value_text(v: Any) -> str:
    return v if isinstance(v, str) else canonical_json(canon(v))


def select(runs: list[Run], only: dict[str, Any] | None) -> list[Run]:
    """The runs whose coordinates have the given values (``{"label": "opus", "repeat": 0}``); a
    `UserError` when a name is no coordinate or nothing matches, since a typo would otherwise
    "succeed" with no runs."""
    if not only:
        return runs
    known = set().union(*(r.coords for r in runs)) if runs else set()
    for name in only:
        if name not in known:
            raise UserError(f"--only {name}: not a coordinate (coordinates: {', '.join(sorted(known))})")
    want = {k: canonical_json(canon(v)) for k, v in only.items()}
    for name, value in want.items():
        values = dict.fromkeys(canonical_json(canon(r.coords[name])) for r in runs if name in r.coords)
        if value not in values:
            shown = ", ".join(_value_text(json.loads(v)) for v in values)
            raise UserError(f"--only {name}={_value_text(only[name])}: no run has this value ({name}: {shown})")
    chosen = [r for r in runs if all(k in r.coords and canonical_json(canon(r.coords[k])) == v
                                     for k, v in want.items())]
    if not chosen:
        given = " ".join(f"--only {k}={_value_text(v)}" for k, v in only.items())
        raise UserError(f"{given}: no run has all these values together")
    return chosen


def _check_other_runs(table: RunTable, runs: list[Run], keep_other_runs: bool) -> None:
    """Refuse a folder whose table holds runs this experiment does not have (another experiment's,
    or this one's before a change to its base, seed or name): pooled rows would be averaged
    together by `simlab plot`. Runs added to the experiment (a new grid value) are no reason:
    the old runs are still members."""
    other = len(set(table.peek()) - {r.key for r in runs})
    if not other:
        return
    where = table.path
    if not keep_other_runs:
        raise UserError(f"{where} holds {other} runs this experiment does not have (another experiment, or this "
                        f"one before a change); use a new --out, or --keep-other-runs to pool them on purpose")
    print(f"simlab batch: note: {where} keeps {other} runs this experiment does not have (--keep-other-runs)",
          file=sys.stderr)


def _make_dirs(out: Path) -> Path:
    """OUT and OUT/runs; an OS refusal (permissions, a full disk) as one line."""
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{out}: cannot create the output folder ({exc.strerror or exc})") from None
    return out / "runs"


def run_batch(experiment: Experiment | str | Path, out: str | Path, jobs: int = 1, dask: str | None = None,
              progress: bool = True, retry_failed: bool = False, only: dict[str, Any] | None = None,
              keep_other_runs: bool = False) -> BatchResult:
    """Run every run of ``experiment`` (those matching ``only``) not yet in ``out``/runs.csv (see the
    module docstring). Everything that can refuse (the experiment, ``only``, ``out``, a table of
    other runs, ``jobs``, the Dask scheduler) does so before anything is created or written."""
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    every = expand(exp)
    runs = select(every, only)
    out = check_out_dir(out)
    table = RunTable(out / "runs.csv", coordinate_columns(exp) + META_COLUMNS)
    executor = make_executor(jobs, dask)
    try:
        _check_other_runs(table, every, keep_other_runs)
        runs_dir = _make_dirs(out)
        with _Lock(out):
            write_atomic(out / "experiment.json", (json.dumps(
                {"experiment": exp.model_dump(mode="json"), "runs": len(runs)}, indent=2) + "\n").encode())
            rows = table.load()
            if retry_failed:
                table.drop(k for k, r in rows.items() if r.get("status") != "ok")
            _clean_partials(runs_dir)
            before = sum(1 for r in runs if r.key in table.rows)
            todo, reused = [], 0
            for run in runs:
                if run.key in table.rows:
                    continue
                if complete(runs_dir / run.key):  # finished, but killed before its row was written
                    table.append(row_for(run, "ok", summary=read_summary(runs_dir / run.key)))
                    reused += 1
                else:
                    todo.append(run)
            ran = _execute(executor, todo, table, out, runs_dir, progress, already=len(runs) - len(todo))
            failed = sum(1 for r in runs if table.rows.get(r.key, {}).get("status") == "error")
    except BaseException:
        executor.abort()  # interrupted (SIGINT, SIGTERM) or failed: no worker may outlive the batch
        raise
    executor.close()
    return BatchResult(out, len(runs), before, reused, ran, failed)


def _record(run: Run, result: dict, table: RunTable, out: Path) -> bool:
    """Append ``result``'s row; a failure's traceback goes to errors/<key>.txt, and a success
    removes the one an earlier failure of the run left there (--retry-failed). True if ok."""
    error_file = out / "errors" / f"{run.key}.txt"
    if result["status"] == "ok":
        table.append(row_for(run, "ok", summary=result["summary"]))
        error_file.unlink(missing_ok=True)
        return True
    error_file.parent.mkdir(exist_ok=True)
    error_file.write_text(result.get("traceback") or result["error"])
    table.append(row_for(run, "error", error=result["error"]))
    return False


def _execute(executor: Executor, todo: list[Run], table: RunTable, out: Path, runs_dir: Path, progress: bool,
             already: int) -> int:
    from tqdm import tqdm

    if not todo:
        return 0
    bar = tqdm(total=already + len(todo), initial=already, unit="run", disable=not progress, file=sys.stderr,
               dynamic_ncols=True, smoothing=0.1)
    failed = 0
    try:
        for run, result in executor.results(todo, lambda r: str(runs_dir / r.key)):
            failed += not _record(run, result, table, out)
            bar.update(1)
            if failed:
                bar.set_postfix(failed=failed)
    finally:
        bar.close()
    return len(todo)
