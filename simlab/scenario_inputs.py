"""What a valid scenario refers to: its loss models, audio, latency profile and metrics.

`simlab.scenario` checks the keys and values of a scenario; `check_inputs` checks what those
values name, which the key checks cannot see (a trace file that is missing, a Gilbert-Elliott
channel whose loss and burst need p > 1, an unknown metric). `simlab check` and `run_scenario`
both call it before anything is simulated or written, so check passes exactly what a run
accepts, and a run fails in a second, not after its simulation. No model is loaded here.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from simlab import registry
from simlab.errors import UserError
from simlab.scenario import Scenario


def check_inputs(sc: Scenario) -> None:
    """`UserError` (one line, naming the key) for the first input the run could not use."""
    _check_system(sc)
    _check_losses(sc)
    _check_links(sc)
    _check_audio(sc)
    _check_profile(sc)
    _check_metrics(sc)
    _check_outputs(sc)
    from simlab.run_memory import check_memory

    check_memory(sc)  # last: `flows` is valid, but this machine may not hold that many calls


def _check_outputs(sc: Scenario) -> None:
    if sc.outputs.format == "parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise UserError("outputs.format: parquet needs pyarrow, which is not installed "
                            "(pip install 'simlab[parquet]')")


def input_paths(sc: Scenario) -> list[Path]:
    """The scenario's folder and the files a run reads from it: an output folder that is
    replaced must hold none of them."""
    paths = [Path(sc.base_dir)]
    audio = sc.audio_path()
    if audio is not None:
        paths.append(audio)
    paths += [sc.path(f) for f in registry.plugin_files("systems", sc.system)]
    for link in (sc.network.forward, sc.network.reverse):
        paths += [sc.path(f) for f in registry.plugin_files("links", link.link)]
        for loss in [link.loss, *(ph.loss for ph in link.schedule)]:
            paths += [sc.path(f) for f in registry.plugin_files("channels", loss)]
    if sc.compute.profile is not None:
        from simlab.latency import resolve_profile_path

        try:  # a shipped profile's name (`cpu`) is no file of the scenario's folder
            paths.append(resolve_profile_path(sc.compute.profile, sc.base_dir))
        except UserError:
            pass  # check_inputs says so, in its own words
    if sc.transcript is not None:
        paths.append(sc.path(sc.transcript))
    return paths


def _check_system(sc: Scenario) -> None:
    entry = registry.system(sc.system)
    if entry.check is not None:
        try:
            entry.check(sc.system, sc)
        except ValueError as exc:
            raise UserError(f"system: {exc}") from None


def _check_losses(sc: Scenario) -> None:
    # Building the channels is the check: the same code, the same messages as the run's own.
    from simlab.build import loss_schedule

    for where, link in (("network.forward", sc.network.forward), ("network.reverse", sc.network.reverse)):
        loss_schedule(link, np.random.default_rng(0), sc.path, where)


def _check_links(sc: Scenario) -> None:
    # Building the link models is the check (a trace file that is missing or malformed, settings
    # the model cannot take), with the run's own messages; nothing is simulated.
    import simpy

    from simlab.build import make_link

    for where, link in (("network.forward", sc.network.forward), ("network.reverse", sc.network.reverse)):
        make_link(simpy.Environment(), link, np.random.default_rng(0), np.random.default_rng(0), sc.path, where)


def _check_audio(sc: Scenario) -> None:
    from simlab.audio import check_audio

    path = sc.audio_path()  # the first of a list that exists; UserError when none does
    if path is None:
        if registry.system(sc.system).needs_audio:
            raise UserError(f"audio: system {sc.system.kind} needs an audio file")
        return
    try:
        check_audio(path)
    except UserError as exc:
        raise UserError(f"audio: {exc}") from None


def _check_profile(sc: Scenario) -> None:
    if sc.compute.timing != "profile" or sc.compute.profile is None:
        return
    from simlab.build import system_key
    from simlab.latency import profile_entry, resolve_profile_path

    path = resolve_profile_path(sc.compute.profile, sc.base_dir)
    try:
        profile_entry(path, system_key(sc.system))
    except UserError as exc:
        raise UserError(f"compute.profile: {exc}") from None


def _check_metrics(sc: Scenario) -> None:
    from simlab.metrics.asr import get_recognizer

    try:  # always, whether or not wer is asked for: a misspelt name is an error either way
        get_recognizer(sc.recognizer)
    except UserError as exc:
        raise UserError(f"recognizer: {exc}") from None
    if not sc.metrics:
        return  # the metrics package takes seconds to import: only when the scenario scores
    from simlab.metrics.registry import check_names
    from simlab.metrics.transcript import resolve_transcript

    try:
        names = check_names(list(sc.metrics))
    except UserError as exc:
        raise UserError(f"metrics: {exc}") from None
    if "wer" in names:  # the transcript serves wer alone
        resolve_transcript(sc, sc.audio_path())
