"""Latency profiles: per-stage compute time of a system on a device, measured by
`simlab calibrate` or taken from a paper, read by ``compute.timing: profile``."""
from __future__ import annotations

from pathlib import Path

from simlab.errors import UserError
from simlab.yaml_file import read_yaml_file

PROFILES_DIR = Path(__file__).with_name("data") / "profiles"


def resolve_profile_path(name: str, base_dir: str | Path = ".") -> Path:
    """A profile file: a path (relative to the scenario), or the name of a shipped one."""
    try:
        p = Path(name).expanduser()
    except RuntimeError:  # ~name of a user this machine does not know: an ordinary name then
        p = Path(name)
    if not p.is_absolute():
        p = Path(base_dir) / p
    if p.is_file():
        return p
    shipped = PROFILES_DIR / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    known = ", ".join(sorted(q.stem for q in PROFILES_DIR.glob("*.yaml")))
    raise UserError(f"compute.profile: {name} is neither a file nor a shipped profile ({known})")


def read_profile(path: Path) -> dict:
    """A latency profile file: a mapping with a ``systems`` mapping, else `UserError`."""
    data = read_yaml_file(path)
    if not isinstance(data, dict) or not isinstance(data.get("systems"), dict):
        raise UserError(f"{path}: not a latency profile (it needs a 'systems' mapping)")
    return data


def profile_entry(path: Path, system_key: str) -> dict:
    """The stages the profile at ``path`` times for ``system_key``, else `UserError`."""
    data = read_profile(path)
    # "largesc/small" falls back to "largesc": a profile may time a system whatever its weights.
    entry = data["systems"].get(system_key) or data["systems"].get(system_key.split("/")[0])
    if not isinstance(entry, dict):
        raise UserError(f"{path}: latency profile has no system {system_key!r} "
                        f"(it has: {', '.join(map(str, data['systems'])) or 'none'})")
    return entry


def stage_costs(path: Path, system_key: str, stages) -> dict[str, float]:
    """Per-call seconds (the median) for each stage of ``system_key``."""
    entry = profile_entry(path, system_key)
    out = {}
    for stage in stages:
        s = entry.get(stage)
        if not isinstance(s, dict) or not isinstance(s.get("median_s"), (int, float)) or s["median_s"] < 0:
            raise UserError(f"{path}: systems.{system_key}.{stage}.median_s is missing or not a number >= 0")
        out[stage] = float(s["median_s"])
    return out


def batch_stage_costs(path: Path, system_key: str, stages, batch: int) -> dict[str, float]:
    """Seconds one batch of ``batch`` calls takes, per stage, from the profile's per-batch entries
    (``<stage>.batch.<size>.median_s``, written by ``simlab calibrate --batch``): the entry for that
    size; between two measured sizes (size 1 is the per-frame entry), linear interpolation; above
    the largest, that size's time scaled up in proportion (no further gain assumed). A stage with
    no per-batch entry is left out: the caller charges its per-frame entry (a batch then costs
    what one frame does, which assumes the device has width to spare)."""
    entry = profile_entry(path, system_key)
    out = {}
    for stage in stages:
        s = entry.get(stage)
        table = s.get("batch") if isinstance(s, dict) else None
        if not table:
            continue
        where = f"{path}: systems.{system_key}.{stage}.batch"
        if not isinstance(table, dict):
            raise UserError(f"{where} is not a mapping of batch size to timings")
        sizes = {}
        for k, v in table.items():
            if (not isinstance(k, int) or k < 1 or not isinstance(v, dict)
                    or not isinstance(v.get("median_s"), (int, float)) or v["median_s"] < 0):
                raise UserError(f"{where}.{k}: expected a batch size >= 1 with median_s >= 0")
            sizes[k] = float(v["median_s"])
        if isinstance(s.get("median_s"), (int, float)):
            sizes.setdefault(1, float(s["median_s"]))
        out[stage] = _interpolate(sizes, batch)
    return out


def _interpolate(sizes: dict[int, float], batch: int) -> float:
    if batch in sizes:
        return sizes[batch]
    below = [k for k in sizes if k < batch]
    above = [k for k in sizes if k > batch]
    if below and above:
        lo, hi = max(below), min(above)
        return sizes[lo] + (sizes[hi] - sizes[lo]) * (batch - lo) / (hi - lo)
    ref = max(below) if below else min(above)
    return sizes[ref] * batch / ref
