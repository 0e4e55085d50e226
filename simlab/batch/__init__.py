"""Sweeps: experiment files -> many scenario runs, resumable, on a local pool or a Dask cluster.

``load_experiment`` reads an experiment, ``expand`` lists its runs (seeds from coordinates,
keys from resolved scenarios), ``run_batch`` runs what is not done into DIR/runs.csv and
DIR/runs/<key>/. See docs/batch.md.
"""
from simlab.batch.expand import Run, expand, run_key, run_seed
from simlab.batch.experiment import Experiment, load_experiment, parse_experiment
from simlab.batch.runner import BatchResult, run_batch

__all__ = ["BatchResult", "Experiment", "Run", "expand", "load_experiment", "parse_experiment", "run_batch",
           "run_key", "run_seed"]
