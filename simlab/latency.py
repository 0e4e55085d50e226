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
