"""`simlab batch`: the subcommand's options, and the function it calls."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``batch`` on the ``simlab`` command's subparsers."""
    b = subparsers.add_parser("batch", help="run an experiment: a sweep of scenarios, resumable",
                              description="Expand an experiment file into runs and run those not yet in "
                                          "OUT/runs.csv. Rerun the same command to resume.")
    b.add_argument("experiment", help="experiment file (experiments/*.yaml)")
    b.add_argument("--out", help="output folder (default results/<experiment name>)")
    b.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="worker processes (local pool, or LocalCluster workers with --dask local; default 1)")
    b.add_argument("--dask", metavar="ADDRESS|local",
                   help="run on a Dask scheduler at ADDRESS (tcp://host:8786), or 'local' for a LocalCluster "
                        "on loopback with N single-threaded workers")
    b.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a top-level experiment key (audio_limit=2, repeats=1, seed=3)")
    b.add_argument("--only", action="append", default=[], metavar="COORD=VALUE",
                   help="run only the runs with this coordinate value (label=opus, repeat=0); repeatable")
    b.add_argument("--retry-failed", action="store_true", help="run again the runs recorded as errors")
    b.add_argument("--keep-other-runs", action="store_true",
                   help="write into an OUT whose runs.csv holds runs this experiment does not have (an "
                        "earlier version of it, another experiment) and pool them on purpose; refused otherwise")
    b.add_argument("--dry-run", action="store_true", help="list the runs (coordinates, seed, key) and stop")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(fn=main)
    return b


def _only(items: list[str]) -> dict:
    from simlab.errors import UserError
    from simlab.yaml_file import load_yaml

    out = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise UserError(f"--only {item}: expected COORDINATE=VALUE")
        out[name] = load_yaml(raw, f"--only {item}")
    return out


def main(args: argparse.Namespace) -> int:
    """0: every run ok; 1: the batch completed but some runs failed (see runs.csv, OUT/errors/)."""
    from simlab.batch.experiment import load_experiment
    from simlab.batch.expand import expand
    from simlab.batch.runner import run_batch, select

    exp = load_experiment(args.experiment, getattr(args, "set", []))
    only = _only(getattr(args, "only", []))
    if args.dry_run:
        runs = select(expand(exp), only)
        for r in runs:
            coords = " ".join(f"{k}={v}" for k, v in r.coords.items())
            print(f"{r.key} seed={r.seed} {coords}{' [GPU]' if r.needs_gpu else ''}")
        print(f"{len(runs)} runs", file=sys.stderr)
        return 0
    out = Path(args.out) if args.out is not None else Path("results") / exp.name
    # SIGTERM arrives as an interrupt (simlab.cli_run): run_batch stops the workers, the table stays whole
    result = run_batch(exp, out, jobs=args.jobs, dask=args.dask, progress=not args.no_progress,
                       retry_failed=args.retry_failed, only=only,
                       keep_other_runs=getattr(args, "keep_other_runs", False))
    print(f"{exp.name}: {result.line()}")
    return 1 if result.failed else 0
