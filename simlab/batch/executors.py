"""Where runs execute: a local process pool, or a Dask ``distributed`` cluster (a scheduler at an
address, or a LocalCluster on loopback). Both yield ``(run, result)`` in completion order; the
parent alone writes the table."""
from __future__ import annotations

import logging
import os
import sys
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator, Protocol

from simlab.batch.expand import Run
from simlab.batch.worker import execute, limit_threads
from simlab.errors import UserError

Result = dict
FolderOf = Callable[[Run], str]
DIED = "WorkerDied: the worker process died while running it (crashed, killed or out of memory)"


def _error(exc: BaseException) -> Result:
    return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": ""}


class Executor(Protocol):
    def results(self, runs: list[Run], folder_of: FolderOf) -> Iterator[tuple[Run, Result]]:
        ...

    def close(self) -> None:
        """Wait for the workers to finish and release them."""
        ...

    def abort(self) -> None:
        """Stop now (the batch was interrupted): runs in flight are lost; they run again on resume."""
        ...


def _exit_with_parent(parent: int) -> None:
    """Make this worker die with the batch that started it (even a SIGKILLed one), instead of
    running on, re-parented to init, into the folder of a batch resumed later. Linux: the kernel
    sends SIGKILL when the parent goes (PR_SET_PDEATHSIG); elsewhere a thread polls the parent."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ok = False
    if sys.platform.startswith("linux"):
        try:
            ok = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    if not ok:
        import threading
        import time

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="simlab-parent-watch", daemon=True).start()


def _init_worker(parent: int, threads: int) -> None:
    """A pool worker: dies with its parent, leaves Ctrl-C and SIGTERM sent to the whole process
    group to the parent (which kills the pool: no KeyboardInterrupt tracebacks from idle workers,
    no runs recorded as "worker died" because the workers went first), and uses only its share
    of the cores."""
    import signal

    _exit_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_threads(threads)


class LocalExecutor:
    """``jobs`` worker processes (spawned: no inherited threads or CUDA state), each limited to
    its share of the cores. At most ``jobs`` runs are in flight, so a worker that dies takes only
    its own run with it: the pool is rebuilt and the batch goes on."""

    def __init__(self, jobs: int = 1, threads: int | None = None):
        if jobs < 1:
            raise UserError(f"-j: {jobs} is not >= 1")
        self.jobs = jobs
        self.threads = threads or max(1, (os.cpu_count() or 1) // jobs)
        self._pool: ProcessPoolExecutor | None = None

    def _start(self) -> ProcessPoolExecutor:
        import multiprocessing

        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker, initargs=(os.getpid(), self.threads))
        return self._pool

    def results(self, runs: list[Run], folder_of: FolderOf) -> Iterator[tuple[Run, Result]]:
        todo = deque(runs)
        inflight: dict = {}
        pool = self._pool or self._start()
        while todo or inflight:
            while todo and len(inflight) < self.jobs:
                run = todo.popleft()
                try:
                    fut = pool.submit(execute, run.scenario, run.base_dir, folder_of(run), self.threads)
                except BrokenProcessPool:
                    todo.appendleft(run)
                    pool = self._start()
                    continue
                inflight[fut] = run
            done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                run = inflight.pop(fut)
                try:
                    yield run, fut.result()
                except BrokenProcessPool:
                    broken = True
                    yield run, {"status": "error", "error": DIED, "traceback": ""}
                except Exception as exc:  # noqa: BLE001 (e.g. a result that cannot be unpickled)
                    yield run, _error(exc)
            if broken:
                pool = self._start()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def abort(self) -> None:
        """Kill the workers rather than wait for their runs (which may take minutes): a run's folder
        appears only when complete, so a killed run leaves a partial folder that resume removes."""
        if self._pool is None:
            return
        # ProcessPoolExecutor has no public way to stop running work (terminate_workers is 3.14+).
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        for proc in processes:
            proc.kill()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = None


class DaskExecutor:
    """Runs as Dask tasks. ``address`` is a scheduler (``tcp://host:8786``, started with
    ``dask scheduler``; workers with ``dask worker ADDRESS``, ``--resources GPU=1`` on GPU
    machines) or ``local``: a LocalCluster of ``jobs`` single-threaded worker processes
    listening on loopback only. Runs that need a GPU ask for the ``GPU`` resource on a real
    cluster. Workers write run folders under the output folder: on a cluster it must be a
    shared file system (the table itself is written by this process from the results)."""

    def __init__(self, address: str, jobs: int = 1, threads: int | None = None):
        from distributed import Client, LocalCluster

        self.cluster = None
        self.local = address == "local"
        if self.local:
            self.threads = threads or max(1, (os.cpu_count() or 1) // jobs)
            self.cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                        host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            self.threads = threads
            try:
                self.client = Client(address, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise UserError(f"--dask {address}: cannot reach a Dask scheduler ({exc})") from None

    def _warn_no_gpu(self, runs: list[Run]) -> None:
        if self.local or not any(r.needs_gpu for r in runs):
            return
        workers = self.client.scheduler_info().get("workers", {})
        if not any(w.get("resources", {}).get("GPU") for w in workers.values()):
            print("simlab batch: warning: runs need a GPU but no Dask worker offers one yet; start workers "
                  "with `dask worker ADDRESS --resources GPU=1`", file=sys.stderr)

    def results(self, runs: list[Run], folder_of: FolderOf) -> Iterator[tuple[Run, Result]]:
        from distributed import as_completed

        self._warn_no_gpu(runs)
        futures = {}
        for run in runs:
            gpu = run.needs_gpu and not self.local
            fut = self.client.submit(execute, run.scenario, run.base_dir, folder_of(run), self.threads,
                                     key=f"simlab-run-{run.key}", pure=False,
                                     resources={"GPU": 1} if gpu else None)
            futures[fut] = run
        for fut in as_completed(list(futures)):
            run = futures.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # noqa: BLE001 (KilledWorker and the like: the run's error)
                result = _error(exc)
            fut.release()
            yield run, result

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def abort(self) -> None:
        """Closing the client releases its tasks; the LocalCluster's worker processes go with it."""
        self.close()


def make_executor(jobs: int = 1, dask: str | None = None) -> Executor:
    if jobs < 1:
        raise UserError(f"-j: {jobs} is not >= 1")
    return DaskExecutor(dask, jobs) if dask else LocalExecutor(jobs)
