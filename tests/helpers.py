"""Small helpers shared by the tests."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from simlab.simulation import run_scenario
from simlab.scenario import apply_overrides, parse_scenario

ROOT = Path(__file__).resolve().parents[1]


def scenario(base: str | dict = "eq24", overrides: list[str] | None = None):
    if isinstance(base, str):
        path = ROOT / "scenarios" / f"{base}.yaml"
        data, base_dir = yaml.safe_load(path.read_text()), path.parent
    else:
        data, base_dir = base, ROOT
    return parse_scenario(apply_overrides(data, overrides or []), base_dir)


def run(tmp_path, base="eq24", overrides=None, name="out"):
    sc = scenario(base, overrides)
    out = tmp_path / name
    summary = run_scenario(sc, out)
    return out, summary


def tables(out: Path):
    return (pd.read_csv(out / "packets.csv"), pd.read_csv(out / "frames.csv"),
            pd.read_csv(out / "summary.csv").iloc[0])
