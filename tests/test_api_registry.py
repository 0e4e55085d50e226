"""simlab.registry from Python: an entry registered at run time is part of the scenario format
(validation, JSON Schema), runs, and leaves with unregister; built-ins are always there."""
from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pytest

import simlab
from channels.base import LossModel
from simlab import registry
from simlab.errors import UserError
from simlab.scenario import json_schema
from simlab.spec import Strict, at_least, in_range

class Blackout(LossModel):
    """Every packet lost."""

    def _fill(self, n):
        return np.ones(n, dtype=bool)

    @property
    def mean_loss(self):
        return 1.0


class BlackoutSpec(Strict):
    model: Literal["test_blackout"]
    note: str = ""


class CountingSpec(Strict):
    kind: Literal["test_counting"]
    quantizers: Annotated[int, in_range(1, 8)] = 2
    spare: Annotated[int, at_least(0)] = 0


def _counting(spec, ctx):
    from simlab.actors.synthetic import SyntheticSystem

    return SyntheticSystem(spec.quantizers, 0, ctx.rng)


@pytest.fixture
def registered():
    """A loss model and a system registered for one test, and forgotten after it."""
    loss = registry.ChannelEntry("test_blackout", BlackoutSpec, lambda spec, rng, resolve: Blackout(),
                                 nominal_loss=lambda spec: 1.0)
    system = registry.SystemEntry("test_counting", CountingSpec, _counting, needs_audio=False)
    registry.register(loss)
    registry.register(system)
    yield loss, system
    registry.unregister("channels", "test_blackout")
    registry.unregister("systems", "test_counting")


def _schema_names(schema: dict, tag: str) -> set[str]:
    found = set()

    def walk(node):
        if isinstance(node, dict):
            prop = node.get("properties", {}).get(tag)
            if isinstance(prop, dict) and "const" in prop:
                found.add(prop["const"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(schema)
    return found


def test_a_registered_loss_model_and_system_are_part_of_the_format(registered):
    assert "test_blackout" in _schema_names(json_schema(), "model")
    assert "test_counting" in _schema_names(json_schema(), "kind")
    sc = simlab.load_scenario({"duration_s": 2, "system": {"kind": "test_counting", "quantizers": 3},
                               "network": {"forward": {"loss": {"model": "test_blackout"}}}})
    res = simlab.run(sc)
    forward = res.packets[res.packets.kind != "feedback"]
    assert len(forward) == 13 and forward.lost.all() and res.summary["loss_rate"] == 1.0
    assert res.summary["system"] == "test_counting" and (res.frames.tokens_sent == 3).all()
    # Their specs are checked like simlab's own.
    with pytest.raises(UserError, match="network.forward.loss.nots: unknown key; did you mean 'note'"):
        simlab.load_scenario({"network": {"forward": {"loss": {"model": "test_blackout", "nots": ""}}}})
    with pytest.raises(UserError, match=r"system.quantizers: 9 is not in \[1, 8\]"):
        simlab.load_scenario({"system": {"kind": "test_counting", "quantizers": 9}})


class InfoSystem:
    """The synthetic system with frame columns of its own that are not strings."""

    def __new__(cls, rng):
        from simlab.actors.base import Encoded
        from simlab.actors.synthetic import SyntheticSystem

        class _Info(SyntheticSystem):
            def transmit(self, frame, audio, p_hat, timer):
                enc = super().transmit(frame, audio, p_hat, timer)
                return Encoded(enc.frame, enc.unit_bits, enc.copies, enc.side_bits, enc.payload,
                               {"units": 8, "ratio": frame / 4, "even": frame % 2 == 0})

        return _Info(8, 0, rng)


class InfoSpec(Strict):
    kind: Literal["test_info"]


def test_system_columns_of_any_type_are_equal_in_memory_and_on_disk(tmp_path):
    registry.register(registry.SystemEntry("test_info", InfoSpec, lambda spec, ctx: InfoSystem(ctx.rng),
                                           needs_audio=False))
    try:
        sc = simlab.load_scenario({"duration_s": 1, "system": {"kind": "test_info"}})
        mem, disk = simlab.run(sc), simlab.run(sc, out=tmp_path / "run")
    finally:
        registry.unregister("systems", "test_info")
    assert list(disk.frames["units"][:2]) == ["8", "8"] and list(disk.frames["ratio"][:2]) == ["0.0", "0.25"]
    assert mem.frames.equals(disk.frames)


def test_unregister_removes_an_entry(registered):
    registry.unregister("channels", "test_blackout")
    registry.unregister("systems", "test_counting")
    assert "test_blackout" not in _schema_names(json_schema(), "model")
    assert "test_counting" not in _schema_names(json_schema(), "kind")
    with pytest.raises(UserError, match="network.forward.loss.model: 'test_blackout' is not one of"):
        simlab.load_scenario({"network": {"forward": {"loss": {"model": "test_blackout"}}}})
    with pytest.raises(UserError, match="system.kind: 'test_counting' is not one of"):
        simlab.load_scenario({"system": {"kind": "test_counting"}})
    registry.unregister("channels", "test_blackout")  # forgetting what is not there is no error


def test_the_builtins_are_known_and_nothing_of_a_test_leaks():
    assert {"uniform", "gilbert_elliott", "trace"} <= set(registry.entries("channels"))
    assert {"synthetic", "opus", "aac", "largesc"} <= set(registry.entries("systems"))
    assert "test_blackout" not in registry.entries("channels")
    assert "test_counting" not in registry.entries("systems")


def test_register_refuses_a_known_name_and_a_malformed_entry(registered):
    loss, system = registered
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.ChannelEntry("uniform", registry.get("channels", "uniform").spec, loss.factory))
    with pytest.raises(ValueError, match="'test_blackout' is already registered"):
        registry.register(loss)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.SystemEntry("synthetic", registry.get("systems", "synthetic").spec, _counting))
    with pytest.raises(ValueError, match=r"needs a field model: Literal\['other'\]"):
        registry.register(registry.ChannelEntry("other", BlackoutSpec, loss.factory))
    with pytest.raises(ValueError, match="is not a simlab registry entry"):
        registry.register(object())
    assert registry.get("channels", "uniform").factory is not loss.factory  # the built-in stays
    registry.register(loss, replace=True)  # replacing is asked for explicitly
    assert registry.get("channels", "test_blackout") is loss
