"""The ``emodel`` metric (ITU-T G.107's R and MOS-CQE from the run's measured delay and loss:
`simlab.metrics.emodel_run`), a registry entry scored from the run's tables, not its audio."""
from __future__ import annotations

from simlab.metrics.emodel_run import COLUMNS, emodel
from simlab.registry import MetricEntry

EMODEL = MetricEntry("emodel", emodel, COLUMNS, scores_tables=True)
