"""Word error rate of the received speech against a transcript, through an offline recogniser.

Both texts are normalised the same way before ``jiwer`` counts edits: lower case, hyphens
to spaces, punctuation removed (so "don't" and "DONT" match), whitespace collapsed. Numbers
are not spelled out: a recogniser that writes "1989" for "nineteen eighty nine" pays for it.

WER is unbounded: every word a recogniser invents is an edit, so a hallucinated loop scores far
above 1 and dominates any mean over utterances. Each score therefore comes with its counts
(``wer_edits``, ``wer_ref_words``: sum them over runs for the corpus WER) and a hypothesis more
than `HALLUCINATION_FACTOR` times the reference's words plus `HALLUCINATION_SLACK` is flagged
``wer_status: hallucination?`` (the score is kept).
"""
from __future__ import annotations

from simlab.errors import UserError
from simlab.metrics.asr import get_recognizer
from simlab.metrics.base import MetricInput, Skipped, need

#: A hypothesis with more words than FACTOR × the reference's + SLACK is flagged as a likely
#: hallucination (SLACK: a few inserted words on a short reference are no loop).
HALLUCINATION_FACTOR = 2
HALLUCINATION_SLACK = 3


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


def word_edits(transcript: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the transcript), after normalisation."""
    jiwer = need("jiwer", "jiwer")
    ref = normalise(transcript)
    if not ref:
        raise UserError("transcript has no words after normalisation")
    if not normalise(hypothesis):
        return len(ref), len(ref)  # every reference word deleted
    tr = _normaliser()
    out = jiwer.process_words(transcript, hypothesis, reference_transform=tr, hypothesis_transform=tr)
    return int(out.substitutions + out.deletions + out.insertions), len(ref)


def word_error_rate(transcript: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / words in the transcript, after normalisation."""
    edits, words = word_edits(transcript, hypothesis)
    return edits / words


def looks_hallucinated(hyp_words: int, ref_words: int) -> bool:
    """More hypothesis words than `HALLUCINATION_FACTOR` × the reference's + `HALLUCINATION_SLACK`."""
    return hyp_words > HALLUCINATION_FACTOR * ref_words + HALLUCINATION_SLACK


def wer(inp: MetricInput) -> dict[str, float | str]:
    """``wer`` with its counts (``wer_edits``, ``wer_ref_words``, ``wer_hyp_words``), ``wer_hypothesis``
    (what the recogniser heard), ``wer_recognizer`` and, for a hypothesis far longer than the
    reference, ``wer_status: hallucination?``."""
    if inp.transcript is None:
        raise Skipped("skipped: no transcript given")
    recognizer = get_recognizer(inp.recognizer)
    hypothesis = recognizer.transcribe(inp.received)
    edits, words = word_edits(inp.transcript, hypothesis)
    hyp_words = len(normalise(hypothesis))
    out: dict[str, float | str] = {"wer": edits / words, "wer_edits": edits, "wer_ref_words": words,
                                   "wer_hyp_words": hyp_words, "wer_hypothesis": hypothesis,
                                   "wer_recognizer": recognizer.settings()}
    if looks_hallucinated(hyp_words, words):
        out["wer_status"] = (f"hallucination? {hyp_words} words heard for {words} "
                             f"(> {HALLUCINATION_FACTOR} x + {HALLUCINATION_SLACK})")
    return out
