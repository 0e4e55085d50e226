"""A sweep in a Python loop: loss p x header format on the eq. (24) scenario, one summary row
per run collected into a pandas DataFrame.

    python examples/sweep.py                      # prints the table, writes nothing
    python examples/sweep.py --out /tmp/sweep     # also each run's folder and sweep.csv there
    python examples/sweep.py --duration 10        # shorter calls

The scenario is the synthetic system (tokens from the seed, no audio, no models), so the whole
sweep takes a few seconds. `simlab batch` does the same from an experiment file, resumably and
in parallel (docs/batch.md); a loop like this one is for when the next point depends on the last
or the analysis wants to stay in one script.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import simlab

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent / "scenarios" / "eq24.yaml"  # found from the script, whatever the working folder

LOSSES = [0.0, 0.05, 0.1, 0.2]
HEADERS = ["ipv4", "rohc"]
COLUMNS = ["headers", "p", "packets_sent", "packets_lost", "loss_rate", "payload_bps", "header_bps", "ctrl_bps",
           "total_bps", "eq24_total_bps", "latency_mean_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None,
                    help="a folder for each run's outputs (<headers>-p<p>/) and sweep.csv; default: write nothing")
    ap.add_argument("--duration", type=float, default=60.0, help="call length in seconds (default 60)")
    args = ap.parse_args()

    rows = []
    for headers in HEADERS:
        for p in LOSSES:
            sc = simlab.load_scenario(SCENARIO, {"network.headers": headers, "network.forward.loss.p": p,
                                                 "duration_s": args.duration})
            out = args.out / f"{headers}-p{p:g}" if args.out is not None else None
            res = simlab.run(sc, out=out, force=True)  # out=None: in memory only
            rows.append({"headers": headers, "p": p, **res.summary})

    table = pd.DataFrame(rows)[COLUMNS]
    if args.out is not None:
        table.to_csv(args.out / "sweep.csv", index=False)

    pd.set_option("display.width", 120)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    # The headers cost the same whatever the loss: every packet pays them when it is sent.
    print()
    print("total_bps by headers (rows) and p (columns):")
    print(table.pivot(index="headers", columns="p", values="total_bps").to_string(float_format=lambda x: f"{x:.1f}"))


if __name__ == "__main__":
    main()
