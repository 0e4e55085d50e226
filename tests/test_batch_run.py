"""Running a batch: the table, resuming after SIGKILL, failed runs, the lock."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from argparse import Namespace

import pandas as pd
import pytest

from simlab.batch import expand, parse_experiment, run_batch
from simlab.batch.cli import main as batch_main
from simlab.batch.table import RunTable
from simlab.errors import UserError
from tests.helpers import ROOT

BASE = {"duration_s": 8, "system": {"kind": "synthetic"}, "network": {"forward": {"bandwidth_bps": 64000}}}


def experiment(tmp_path, **kw):
    import yaml

    data = {"name": "t", "base": BASE, "grid": {"network.forward.loss.p": [0.0, 0.2]}, "repeats": 2, "seed": 4, **kw}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, parse_experiment(data, tmp_path, str(path))


def table(out) -> pd.DataFrame:
    return pd.read_csv(out / "runs.csv").sort_values("key").reset_index(drop=True)


def test_table_has_coordinates_status_and_summary(tmp_path):
    _, exp = experiment(tmp_path)
    res = run_batch(exp, tmp_path / "out", progress=False)
    assert (res.total, res.before, res.reused, res.ran, res.failed) == (4, 0, 0, 4, 0)
    t = table(tmp_path / "out")
    runs = {r.key: r for r in expand(exp)}
    assert sorted(t["key"]) == sorted(runs)
    assert list(t.columns[:7]) == ["network.forward.loss.p", "repeat", "key", "seed", "status", "error", "name"]
    for _, row in t.iterrows():
        r = runs[row["key"]]
        assert row["status"] == "ok" and pd.isna(row["error"])
        assert row["seed"] == r.seed and row["network.forward.loss.p"] == r.coords["network.forward.loss.p"]
        summary = pd.read_csv(tmp_path / "out" / "runs" / r.key / "summary.csv").iloc[0]
        for col in ("packets_sent", "packets_lost", "total_bps", "latency_mean_s"):
            assert row[col] == summary[col]
    # lossless runs lose nothing; the lossy ones lose some
    assert (t.loc[t["network.forward.loss.p"] == 0, "packets_lost"] == 0).all()
    assert (t.loc[t["network.forward.loss.p"] == 0.2, "packets_lost"] > 0).all()
    # a rerun does nothing and changes nothing
    before = (tmp_path / "out" / "runs.csv").read_bytes()
    res2 = run_batch(exp, tmp_path / "out", progress=False)
    assert (res2.before, res2.ran, res2.reused) == (4, 0, 0)
    assert (tmp_path / "out" / "runs.csv").read_bytes() == before


def test_complete_folder_without_row_is_reused_not_rerun(tmp_path):
    _, exp = experiment(tmp_path)
    out = tmp_path / "out"
    run_batch(exp, out, progress=False)
    full = table(out)
    lines = (out / "runs.csv").read_text().splitlines(keepends=True)
    victim = lines[2].split(",")[2]  # the key column of the second run
    manifest = out / "runs" / victim / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    # killed after the run's folder was renamed into place, in the middle of writing its row
    (out / "runs.csv").write_text("".join(lines[:2] + lines[3:]) + lines[2][:25])
    res = run_batch(exp, out, progress=False)
    assert (res.before, res.reused, res.ran) == (3, 1, 0)
    assert manifest.stat().st_mtime_ns == stamp
    t = table(out)
    assert t["key"].is_unique and len(t) == 4
    pd.testing.assert_frame_equal(t, full)
    assert (out / "runs.csv").read_text().endswith("\n")


@pytest.mark.slow
def test_kill_and_resume_gives_every_run_exactly_once(tmp_path):
    path, exp = experiment(tmp_path, grid={"network.forward.loss.p": [0.0, 0.1, 0.2, 0.3]}, repeats=4,
                           base={**BASE, "duration_s": 60})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "simlab.batch", str(path), "--out", str(out), "-j", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    rows = 0
    while time.monotonic() < deadline and proc.poll() is None:
        csv = out / "runs.csv"
        rows = csv.read_text().count("\n") - 1 if csv.exists() else 0
        if rows >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"batch ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers
    proc.wait()
    proc.stderr.close()
    killed_rows = (out / "runs.csv").read_text().count("\n") - 1
    assert 3 <= killed_rows < 16
    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-800:]
    t = table(out)
    assert sorted(t["key"]) == sorted(r.key for r in expand(exp))
    assert t["key"].is_unique and (t["status"] == "ok").all()
    assert not list((out / "runs").glob(".*partial*"))
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(t["key"])


def test_failing_run_is_recorded_and_the_batch_completes(tmp_path):
    path, exp = experiment(tmp_path, grid={"compute.profile": [None, "no-such-profile"]}, repeats=1)
    out = tmp_path / "out"
    args = Namespace(experiment=str(path), out=str(out), jobs=2, dask=None, retry_failed=False, dry_run=False,
                     no_progress=True)
    assert batch_main(args) == 1  # completed, with a failure
    t = table(out)
    assert len(t) == 2
    bad = t[t["compute.profile"] == "no-such-profile"].iloc[0]
    good = t[t["compute.profile"].isna()].iloc[0]
    assert bad["status"] == "error" and "UserError: compute.profile: no-such-profile" in bad["error"]
    assert pd.isna(bad["packets_sent"])
    assert good["status"] == "ok" and good["packets_sent"] > 0
    assert "Traceback" in (out / "errors" / f"{bad['key']}.txt").read_text()
    assert not (out / "runs" / bad["key"]).exists()
    # a rerun keeps the error; --retry-failed runs it again, and the table still has it once
    res = run_batch(exp, out, progress=False)
    assert (res.ran, res.failed) == (0, 1)
    res = run_batch(exp, out, progress=False, retry_failed=True)
    assert (res.ran, res.failed) == (1, 1)
    t = table(out)
    assert len(t) == 2 and t["key"].is_unique


def test_table_widens_its_header_and_cuts_partial_lines(tmp_path):
    path = tmp_path / "runs.csv"
    tab = RunTable(path, ["x", "key"])
    tab.append({"x": 1, "key": "a", "m": 0.5})
    tab.append({"x": 2, "key": "b", "m": 0.25, "n": "text, with comma\nand a line break"})
    tab.append({"x": 3, "key": "c"})
    assert path.read_text().splitlines()[0] == "x,key,m,n"
    with open(path, "ab") as fh:
        fh.write(b"4,d,0.1")  # a row cut short by a kill
    again = RunTable(path, ["x", "key"])
    rows = again.load()
    assert list(rows) == ["a", "b", "c"]
    assert rows["b"]["n"] == "text, with comma and a line break" and rows["a"]["n"] == ""
    again.append({"x": 4, "key": "d", "m": 0.1})
    df = pd.read_csv(path)
    assert list(df["key"]) == ["a", "b", "c", "d"] and list(df["m"].fillna(-1)) == [0.5, 0.25, -1, 0.1]


def test_one_batch_per_folder(tmp_path):
    import fcntl

    _, exp = experiment(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".batch.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(UserError, match="another batch is writing this folder"):
            run_batch(exp, out, progress=False)


def test_cli_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: {}\ngrid: {network.forward.loss.p: [2]}\n")
    r = subprocess.run([sys.executable, "-m", "simlab.batch", str(bad), "--out", str(tmp_path / "o")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "run network.forward.loss.p=2, repeat=0: network.forward.loss.p: 2.0 is not in [0, 1]" in r.stderr


@pytest.mark.slow
def test_bench_batch_rows():
    from simlab.batch.bench import bench_batch

    rows = bench_batch(workers=(1,), runs=2, duration_s=5.0, quiet=True)
    (row,) = rows
    assert (row["workers"], row["runs"], row["ok"], row["speedup"]) == (1, 2, 2, 1.0)
    assert row["wall_s"] > 0 and row["runs_per_s"] == pytest.approx(2 / row["wall_s"])


def _children(pid: int) -> list[int]:
    from pathlib import Path

    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a non-reaping init counts as dead)."""
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _slow_batch(tmp_path):
    """A -j 2 batch of runs long enough to be in flight when killed; (command, output folder, its
    Popen, the worker pids once both workers are busy)."""
    path, _ = experiment(tmp_path, grid={"network.forward.loss.p": [0.0, 0.1]}, repeats=2,
                         base={**BASE, "duration_s": 36000})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "simlab.batch", str(path), "--out", str(out), "-j", "2", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        workers = [k for k in _children(proc.pid)
                   if "spawn_main" in open(f"/proc/{k}/cmdline").read().replace("\0", " ")]
        if len(workers) == 2 and len(list((out / "runs").glob(".*partial*"))) == 2:  # both runs started
            return cmd, out, proc, workers
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the batch's workers never both started: {proc.communicate()[1][-500:]}")


def _kill_leftovers(pids: list[int]) -> None:
    """A failed test must not leave its batch's processes running (the bug it looks for)."""
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _gone(pids: list[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_with_a_killed_batch(tmp_path):
    _, _, proc, workers = _slow_batch(tmp_path)
    kids = _children(proc.pid)  # the workers and multiprocessing's resource tracker
    proc.kill()  # SIGKILL the parent alone: nothing can clean up but the workers themselves
    proc.wait()  # not communicate(): surviving workers would hold its stderr open
    try:
        assert _gone(kids, within_s=10), [p for p in kids if _alive(p)]
    finally:
        _kill_leftovers(kids)
        proc.stderr.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_batch_and_its_workers(tmp_path):
    _, out, proc, workers = _slow_batch(tmp_path)
    proc.terminate()  # the parent alone, as `kill PID` does
    try:
        proc.wait(timeout=30)  # not after the runs' ~30 s: it stops them
        assert _gone(workers, within_s=5), [p for p in workers if _alive(p)]
    finally:
        _kill_leftovers([proc.pid, *workers])
    assert proc.returncode == 143 and proc.stderr.read().strip() == "simlab: interrupted"
    proc.stderr.close()
    # nothing recorded for the runs it stopped: a resume runs them
    assert not (out / "runs.csv").exists() or len(pd.read_csv(out / "runs.csv")) == 0


def test_a_changed_experiment_is_refused_into_an_old_folder(tmp_path):
    from simlab.cli import main as simlab_main

    path, exp = experiment(tmp_path)
    out = tmp_path / "out"
    run_batch(exp, out, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    changed, _ = experiment(tmp_path, seed=5)  # every key changes
    assert simlab_main(["batch", str(changed), "--out", str(out), "--no-progress"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    with pytest.raises(UserError, match=r"runs.csv holds 4 runs this experiment does not have.*--keep-other-runs"):
        run_batch(parse_experiment({"name": "t", "base": {**BASE, "duration_s": 9}, "repeats": 2, "seed": 4,
                                    "grid": {"network.forward.loss.p": [0.0, 0.2]}}, tmp_path), out, progress=False)
    # a new grid value adds runs and keeps the old ones members: fine
    _, wider = experiment(tmp_path, grid={"network.forward.loss.p": [0.0, 0.2, 0.3]})
    res = run_batch(wider, out, progress=False)
    assert (res.total, res.before, res.ran) == (6, 4, 2)
    # pooling on purpose
    _, other = experiment(tmp_path, seed=5)
    res = run_batch(other, out, progress=False, keep_other_runs=True, only={"repeat": 0})
    assert (res.total, res.ran) == (2, 2) and len(table(out)) == 8


def test_only_values_that_match_nothing_are_refused(tmp_path):
    _, exp = experiment(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(UserError, match=r"--only network.forward.loss.p=0.5: no run has this value "
                                        r"\(network.forward.loss.p: 0, 0.2\)"):
        run_batch(exp, out, progress=False, only={"network.forward.loss.p": 0.5})
    with pytest.raises(UserError, match="repeat=2: no run has this value"):
        run_batch(exp, out, progress=False, only={"repeat": 2})
    assert not out.exists()
    assert len(run_batch(exp, out, progress=False, only={"network.forward.loss.p": 0.2}).out.joinpath(
        "runs.csv").read_text().splitlines()) == 3


def test_refusals_create_nothing(tmp_path, monkeypatch):
    from simlab.batch import runner

    _, exp = experiment(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(UserError, match="-j: 0 is not >= 1"):
        run_batch(exp, out, jobs=0, progress=False)
    assert not out.exists()
    run_batch(exp, out, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(UserError, match="-j: 0 is not >= 1"):  # even with nothing left to run
        run_batch(exp, out, jobs=0, progress=False)

    def unreachable(jobs, dask):
        raise UserError(f"--dask {dask}: cannot reach a Dask scheduler")

    monkeypatch.setattr(runner, "make_executor", unreachable)
    for folder in (out, tmp_path / "new"):
        with pytest.raises(UserError, match="cannot reach"):
            run_batch(exp, folder, dask="tcp://127.0.0.1:1", progress=False)
    assert not (tmp_path / "new").exists()
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    (tmp_path / "afile").write_text("x")
    with pytest.raises(UserError, match="afile: output folder is a file"):
        run_batch(exp, tmp_path / "afile", progress=False)
    with pytest.raises(UserError, match="afile is a file"):
        run_batch(exp, tmp_path / "afile" / "sub", progress=False)


def test_a_successful_retry_removes_the_error_file(tmp_path, monkeypatch):
    from simlab.batch import runner

    _, exp = experiment(tmp_path, repeats=1)
    out = tmp_path / "out"
    real = runner.make_executor

    class Failing:
        def results(self, runs, folder_of):
            for r in runs:
                yield r, {"status": "error", "error": "RuntimeError: flaky", "traceback": "Traceback: flaky"}

        def close(self):
            pass

        abort = close

    monkeypatch.setattr(runner, "make_executor", lambda jobs, dask: Failing())
    assert run_batch(exp, out, progress=False).failed == 2
    assert len(list((out / "errors").glob("*.txt"))) == 2
    monkeypatch.setattr(runner, "make_executor", real)
    res = run_batch(exp, out, progress=False, retry_failed=True)
    assert (res.ran, res.failed) == (2, 0) and (table(out)["status"] == "ok").all()
    assert not list((out / "errors").glob("*.txt"))
