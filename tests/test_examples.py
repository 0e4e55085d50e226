"""The example scripts run from any working folder, write nothing unless asked, and print
numbers that mean what they say."""
from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(tmp_path: Path, script: str, *args: str) -> str:
    """Run an example with the working folder an empty tmp_path; its stdout."""
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    r = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _sweep_rows(stdout: str) -> list[dict]:
    lines = stdout.splitlines()
    header = lines[0].split()
    assert header[:2] == ["headers", "p"] and "loss_rate" in header and "total_bps" in header
    rows = []
    for line in lines[1:]:
        cells = line.split()
        if not cells:
            break
        rows.append({k: (v if k == "headers" else float(v)) for k, v in zip(header, cells, strict=True)})
    return rows


def test_sweep_prints_a_table_whose_loss_rises_with_p_and_writes_nothing(tmp_path):
    out = _run(tmp_path, "sweep.py")
    rows = _sweep_rows(out)
    assert [(r["headers"], r["p"]) for r in rows] == [(h, p) for h in ("ipv4", "rohc") for p in (0, 0.05, 0.1, 0.2)]
    for headers in ("ipv4", "rohc"):
        mine = [r for r in rows if r["headers"] == headers]
        assert mine[0]["loss_rate"] == 0 and mine[0]["packets_lost"] == 0
        losses = [r["loss_rate"] for r in mine]
        assert losses == sorted(losses) and len(set(losses)) == len(losses), losses  # strictly rising with p
        for r in mine:
            assert r["packets_sent"] == 375  # 60 s of 160 ms packets
            assert abs(r["loss_rate"] - r["p"]) < 0.05  # measured near the nominal p
            assert r["loss_rate"] == pytest.approx(r["packets_lost"] / r["packets_sent"], abs=1e-4)
            assert r["total_bps"] == pytest.approx(r["payload_bps"] + r["header_bps"] + r["ctrl_bps"], abs=1e-3)
    ipv4 = [r for r in rows if r["headers"] == "ipv4"]
    rohc = [r for r in rows if r["headers"] == "rohc"]
    assert all(r["header_bps"] == 2000 for r in ipv4)  # eq. (24): 40 B every 160 ms
    assert all(r["header_bps"] < 400 for r in rohc)
    assert all(a["total_bps"] > b["total_bps"] for a, b in zip(ipv4, rohc))
    assert "total_bps by headers" in out
    assert not any((tmp_path / "cwd").iterdir())  # nothing written by default


def test_sweep_out_writes_each_run_and_the_table(tmp_path):
    import pandas as pd

    _run(tmp_path, "sweep.py", "--duration", "2", "--out", str(tmp_path / "sweep"))
    table = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert len(table) == 8
    for h in ("ipv4", "rohc"):
        for p in ("0", "0.05", "0.1", "0.2"):
            assert (tmp_path / "sweep" / f"{h}-p{p}" / "packets.csv").is_file()
    assert not any((tmp_path / "cwd").iterdir())


def test_custom_loss_measures_exactly_what_its_definition_implies(tmp_path):
    for k, duration in ((4, "60"), (7, "10")):
        out = _run(tmp_path, "custom_loss.py", "--k", str(k), "--duration", duration)
        sent, lost, rows, rows_lost = map(int, re.search(
            r"forward packets: (\d+) sent, (\d+) lost \(packets table: (\d+) rows, (\d+) lost\)", out).groups())
        nominal = float(re.search(r"nominal loss:\s+([0-9.]+)", out).group(1))
        measured = float(re.search(r"measured loss:\s+([0-9.]+)", out).group(1))
        seqs = [int(s) for s in re.search(r"lost seqs:\s+\[([0-9, ]+)\]", out).group(1).split(",")]
        assert sent == rows and lost == rows_lost
        frames = int(float(duration) / 0.08 + 1e-9)  # 80 ms frames, 2 a packet, the last packet maybe 1
        assert sent == math.ceil(frames / 2)
        assert lost == sent // k  # packets k, 2k, ... (1-based): seq k-1, 2k-1, ...
        assert seqs == [k * i - 1 for i in range(1, 6)]
        assert nominal == pytest.approx(1 / k, abs=1e-6)
        assert measured == pytest.approx(lost / sent, abs=1e-6)
    assert not any((tmp_path / "cwd").iterdir())


def test_custom_loss_refuses_a_bad_k_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / "custom_loss.py"), "--k", "0"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip() == "error: scenario: network.forward.loss.k: 0 is not >= 1"
