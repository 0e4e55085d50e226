"""`simlab bench network`'s runners on tiny cases: the packet counts the reference topology implies
(a packet every 160 ms: 0.1 h is 2,250 per flow), on simlab's side and ns.py's, and the CLI's
refusals. Counts only: speed is the benchmark's business, never a test's."""
import pytest

from simlab.bench import network
from simlab.bench.nspy_ref import available
from simlab.cli import main

NSPY_MISSING = available()


def test_simlab_runner_counts_the_reference_packets():
    row = network.simlab_case(2, 0.1)
    assert row["packets"] == 2 * 2250
    assert row["reports"] == 2 * 3600          # one report per 100 ms per flow
    assert row["disk_mb"] > 0 and row["peak_rss_mb"] > 0


def test_scenario_format_only_when_not_csv():
    assert "outputs" not in network.scenario(1, 10.0)
    assert network.scenario(1, 10.0, "parquet")["outputs"] == {"format": "parquet"}
    tcp = network.scenario(1, 10.0, tcp=True)
    assert tcp["network"]["forward"]["loss"]["p"] == 0.0
    assert network.SCENARIO["network"]["forward"]["loss"]["p"] == 0.1   # the template is untouched


@pytest.mark.skipif(NSPY_MISSING is not None, reason=f"ns.py runner: {NSPY_MISSING}")
def test_nspy_runner_counts_the_reference_packets():
    from simlab.bench.nspy_ref import run_reference

    row = run_reference(3, 360.0)
    assert row["packets"] == 3 * 2250
    # 10 % i.i.d. loss: 6,750 packets, 675 lost on average (sd ~25)
    assert 0.85 * 6750 < row["received"] < 0.95 * 6750
    again = run_reference(3, 360.0)
    assert again["received"] == row["received"]   # seeded from the bench's seed
    assert network.nspy_case(1, 0.1)["packets"] == 2250   # and in a fresh process


@pytest.mark.skipif(NSPY_MISSING is not None, reason=f"ns.py runner: {NSPY_MISSING}")
def test_tcp_case_counts_what_entered_the_bottleneck():
    from simlab.bench.nspy_ref import run_tcp

    n = run_tcp(1, 5.0)
    assert n["speech_packets"] == round(5.0 / 0.16)
    assert n["tcp_packets"] > 100              # 1 Mbit/s of 512-byte segments: ~244/s once going
    s = network.simlab_case(1, 5.0 / 3600, tcp=True)
    assert s["speech_packets"] == round(5.0 / 0.16)
    assert s["packets"] > s["speech_packets"] + 100


def test_against_nspy_is_skipped_in_one_line_without_nspy(monkeypatch, capsys):
    import simlab.bench.nspy_ref as ref

    monkeypatch.setattr(ref, "available", lambda: "ns.py is not installed (test)")
    network.run_network(lambda title, rows: pytest.fail("nothing should run"), quick=True, against="nspy")
    assert capsys.readouterr().out.strip() == "network --against nspy: skipped: ns.py is not installed (test)"


def test_cli_refuses_network_options_elsewhere(capsys):
    assert main(["bench", "codecs", "--memory"]) != 0
    assert "apply to `simlab bench network` only" in capsys.readouterr().err


def test_writers_bench_rows():
    """`simlab bench writers`: a row per table, both paths timed on a real run's rows, the same bytes."""
    pytest.importorskip("pyarrow")
    from simlab.bench.writers import bench_writers

    rows = bench_writers(rows=2000, repeats=1)
    assert [r["table"] for r in rows] == ["frames", "packets"]
    frames, packets = rows
    assert frames["rows"] == 2000 and frames["columns"] == 25 and packets["columns"] == 12
    assert packets["rows"] > 1000  # a media packet a two frames, reports every 100 ms
    assert all(r["same_bytes"] for r in rows)
    assert all(r[k] > 0 for r in rows for k in ("csv_rows_us", "csv_block_us", "parquet_rows_us", "parquet_block_us"))


def test_repeat_reports_medians_of_pairs(monkeypatch):
    """--repeat N: each case N pairs; packets/s and ratios are medians, with the lowest and highest."""
    walls = iter([0.10, 0.20, 0.30, 0.25, 0.20, 0.20] * 10)  # simlab, ns.py, simlab, ns.py, ...

    def fake(flows, hours, *a, **k):
        wall = next(walls)
        return {"engine": "block", "packets": 100, "packets_per_s": 100 / wall, "cpu_s": wall,
                "peak_rss_mb": 10.0, "disk_mb": 1.0, "dropped": 0}

    monkeypatch.setattr(network, "simlab_case", fake)
    monkeypatch.setattr(network, "nspy_case", fake)
    rows = network.bench_against_nspy(quick=True, repeat=3)
    first = rows[0]
    assert first["pairs"] == 3
    assert first["ratio_min"] == pytest.approx(0.25 / 0.30)  # pairs: 0.20/0.10, 0.25/0.30, 0.20/0.20
    assert first["ratio"] == pytest.approx(1.0) and first["ratio_max"] == pytest.approx(2.0)
    assert first["simlab_pkt_per_s"] == pytest.approx(100 / 0.2)
    assert "pairs" not in network.bench_against_nspy(quick=True, repeat=1)[0]


@pytest.mark.parametrize("argv, message", [
    (["bench", "network", "--repeat", "3"], "give --against nspy too"),
    (["bench", "network", "--against", "nspy", "--repeat", "0"], "--repeat: 0 is not in [1, 50]"),
    (["bench", "codecs", "--repeat", "2"], "apply to `simlab bench network` only"),
])
def test_cli_refuses_bad_repeats(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
