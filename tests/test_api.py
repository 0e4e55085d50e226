"""The Python API (docs/api.md): load_scenario, run, Result and run_batch (the registry: test_api_registry.py)."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import simlab
from helpers import small_call
from simlab.errors import UserError
from simlab.records import FRAME_COLUMNS, PACKET_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
EQ24 = ROOT / "scenarios" / "eq24.yaml"

SMALL = small_call()


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """The working folder and the temporary folder are empty folders of this test's own."""
    cwd, tmp = tmp_path / "cwd", tmp_path / "tmp"
    cwd.mkdir()
    tmp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return cwd, tmp


# -- load_scenario ------------------------------------------------------------------------------

def test_path_yaml_string_and_mapping_give_equal_scenarios(tmp_path, monkeypatch):
    text = EQ24.read_text()
    (tmp_path / "s.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)  # the relative path's folder is the one a string or mapping resolves from
    from_path = simlab.load_scenario("s.yaml")
    from_text = simlab.load_scenario(text)
    from_mapping = simlab.load_scenario(yaml.safe_load(text))
    from_pathlib = simlab.load_scenario(Path("s.yaml"))
    assert isinstance(from_path, simlab.Scenario)
    assert from_path == from_text == from_mapping == from_pathlib
    # From another folder the content is the same; only the folder relative paths start from differs.
    elsewhere = simlab.load_scenario(EQ24)
    assert elsewhere.resolved() == from_path.resolved()
    assert Path(elsewhere.base_dir) == EQ24.parent and from_text.base_dir == "."
    # A one-line YAML string is YAML, not a file name.
    assert simlab.load_scenario("{name: one, seed: 5}").seed == 5


def test_defaults_are_filled_in():
    sc = simlab.load_scenario({})
    assert sc.system.kind == "synthetic" and sc.network.forward.loss.model == "uniform"
    assert sc.network.forward.loss.p == 0.0 and sc.feedback.estimator.kind == "ewma"


def test_overrides_as_a_mapping_and_as_set_strings_agree():
    phases = [{"until_s": 10, "loss": {"model": "uniform", "p": 0}}]
    a = simlab.load_scenario(EQ24, {"network.forward.loss.p": 0.2, "network.headers": "rohc",
                                    "network.forward.schedule": phases})
    b = simlab.load_scenario(str(EQ24), ["network.forward.loss.p=0.2", "network.headers=rohc",
                                         "network.forward.schedule=[{until_s: 10, loss: {model: uniform, p: 0}}]"])
    assert a == b
    assert a.network.forward.loss.p == 0.2 and a.network.headers == "rohc"
    assert a.network.forward.schedule[0].until_s == 10
    # List items by index; a mapping value replaces the whole mapping.
    c = simlab.load_scenario(EQ24, {"network.forward.schedule": [{"until_s": 10, "loss": {"model": "uniform", "p": 0}}],
                                    "network.forward.schedule.0.until_s": 12.5,
                                    "network.forward.loss": {"model": "gilbert_elliott", "loss": 0.1, "burst": 3}})
    assert c.network.forward.schedule[0].until_s == 12.5 and c.network.forward.loss.model == "gilbert_elliott"
    # Overrides never change the mapping handed in.
    data = yaml.safe_load(EQ24.read_text())
    simlab.load_scenario(data, {"network.forward.loss.p": 0.3})
    assert data["network"]["forward"]["loss"]["p"] == 0.1


@pytest.mark.parametrize("source, overrides, message", [
    (EQ24, {"network.forward.loss.p": 1.7}, "network.forward.loss.p: 1.7 is not in [0, 1]"),
    (EQ24, ["network.forward.loss.p=1.7"], "network.forward.loss.p: 1.7 is not in [0, 1]"),
    (EQ24, {"network.forward.loss.q": 0.2}, "network.forward.loss.q: unknown key (known: model, p)"),
    (EQ24, ["network.forward.loss.p=abc"], "network.forward.loss.p: expected a number, got 'abc'"),
    (EQ24, ["network.forward.loss.p"], "--set network.forward.loss.p: expected KEY.PATH=VALUE"),
    (EQ24, {"network.forward.loss.model": "unifrom"}, "did you mean 'uniform'?"),
    ({"sytem": {"kind": "synthetic"}}, None, "scenario: sytem: unknown key; did you mean 'system'?"),
    ("name: x\nseed: -1\n", None, "scenario: seed: -1 is not >= 0"),
    ({"network": {"forward": {"schedule": [{"until_s": 5}]}}}, {"network.forward.schedule.3.until_s": 1},
     "'3' is not an index of the list at network.forward.schedule"),
])
def test_a_bad_key_or_value_is_one_user_error_naming_its_path(source, overrides, message):
    with pytest.raises(UserError) as info:
        simlab.load_scenario(source, overrides)
    text = str(info.value)
    assert message in text and "\n" not in text
    if source == EQ24 and not message.startswith("--set"):
        assert text.startswith(f"{EQ24}: ")  # the file, then the key path


def test_load_scenario_refuses_what_is_not_a_scenario(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        simlab.load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(UserError, match="a scenario is a path, a YAML string or a mapping, got int"):
        simlab.load_scenario(42)
    with pytest.raises(UserError, match="a scenario is a mapping of keys, got list"):
        simlab.load_scenario("- a\n- b\n")


# -- run ----------------------------------------------------------------------------------------

def test_run_without_out_writes_nothing_and_equals_a_written_run(private_tmp, tmp_path):
    cwd, tmp = private_tmp
    sc = simlab.load_scenario(SMALL)
    mem = simlab.run(sc)
    assert mem.out is None and mem.warnings == []
    assert _files(cwd) == [] and _files(tmp) == []
    disk = simlab.run(sc, out=tmp_path / "run")
    assert disk.out == tmp_path / "run"
    assert {"packets.csv", "frames.csv", "summary.csv", "manifest.json"} <= set(_files(disk.out))
    for a, b in ((mem.packets, disk.packets), (mem.frames, disk.frames)):
        assert list(a.columns) == list(b.columns)
        assert a.dtypes.equals(b.dtypes)
        assert a.equals(b)
    assert mem.summary.keys() == disk.summary.keys()
    for k, v in mem.summary.items():
        assert v == disk.summary[k] or (isinstance(v, float) and math.isnan(v) and math.isnan(disk.summary[k])), k
    # The written summary.csv is the same row.
    row = pd.read_csv(disk.out / "summary.csv").iloc[0]
    assert row["total_bps"] == mem.summary["total_bps"] and row["packets_lost"] == mem.summary["packets_lost"]
    assert _files(cwd) == [] and _files(tmp) == []


def test_a_run_with_a_pcap_and_no_out_works_in_a_temporary_folder_it_removes(private_tmp, tmp_path):
    cwd, tmp = private_tmp
    sc = simlab.load_scenario(SMALL, {"outputs.pcap": True, "duration_s": 3})
    mem = simlab.run(sc)
    assert mem.out is None and len(mem.packets) > 0
    assert _files(cwd) == [] and _files(tmp) == []
    disk = simlab.run(sc, out=tmp_path / "run")
    assert (disk.out / "forward.pcap").is_file()
    assert mem.packets.equals(disk.packets) and mem.frames.equals(disk.frames)


@pytest.mark.parametrize("overrides", [{}, {"network.forward.bandwidth_bps": 3000, "network.forward.queue_packets": 1}],
                         ids=["lossy", "congested"])
def test_tables_have_the_records_columns_and_agree_with_the_summary(overrides):
    res = simlab.run(simlab.load_scenario(SMALL, overrides))
    packets, frames, s = res.packets, res.frames, res.summary
    assert list(packets.columns) == PACKET_COLUMNS
    assert list(frames.columns) == FRAME_COLUMNS + ["mask"]  # the synthetic system's own column
    assert packets.dtypes["kind"] == object and packets.dtypes["send_s"] == np.float64
    assert frames.dtypes["tokens_sent"] == np.int64 and frames.dtypes["mask"] == object
    assert set(frames["mask"]) == {"22111100"}  # a string, not the number 22111100

    forward = packets[packets.kind.isin(["media", "redundant"])]
    reports = packets[packets.kind == "feedback"]
    assert len(forward) + len(reports) == len(packets)
    assert (packets.kind == "redundant").any()  # redundancy: own
    assert s["packets_sent"] == len(forward)
    assert s["packets_lost"] == forward.lost.sum() > 0
    assert s["packets_dropped"] == forward.dropped.sum()
    assert (s["packets_dropped"] > 0) == bool(overrides)
    assert s["packets_late"] == forward.late.sum()
    assert s["loss_rate"] == (s["packets_lost"] + s["packets_dropped"]) / s["packets_sent"]
    assert s["reports_sent"] == len(reports) and s["reports_lost"] == reports.lost.sum() > 0
    gone = (forward.lost == 1) | (forward.dropped == 1)
    assert forward.arrival_s[gone].isna().all() and forward.arrival_s[~gone].notna().all()
    carried = forward[forward.dropped == 0]  # what entered the link (erased packets did)
    assert s["header_bps"] == pytest.approx(carried.header_bytes.sum() * 8 / s["duration_s"])
    assert s["payload_bps"] == pytest.approx(carried.payload_bytes.sum() * 8 / s["duration_s"])
    assert s["frames"] == len(frames) == 100
    for col in ("tokens_sent", "tokens_repeated", "tokens_received", "tokens_lost", "tokens_late"):
        assert s[col] == frames[col].sum(), col
    assert (frames.tokens_sent == frames.tokens_received + frames.tokens_lost + frames.tokens_late).all()
    assert s["latency_mean_s"] == pytest.approx(frames.latency_s.mean())


def test_run_takes_what_load_scenario_takes_and_is_reproducible(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(SMALL))
    a = simlab.run(tmp_path / "s.yaml")
    b = simlab.run(SMALL)
    c = simlab.run(yaml.safe_dump(SMALL))
    assert a.packets.equals(b.packets) and b.packets.equals(c.packets) and a.frames.equals(c.frames)
    other = simlab.run(simlab.load_scenario(SMALL, {"seed": 4}))
    assert not other.packets.equals(a.packets)


def test_run_into_an_existing_folder_needs_force(tmp_path):
    sc = simlab.load_scenario(SMALL, {"duration_s": 1})
    first = simlab.run(sc, out=tmp_path / "run")
    with pytest.raises(UserError, match="output folder exists and is not empty"):
        simlab.run(sc, out=tmp_path / "run")
    again = simlab.run(sc, out=tmp_path / "run", force=True)
    assert again.summary == first.summary and again.packets.equals(first.packets)


def test_result_out_is_the_folder_written_whatever_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    res = simlab.run(simlab.load_scenario(SMALL, {"duration_s": 1}), out="~/run")  # no "~" expansion, as the CLI
    assert res.out == tmp_path / "~" / "run" and res.out.is_absolute()
    monkeypatch.chdir(ROOT)
    assert len(res.packets) > 0 and len(res.frames) == 12  # read from where they were written


def test_result_reads_the_tables_of_a_written_run_as_records_declares(tmp_path):
    res = simlab.run(simlab.load_scenario(SMALL, {"duration_s": 2}), out=tmp_path / "run")
    assert "out=" in repr(res)
    again = simlab.api.Result(res.summary, out=res.out)  # a Result over any run folder
    assert again.packets.equals(res.packets) and list(again.frames.columns) == FRAME_COLUMNS + ["mask"]


# -- run_batch ----------------------------------------------------------------------------------

def test_run_batch_returns_one_row_per_run_and_resumes(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "name": "small", "seed": 2,
        "base": {"duration_s": 4, "system": {"kind": "synthetic", "quantizers": 4},
                 "network": {"forward": {"loss": {"model": "uniform", "p": 0.1}}}},
        "grid": {"network.forward.loss.p": [0.0, 0.3]},
    }))
    table = simlab.run_batch(exp, tmp_path / "out")
    assert isinstance(table, pd.DataFrame) and len(table) == 2
    assert list(table["status"]) == ["ok", "ok"] and list(table["error"]) == ["", ""]
    assert sorted(table["network.forward.loss.p"]) == [0.0, 0.3]
    assert table["key"].map(lambda k: isinstance(k, str) and len(k) == 16).all()
    assert table.loc[table["network.forward.loss.p"] == 0.0, "packets_lost"].item() == 0
    assert table.loc[table["network.forward.loss.p"] == 0.3, "packets_lost"].item() > 0
    for key in table["key"]:
        assert (tmp_path / "out" / "runs" / key / "packets.csv").is_file()
    stamps = {k: (tmp_path / "out" / "runs" / k / "summary.csv").stat().st_mtime_ns for k in table["key"]}
    again = simlab.run_batch(exp, tmp_path / "out")  # resumes: nothing runs again
    assert again.equals(table)
    assert stamps == {k: (tmp_path / "out" / "runs" / k / "summary.csv").stat().st_mtime_ns for k in table["key"]}


def test_a_failed_run_is_a_row_and_retry_failed_runs_it_again(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"base": {"duration_s": 2, "network": {"forward": {
        "loss": {"model": "trace", "file": "trace.txt"}}}}, "grid": {"network.forward.delay_s": [0.01, 0.02]}}))
    failed = simlab.run_batch(exp, tmp_path / "out")  # the trace file is missing
    assert list(failed["status"]) == ["error", "error"]
    assert all("trace.txt: loss trace not found" in e for e in failed["error"])
    (tmp_path / "trace.txt").write_text("0\n1\n")
    assert simlab.run_batch(exp, tmp_path / "out").equals(failed)  # done is done, failed or not
    retried = simlab.run_batch(exp, tmp_path / "out", retry_failed=True)
    assert list(retried["status"]) == ["ok", "ok"] and list(retried["error"]) == ["", ""]
    assert list(retried["packets_lost"]) == [6, 6]  # every second of 13 packets


def test_a_script_without_a_main_guard_is_told_why_its_runs_failed(tmp_path):
    import subprocess
    import sys

    (tmp_path / "exp.yaml").write_text("base: {duration_s: 1}\ngrid: {network.forward.loss.p: [0.0]}\n")
    (tmp_path / "script.py").write_text("import simlab\n"
                                        "t = simlab.run_batch('exp.yaml', 'out')\n"
                                        "print('STATUS', *t['status'], *t['error'])\n")
    r = subprocess.run([sys.executable, "script.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "STATUS error WorkerDied" in r.stdout
    assert 'call it under `if __name__ == "__main__":`' in r.stderr


def test_run_batch_refuses_a_bad_experiment_before_writing(tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"base": {"duration_s": 4}, "grid": {"network.forward.loss.p": [0.1, 1.5]}}))
    with pytest.raises(UserError, match=r"network.forward.loss.p: 1.5 is not in \[0, 1\]"):
        simlab.run_batch(exp, tmp_path / "out")
    assert not (tmp_path / "out").exists()
