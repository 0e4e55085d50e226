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
