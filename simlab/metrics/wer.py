"""Word error rate of the received speech against a transcript, through an offline recogniser.

Both texts are normalised the same way before ``jiwer`` counts edits: lower case, hyphens
to spaces, punctuation removed (so "don't" and "DONT" match), whitespace collapsed. Numbers
are not spelled out: a recogniser that writes "1989" for "nineteen eighty nine" pays for it.
"""
from __future__ import annotations

from simlab.errors import UserError
from simlab.metrics.asr import get_recognizer
from simlab.metrics.base import MetricInput, Skipped, need


def _normaliser():
    jiwer = need("jiwer", "jiwer")
    return jiwer.Compose([
        jiwer.ToLowerCase(),
        jiwer.SubstituteRegexes({r"[-\u2010\u2013\u2014]": " "}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ])


def normalise(text: str) -> list[str]:
    """The words WER compares, after the normalisation above."""
    return _normaliser()(text)[0] if text.strip() else []


def word_error_rate(transcript: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words in the transcript, after normalisation."""
    jiwer = need("jiwer", "jiwer")
    if not normalise(transcript):
        raise UserError("transcript has no words after normalisation")
    if not normalise(hypothesis):
        return 1.0  # every reference word deleted
    tr = _normaliser()
    return float(jiwer.wer(transcript, hypothesis, reference_transform=tr, hypothesis_transform=tr))


def wer(inp: MetricInput) -> dict[str, float | str]:
    """``wer``, ``wer_hypothesis`` (what the recogniser heard) and ``wer_recognizer``."""
    if inp.transcript is None:
        raise Skipped("skipped: no transcript given")
    recognizer = get_recognizer(inp.recognizer)
    hypothesis = recognizer.transcribe(inp.received)
    return {"wer": word_error_rate(inp.transcript, hypothesis),
            "wer_hypothesis": hypothesis, "wer_recognizer": recognizer.settings()}
