"""Quality against total and payload bitrate (issue 15's ladder): panels side by side, a line per
system label and loss condition, log x; checked on a synthetic runs table, the figure's data."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from simlab.errors import UserError
from simlab.report.bitrate_panels import bitrate_figure, ladder_defaults, panel_data
from simlab.report.curves import read_table
from simlab.report.plots import plot_path

LOSS = "network.forward.loss"
RATE = f"{LOSS}.rate"
HEADERS_BPS = {"vocoder": 8000.0, "ltm": 2000.0}  # 40 B per 40 ms packet; per 160 ms packet


def _ladder_rows() -> list[dict]:
    """Two systems, each swept over its own setting, at 0/10/20 % Gilbert-Elliott loss, 2 files each:
    quality = 1 + log10(payload / 100) minus 2 per unit of loss, the second file 0.2 higher."""
    rows = []
    for loss in (0.0, 0.1, 0.2):
        spec = json.dumps({"burst": 3, "loss": loss, "model": "gilbert_elliott"}, separators=(",", ":"))
        for label, key, settings in (("vocoder", "system.mode", [700, 1200, 3200]),
                                     ("ltm", "system.quantizers", [1, 2, 4, 8])):
            for s in settings:
                payload = float(s if label == "vocoder" else 150 * s)
                for i, audio in enumerate(("a.flac", "b.flac")):
                    q = 1 + np.log10(payload / 100) - 2 * loss + 0.2 * i
                    rows.append({LOSS: spec, key: s, "label": label, "audio": audio, "repeat": 0,
                                 "status": "ok", "payload_bps": payload + i,  # per-file jitter in x
                                 "total_bps": payload + i + HEADERS_BPS[label],
                                 "visqol": q, "wer": 0.1 + loss})
    return rows


@pytest.fixture
def ladder(tmp_path):
    path = tmp_path / "runs.csv"
    pd.DataFrame(_ladder_rows()).to_csv(path, index=False)
    return path


def test_a_ladder_table_defaults_to_both_bitrates_and_lines_by_label_and_loss(ladder):
    df = read_table(ladder)
    assert ladder_defaults(df) == (["total_bps", "payload_bps"], ["label", RATE])
    # a loss sweep of fixed systems (fig. 5) or a lossless ladder (fig. 4) keeps curves' defaults
    assert ladder_defaults(df[df["label"] == "vocoder"].drop(columns="system.quantizers")) is not None
    fixed = df[df["system.mode"].isin([1200]) | df["system.quantizers"].isin([2])]
    assert ladder_defaults(fixed) is None
    assert ladder_defaults(df[df[RATE] == 0.0]) is None


def test_panel_points_are_means_per_setting_split_by_loss(ladder):
    d = panel_data(read_table(ladder), "total_bps", "visqol", ["label", RATE])
    assert list(dict.fromkeys(d.condition)) == ["0 % loss", "10 % loss", "20 % loss"]
    assert len(d) == 3 * (3 + 4) and (d.n == 2).all()
    v = d[(d.series == "vocoder") & (d.condition == "10 % loss")]
    assert v.x.tolist() == pytest.approx([8700.5, 9200.5, 11200.5])  # mean of the two files' totals
    assert v["mean"].tolist() == pytest.approx([1 + np.log10(p / 100) - 0.2 + 0.1 for p in (700, 1200, 3200)],
                                               abs=0.01)
    ltm0 = d[(d.series == "ltm") & (d.condition == "0 % loss")]
    assert ltm0.x.tolist() == pytest.approx([2150.5, 2300.5, 2600.5, 3200.5])


def test_figure_draws_a_row_per_metric_and_a_column_per_bitrate(ladder):
    df = read_table(ladder)
    fig = bitrate_figure(df, ["total_bps", "payload_bps"], ["visqol", "wer"], ["label", RATE])
    axes = fig.axes
    assert len(axes) == 4
    assert [ax.get_xlabel().split()[0] for ax in axes] == ["total", "payload", "total", "payload"]
    colours, styles = {}, {}
    for ax in axes:
        assert len(ax.lines) == 2 * 3  # a line per system and loss condition
        assert ax.get_xscale() == ("log" if "payload" in ax.get_xlabel() else "linear")  # 150..3200 vs 2150..11200
        for ln in ax.lines:
            series, cond = ln.get_label().split(", ")
            colours.setdefault(series, set()).add(to_hex(ln.get_color()))
            styles.setdefault(cond, set()).add(ln.get_linestyle())
    assert all(len(c) == 1 for c in colours.values()) and len(set.union(*colours.values())) == 2
    assert styles == {"0 % loss": {"-"}, "10 % loss": {"--"}, "20 % loss": {":"}}
    payload_visqol = axes[1]
    ln = next(ln for ln in payload_visqol.lines if ln.get_label() == "ltm, 20 % loss")
    assert np.allclose(ln.get_xdata(), [150.5, 300.5, 600.5, 1200.5])
    assert np.allclose(ln.get_ydata(), [1 + np.log10(p / 100) - 0.4 + 0.1 for p in (150, 300, 600, 1200)], atol=0.01)
    wer = next(ln for ln in axes[3].lines if ln.get_label() == "vocoder, 20 % loss")
    assert np.allclose(wer.get_ydata(), 0.3)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["ltm (n=2)", "vocoder (n=2)", "0 % loss", "10 % loss", "20 % loss"]  # lowest bitrate first


def test_plot_path_draws_the_ladder_with_no_options(ladder, tmp_path):
    out = tmp_path / "figs"
    written = plot_path([ladder], out)
    assert sorted(p.name for p in written) == ["runs_visqol_wer_vs_total_bps_payload_bps.pdf",
                                               "runs_visqol_wer_vs_total_bps_payload_bps.png"]
    assert all(p.stat().st_size > 0 for p in written)
    # one x column: the ordinary curves figure, against the loss (the default without a ladder)
    assert [p.name for p in plot_path([ladder], out, x="payload_bps", y="visqol")] == [
        "runs_visqol_vs_payload_bps.png", "runs_visqol_vs_payload_bps.pdf"]


def test_two_x_columns_on_a_loss_sweep_split_lines_by_loss(tmp_path):
    rows = [r for r in _ladder_rows() if r.get("system.mode") == 1200 or r.get("system.quantizers") == 2]
    path = tmp_path / "fig5.csv"
    pd.DataFrame(rows).drop(columns=["system.mode", "system.quantizers"]).to_csv(path, index=False)
    assert ladder_defaults(read_table(path)) is None
    written = plot_path([path], tmp_path, x="total_bps,payload_bps", y="visqol")
    assert written[0].name == "fig5_visqol_vs_total_bps_payload_bps.png"
    fig = bitrate_figure(read_table(path), ["total_bps", "payload_bps"], ["visqol"])  # default lines
    assert sorted(ln.get_label() for ln in fig.axes[0].lines) == sorted(
        f"{s}, {c} % loss" for s in ("vocoder", "ltm") for c in (0, 10, 20))
    with pytest.raises(UserError, match="lacks column"):
        plot_path([path], tmp_path, x="total_bps,nope_bps")
    with pytest.raises(UserError, match="--x"):
        plot_path([path], tmp_path, x=",")


def test_a_dozen_systems_get_a_dozen_colours():
    rows = [{**r, "label": f"{r['label']}{i}"} for r in _ladder_rows() for i in range(6)]
    fig = bitrate_figure(pd.DataFrame(rows), ["payload_bps"], ["visqol"], ["label", LOSS])
    pairs = {(ln.get_label().split(", ")[0], to_hex(ln.get_color()), ln.get_marker()) for ln in fig.axes[0].lines}
    assert len(pairs) == 12 and len({c for _, c, _ in pairs}) == 12


def test_points_at_zero_bitrate_are_named_off_the_log_scale(capsys):
    rows = _ladder_rows() + [{**r, "system.quantizers": 0, "payload_bps": 0.0, "total_bps": 80.0}
                             for r in _ladder_rows() if r.get("system.quantizers") == 1]
    fig = bitrate_figure(pd.DataFrame(rows), ["total_bps", "payload_bps"], ["visqol"], ["label", LOSS])
    assert [ax.get_xscale() for ax in fig.axes] == ["log", "log"]
    assert "visqol vs payload_bps: 3 points at x <= 0 are off the log scale (ltm)" in capsys.readouterr().err
