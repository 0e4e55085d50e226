"""Curves from a runs table with few samples: no band under 5 values (the n is written at the
point instead), bands clipped to the metric's scale, n in the legend, corpus WER beside the mean."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simlab.report.curves import MIN_BAND_N, curves_figure, grouped_means, scale_of

X = "network.forward.loss.p"


def _table() -> pd.DataFrame:
    """Two systems at two loss rates: 2 repeats each for `a`, 6 spread ones at p=0.1 for `b`."""
    rows = []
    for p, vals in ((0.0, [4.5, 4.9]), (0.1, [1.2, 2.0])):
        rows += [{"label": "a", X: p, "repeat": i, "visqol": v, "plcmos": v - 0.4} for i, v in enumerate(vals)]
    for p, vals in ((0.0, [4.4, 4.5, 4.6, 4.5, 4.4, 4.6]), (0.1, [1.0, 1.1, 4.9, 5.0, 1.0, 5.0])):
        rows += [{"label": "b", X: p, "repeat": i, "visqol": v, "plcmos": v} for i, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_scales_come_from_the_metric_entries():
    assert scale_of("visqol") == scale_of("plcmos") == scale_of("dnsmos_ovrl") == (1.0, 5.0)
    assert scale_of("wer") == (0.0, np.inf) and scale_of("token_accuracy") == (0.0, 1.0)
    assert scale_of("payload_bps") == (-np.inf, np.inf)


def test_bands_are_clipped_to_the_scale():
    g = grouped_means(_table(), X, "visqol", ["label"])
    a0 = g[(g.line == "a") & (g.x == 0.0)].iloc[0]
    assert a0.n == 2 and a0.hi == 5.0  # mean 4.7 + t(0.975, 1) * 0.28 / sqrt 2 = 7.2, clipped
    b1 = g[(g.line == "b") & np.isclose(g.x, 0.1)].iloc[0]
    assert b1.n == 6 and (b1.lo, b1.hi) == (1.0, 5.0)  # 3.0 ± 2.26 clipped at both ends
    assert (g.lo >= 1.0).all() and (g.hi <= 5.0).all()


def test_few_values_draw_points_with_their_n_and_the_legend_says_n():
    fig = curves_figure(_table(), X, ["visqol", "plcmos"], ["label"])
    for ax in fig.axes[:2]:
        assert [ln.get_label() for ln in ax.lines] == ["a (n=2)", "b (n=6)"]
        assert [t.get_text() for t in ax.legend_.get_texts()] == ["a (n=2)", "b (n=6)"]
        notes = sorted((t.get_text(), t.xy) for t in ax.texts)
        a = ax.lines[0]
        assert notes == sorted(("n=2", (x, y)) for x, y in zip(a.get_xdata(), a.get_ydata()))
        assert len(ax.collections) == 1  # b's band only: a's 2 values get none
        band = ax.collections[0].get_paths()[0].vertices
        assert band[:, 1].min() >= 1.0 and band[:, 1].max() <= 5.0


def test_a_line_mixing_sample_sizes_bands_only_where_there_are_enough():
    df = _table()
    df = df[~((df.label == "b") & (df[X] == 0.0) & (df.repeat >= 3))]  # b: 3 values at p=0, 6 at p=0.1
    fig = curves_figure(df, X, ["visqol"], ["label"])
    ax = fig.axes[0]
    assert [ln.get_label() for ln in ax.lines] == ["a (n=2)", "b (n=3-6)"]
    assert sorted(t.get_text() for t in ax.texts) == ["n=2", "n=2", "n=3"]
    assert MIN_BAND_N == 5


def test_wer_panel_shows_corpus_wer_per_point():
    # one hallucinated run (WER 14.5 on a 10-word utterance) beside a sane one on 30 words
    df = pd.DataFrame({"label": ["a", "a", "a", "a"], X: [0.2, 0.2, 0.0, 0.0], "repeat": [0, 1, 0, 1],
                       "wer": [14.5, 0.1, 0.0, 0.1], "wer_edits": [145, 3, 0, 3], "wer_ref_words": [10, 30, 10, 30]})
    g = grouped_means(df, X, "wer", ["label"])
    assert g.corpus.tolist() == [pytest.approx(3 / 40), pytest.approx(148 / 40)]
    assert g["mean"].tolist() == [pytest.approx(0.05), pytest.approx(7.3)]
    assert (g.lo >= 0).all()  # WER's scale starts at 0
    ax = curves_figure(df, X, ["wer"], ["label"]).axes[0]
    mean_ln, corpus_ln = ax.lines
    assert corpus_ln.get_label() == "a, corpus WER"
    assert np.allclose(corpus_ln.get_ydata(), [3 / 40, 148 / 40])
    # without the counts (an older table) there is no corpus line
    ax = curves_figure(df.drop(columns=["wer_edits"]), X, ["wer"], ["label"]).axes[0]
    assert len(ax.lines) == 1
