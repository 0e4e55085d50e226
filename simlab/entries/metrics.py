"""simlab's quality metrics (implemented in `simlab.metrics`), each a registry entry."""
from __future__ import annotations

import math

from simlab.metrics.dnsmos_score import COLUMNS as DNSMOS_COLUMNS, dnsmos
from simlab.metrics.pitch import logf0_rmse
from simlab.metrics.plcmos_score import plcmos
from simlab.metrics.tokens import token_accuracy_metric
from simlab.metrics.visqol_score import visqol
from simlab.metrics.wer import wer
from simlab.registry import MetricEntry

MOS = (1.0, 5.0)  # the MOS scales (ViSQOL MOS-LQO, PLCMOS, DNSMOS)

VISQOL = MetricEntry("visqol", visqol, ("visqol",), scale=MOS)
PLCMOS = MetricEntry("plcmos", plcmos, ("plcmos",), scale=MOS)
DNSMOS = MetricEntry("dnsmos", dnsmos, DNSMOS_COLUMNS, scale=MOS)
LOGF0_RMSE = MetricEntry("logf0_rmse", logf0_rmse, ("logf0_rmse_cents", "vuv_error"), higher_is_better=False,
                         scale=(0.0, math.inf))
WER = MetricEntry("wer", wer, ("wer", "wer_edits", "wer_ref_words", "wer_hyp_words"), windowed=False,
                  higher_is_better=False, scale=(0.0, math.inf))
TOKEN_ACCURACY = MetricEntry("token_accuracy", token_accuracy_metric, ("token_accuracy",), windowed=False,
                             scale=(0.0, 1.0))
