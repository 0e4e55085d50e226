"""simlab plot: the run figure's panels hold windows.csv's and frames.csv's numbers; a table
figure's lines are the grouped means with t-based 95 % bands."""
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from helpers import ROOT, run, scenario
from scipy import stats

from simlab.errors import UserError
from simlab.metrics.net_windows import network_windows, read_masks, window_grid
from simlab.report.curves import curves_figure, default_by, default_x, default_ys, grouped_means
from simlab.report.fig9 import fig9_figure, window_centres
from simlab.report.plot_cli import add_parser
from simlab.report.plots import plot_path
from simlab.report.run_data import load_run, load_runs
from simlab.simulation import run_scenario
from simlab.scenario import load_scenario

SYNTH = ["duration_s=8", "system.quantizers=5", "system.redundant=1", "metrics=[token_accuracy]",
         "network.forward.schedule=[{until_s: 3.0, loss: {model: uniform, p: 0.0}}]", "network.forward.loss.p=0.3"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plots")
    a, _ = run(tmp, "eq24", SYNTH, name="a")
    b, _ = run(tmp, "eq24", SYNTH + ["system.quantizers=8", "system.redundant=0", "seed=2"], name="b")
    return a, b


def _nonempty(paths):
    assert paths and all(p.is_file() and p.stat().st_size > 1000 for p in paths)


def test_run_figure_panels_hold_the_run_data(synth):
    a, _ = synth
    written = plot_path([a])
    assert [p.name for p in written] == ["fig9.png", "fig9.pdf"] and written[0].parent == a / "plots"
    _nonempty(written)
    w = pd.read_csv(a / "windows.csv")
    fig = fig9_figure([load_run(a)])
    axes = fig.axes
    bit = axes[3]
    x, y = bit.lines[0].get_data()
    assert np.allclose(x, (w.t_start_s + w.t_end_s) / 2) and np.allclose(y, w.payload_bps / 1000)
    loss, phat = bit.loss_axis.lines
    assert np.allclose(loss.get_ydata(), w.loss_rate, equal_nan=True)
    assert np.allclose(phat.get_ydata(), w.p_hat_mean, equal_nan=True)
    # decisions behind panels (a) and (b): the frames' masks, depth by frame
    t, mask = read_masks(a / "frames.csv", flow=0)
    for ax in axes[:2]:
        img = ax.images[0].get_array()
        assert img.shape == (8, len(t)) and np.array_equal(np.asarray(img), mask.T)
        assert (mask.T[:5] > 0).all() and (mask.T[0] == 2).all() and (mask.T[5:] == 0).all()
        assert not ax.lines  # a synthetic run has no audio metrics to draw


def test_overlay_draws_each_run(synth):
    a, b = synth
    runs = load_runs([a, b])
    assert [r.label for r in runs] == ["synthetic (a)", "synthetic (b)"]  # same system: folder added
    fig = fig9_figure(runs)
    lines = fig.axes[3].lines
    assert [ln.get_label() for ln in lines] == ["synthetic (a) payload", "synthetic (b) payload"]
    for ln, folder in zip(lines, (a, b)):
        assert np.allclose(ln.get_ydata(), pd.read_csv(folder / "windows.csv").payload_bps / 1000)
    # 8 tokens of 11 bits + side info sent every frame vs 5 + 1 doubled: b pays more
    assert lines[1].get_ydata().mean() > lines[0].get_ydata().mean()


def test_run_without_windows_csv_gets_network_traces(tmp_path):
    out, _ = run(tmp_path, "eq24", ["duration_s=5"])
    assert not (out / "windows.csv").exists()
    r = load_run(out)
    # 62 whole 80 ms frames fit in 5 s: a 4.96 s call holds 5 windows of 2.5 s every 0.5 s
    assert len(r.windows) == 5 and "payload_bps" in r.windows and r.windows.t_end_s.max() == 4.5
    _nonempty(plot_path([out], tmp_path / "figs"))


def test_cli_parser_plots_and_prints(synth, tmp_path, capsys):
    a, _ = synth
    parser = argparse.ArgumentParser(prog="simlab")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plot", str(a), "--out", str(tmp_path / "o")])
    assert args.fn(args) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "o" / "fig9.png"), str(tmp_path / "o" / "fig9.pdf")]


def test_bad_inputs_are_user_errors(synth, tmp_path):
    a, _ = synth
    with pytest.raises(UserError, match="not found"):
        plot_path([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="not a finished run"):
        plot_path([tmp_path / "empty"])
    with pytest.raises(UserError, match="apply to .csv tables"):
        plot_path([a], x="visqol")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(UserError, match="not a run folder or a .csv"):
        plot_path([tmp_path / "notes.txt"])
    t = tmp_path / "runs.csv"
    pd.DataFrame({"system": ["a"], "network.forward.loss.p": [0.1], "visqol": [3.0]}).to_csv(t, index=False)
    with pytest.raises(UserError, match="lacks column"):
        plot_path([t], y="plcmos")
    pd.DataFrame({"system": ["a"], "x": [1]}).to_csv(t, index=False)
    with pytest.raises(UserError, match="no x column"):
        plot_path([t])


def _table(rng: np.random.Generator) -> pd.DataFrame:
    """A batch-like table: 2 systems x 4 loss rates x 5 seeds, noisy quality falling with loss."""
    rows = []
    for system, rate, base in (("largesc", 8, 4.0), ("opus", 24000, 3.6)):
        for p in (0.0, 0.1, 0.2, 0.3):
            for seed in range(5):
                rows.append({"system": system, "system.bitrate_bps": rate, "network.forward.loss.p": p,
                             "seed": seed, "visqol": base - 3 * p + rng.normal(0, 0.1),
                             "plcmos": base - 2 * p + rng.normal(0, 0.2), "wer": p + rng.uniform(0, 0.05),
                             "payload_bps": 1000 + 10 * seed if system == "largesc" else rate + seed})
    return pd.DataFrame(rows)


def test_table_defaults_from_columns():
    df = _table(np.random.default_rng(0))
    assert default_x(df) == "network.forward.loss.p"
    assert default_ys(df) == ["visqol", "plcmos", "wer"]
    assert default_by(df) == ["system"]


def test_table_lines_are_grouped_means_with_t_bands(tmp_path):
    df = _table(np.random.default_rng(1))
    path = tmp_path / "runs.csv"
    df.to_csv(path, index=False)
    written = plot_path([path])
    assert [p.name for p in written] == ["runs_visqol_plcmos_wer_vs_network-forward-loss-p.png",
                                         "runs_visqol_plcmos_wer_vs_network-forward-loss-p.pdf"]
    _nonempty(written)
    fig = curves_figure(df)
    for ax, y in zip(fig.axes, ["visqol", "plcmos", "wer"]):
        assert [ln.get_label() for ln in ax.lines] == ["largesc (n=5)", "opus (n=5)"]
        for ln, system in zip(ax.lines, ["largesc", "opus"]):
            means = df[df.system == system].groupby("network.forward.loss.p")[y].mean()
            assert np.allclose(ln.get_xdata(), means.index) and np.allclose(ln.get_ydata(), means.values)
        g = grouped_means(df, "network.forward.loss.p", y, ["system"])
        part = df[(df.system == "opus") & (df["network.forward.loss.p"] == 0.2)][y]
        half = stats.t.ppf(0.975, 4) * part.std(ddof=1) / np.sqrt(5)
        row = g[(g.line == "opus") & (g.x == 0.2)].iloc[0]
        assert row.n == 5
        assert row.hi - row["mean"] == pytest.approx(half) and row["mean"] - row.lo == pytest.approx(half)
        band = ax.collections[1].get_paths()[0].vertices  # opus's band polygon
        assert band[:, 1].max() == pytest.approx(g[g.line == "opus"].hi.max())


def test_measured_x_makes_points_from_coordinates():
    """Fig. 4 style: x = payload_bps (measured); each bitrate setting is one point at its mean x."""
    df = _table(np.random.default_rng(2))
    df = df[df["network.forward.loss.p"] == 0.0]
    df = pd.concat([df, df.assign(**{"system.bitrate_bps": df["system.bitrate_bps"] * 2,
                                     "payload_bps": df["payload_bps"] * 2, "visqol": df["visqol"] + 0.2})])
    g = grouped_means(df, "payload_bps", "visqol", ["system"])
    assert len(g) == 4 and (g.n == 5).all()
    opus = g[g.line == "opus"]
    assert opus.x.tolist() == [24002.0, 48004.0]  # seeds 0..4 add 0..4 bit/s: mean 2
    sel = df[(df.system == "opus") & (df["system.bitrate_bps"] == 48000)]
    assert opus.iloc[1]["mean"] == pytest.approx(sel.visqol.mean())
    # other varying coordinates split lines when x is a coordinate
    df2 = _table(np.random.default_rng(3)).assign(**{"network.forward.loss.model": "uniform"})
    df2 = pd.concat([df2, df2.assign(**{"network.forward.loss.model": "gilbert_elliott"})])
    lines = grouped_means(df2, "network.forward.loss.p", "visqol", ["system"]).line.unique().tolist()
    assert lines == ["largesc, loss.model=uniform", "opus, loss.model=uniform",  # first-seen order
                     "largesc, loss.model=gilbert_elliott", "opus, loss.model=gilbert_elliott"]


OPUS = {"name": "opus_plot", "seed": 4, "audio": "package:clip.wav", "duration_s": 5.0,
        "system": {"kind": "opus", "bitrate_bps": 24000, "frame_ms": 20, "fec": True},
        "network": {"forward": {"loss": {"model": "uniform", "p": 0.2}}}, "metrics": ["plcmos"]}


@pytest.mark.slow
def test_audio_run_figure_draws_metric_traces_and_spectrogram(tmp_path):
    pytest.importorskip("speechmos", reason="PLCMOS needs speechmos (pip install speechmos)")
    out, _ = run(tmp_path, OPUS)
    w = pd.read_csv(out / "windows.csv")
    fig = fig9_figure([load_run(out)])
    (visqol_ax, plcmos_ax, spec_ax, _) = fig.axes[:4]
    assert not visqol_ax.lines  # not among the run's metrics: the panel says so instead
    assert "no visqol" in visqol_ax.texts[0].get_text()
    x, y = plcmos_ax.lines[0].get_data()
    assert np.allclose(x, window_centres(w)) and np.allclose(y, w.plcmos)
    assert not plcmos_ax.images  # Opus has no token decisions to show
    mesh = spec_ax.collections[0].get_array()
    # 32 ms (768-sample) frames at 24 kHz: 385 frequency bins up to 12 kHz; 8 ms hop over 5 s
    assert mesh.shape[0] == 385 and 600 < mesh.shape[1] < 640
    assert spec_ax.get_ylim()[1] == pytest.approx(12.0)
    _nonempty(plot_path([out]))


def test_fig9_scenario_has_the_papers_phases():
    sc = load_scenario(ROOT / "scenarios" / "fig9_dynamic.yaml")
    fwd = sc.network.forward
    assert [ph.loss.p for ph in fwd.schedule] + [fwd.loss.p] == [0.0, 0.05, 0.2, 0.1, 0.3, 0.1]
    assert [ph.until_s for ph in fwd.schedule] == [3.75, 7.5, 11.25, 15.0, 18.75]
    assert sc.metrics == ["visqol", "plcmos"] and sc.windows.window_s == 2.5
    assert sc.audio_path().name in ("2094-142345-0000.flac", "clip.wav")


def test_fig9_scenario_windows_follow_the_phases(tmp_path):
    """Run the scenario's channel with Opus (no metrics): the loss per window follows the phases."""
    sc = scenario("fig9_dynamic", ["system={kind: opus, bitrate_bps: 24000, frame_ms: 20, fec: true}",
                                   "metrics=[]", "outputs.audio=false"])
    summary = run_scenario(sc, tmp_path / "out")
    w = network_windows(tmp_path / "out", *window_grid(summary["duration_s"], 2.5, 0.5))

    def inside(a: float, b: float) -> pd.DataFrame:  # windows within a phase (+ packetization delay)
        return w[(w.t_start_s >= a) & (w.t_end_s <= b + 0.16)]

    assert (inside(0.0, 3.75).loss_rate == 0).all()
    assert inside(15.0, 18.75).loss_rate.mean() > inside(3.75, 7.5).loss_rate.mean() + 0.1


def test_loss_model_coordinates_become_rate_and_model(tmp_path):
    """A grid over loss-model mappings (fig. 5) plots against the nominal loss, one line per
    system and loss model."""
    import json

    from simlab.report.curves import default_by, default_x, grouped_means, read_table

    rows = []
    for label in ("a", "b"):
        for spec in ({"model": "uniform", "p": 0.1}, {"model": "uniform", "p": 0.2},
                     {"model": "gilbert_elliott", "loss": 0.1, "burst": 3},
                     {"model": "gilbert_elliott", "p": 0.05, "r": 0.2, "loss_good": 0.0, "loss_bad": 1.0}):
            for rep in range(2):
                rows.append({"label": label, "network.forward.loss": json.dumps(spec), "repeat": rep,
                             "visqol": 3 + rep + (label == "b")})
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    df = read_table(path)
    assert default_x(df) == "network.forward.loss.rate"
    assert default_by(df) == ["label", "network.forward.loss.model"]
    assert sorted(df["network.forward.loss.rate"].unique()) == pytest.approx([0.1, 0.2])  # 0.05/0.25 = 0.2
    g = grouped_means(df, "network.forward.loss.rate", "visqol", default_by(df))
    assert set(g.line) == {"a, uniform", "a, gilbert_elliott", "b, uniform", "b, gilbert_elliott"}
    assert (g[g.line.str.startswith("a")]["mean"] == 3.5).all() and (g[g.line.str.startswith("b")]["mean"] == 4.5).all()


def _fig4_table() -> pd.DataFrame:
    """Fig. 4 style: a lossless batch; LargeSC sweeps quantizers, Opus its bitrate (each coordinate
    empty in the other system's rows); Opus has no token_accuracy."""
    rows = []
    for label, col, values in (("largesc", "system.quantizers", (1, 2, 4)),
                               ("opus", "system.bitrate_bps", (6000, 8000))):
        for v in values:
            for rep in range(3):
                bps = v * 1100 if label == "largesc" else v + rep
                rows.append({"label": label, "system": label, col: v, "repeat": rep, "payload_bps": bps,
                             "visqol": 2 + bps / 10000, "token_accuracy": 0.9 if label == "largesc" else np.nan})
    return pd.DataFrame(rows)


def test_without_a_loss_coordinate_x_is_the_payload_bitrate(capsys):
    df = _fig4_table()
    assert default_x(df) == "payload_bps"
    g = grouped_means(df, "payload_bps", "visqol", default_by(df))
    assert g.line.tolist() == ["largesc"] * 3 + ["opus"] * 2 and (g.n == 3).all()
    assert capsys.readouterr().err == ""
    # rows left out for want of a number are said, with their systems
    grouped_means(df, "payload_bps", "token_accuracy", ["label"])
    assert capsys.readouterr().err.strip() == ("simlab plot: note: token_accuracy vs payload_bps: left out 6 rows "
                                               "without a number in both (opus)")
    grouped_means(df, "system.quantizers", "visqol", [])
    assert "left out 6 rows without a number in both (opus)" in capsys.readouterr().err


def test_rows_of_different_systems_are_never_pooled():
    rows = [{"label": label, "network.headers": h, "network.forward.loss.p": p, "repeat": rep,
             "visqol": (3 if label == "a" else 4) + rep}
            for label in ("a", "b") for h in ("ipv4", "ipv6") for p in (0.0, 0.1) for rep in range(2)]
    df = pd.DataFrame(rows)
    for by in ([], ["network.headers"]):
        g = grouped_means(df, "network.forward.loss.p", "visqol", by)
        assert (g.n == 2).all(), by  # the repeats only
        assert set(g[g.line.str.contains("label=a")]["mean"]) == {3.5}
        assert set(g[g.line.str.contains("label=b")]["mean"]) == {4.5}
    g = grouped_means(df.assign(payload_bps=1000.0), "payload_bps", "visqol", ["network.headers"])
    assert (g.n == 2).all()  # x measured: the label makes points, it is not averaged over


def test_cli_help_says_the_defaults():
    parser = argparse.ArgumentParser(prog="simlab")
    sub = parser.add_subparsers(dest="command")
    text = add_parser(sub).format_help()
    assert "95% confidence" in text and "%%" not in text
    assert "default: the system label, and the loss model when it varies" in " ".join(text.split())


def test_missing_quality_trace_names_its_cause(synth, tmp_path):
    a, _ = synth  # metrics: [token_accuracy]
    texts = [t.get_text() for t in fig9_figure([load_run(a)]).axes[0].texts]
    assert texts == ["no visqol trace: add it to the scenario's metrics"]
    # the speech experiments' case: visqol listed, window metrics off
    out, _ = run(tmp_path, "eq24", ["duration_s=5", "metrics=[visqol]", "windows={metrics: false}"])
    texts = [t.get_text() for t in fig9_figure([load_run(out)]).axes[0].texts]
    assert texts == ["no visqol trace: the scenario has windows: {metrics: false} (whole-file scores only); "
                     "set it to true"]


def test_out_that_is_a_file_is_refused(synth, tmp_path):
    a, _ = synth
    afile = tmp_path / "afile"
    afile.write_text("x")
    t = tmp_path / "runs.csv"
    _fig4_table().to_csv(t, index=False)
    for paths in ([a], [t]):
        with pytest.raises(UserError, match="afile: output folder is a file"):
            plot_path(paths, afile)
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "runs.csv"]
