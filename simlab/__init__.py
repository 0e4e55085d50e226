"""simlab: a network simulation testbed for large-speech-model semantic communication.

The public API (docs/api.md): `load_scenario`, `run`, `run_batch`, `Scenario`, `Result`, and
`registry` for plugins. Names are imported on first use, so ``import simlab`` stays cheap (the
command line starts from it).
"""
from importlib import import_module

__all__ = ["Result", "Scenario", "load_scenario", "registry", "run", "run_batch"]

_WHERE = {"load_scenario": "simlab.scenario", "Scenario": "simlab.scenario", "run": "simlab.api",
          "run_batch": "simlab.api", "Result": "simlab.api"}


def __getattr__(name: str):
    if name == "registry":
        return import_module("simlab.registry")
    if name not in _WHERE:
        raise AttributeError(f"module 'simlab' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)


def __dir__():
    return sorted(__all__)
