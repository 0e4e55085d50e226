"""The tables of `simlab train evaluate` as markdown (the model card's), and the paired
differences they print: each concealer against drop and each fixed controller against the
learned one, on the same utterances and loss draws."""
from __future__ import annotations

import numpy as np


def _cell(v: float, d: int = 2) -> str:
    """A table cell: ``v`` with ``d`` decimals, "nan" for NaN."""
    return "nan" if v != v else f"{v:.{d}f}"


def paired_difference(a: list[float], b: list[float]) -> tuple[float, float]:
    """Mean of a − b over the utterances where both are finite, and its standard error (the
    same utterances and loss draws under both: the pairing removes the utterances' spread)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return (float(d.mean()) if len(d) else float("nan")), float("nan")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def markdown(r: dict) -> str:
    """The evaluation as markdown tables (pasted into the model card)."""
    lines = [f"Dev utterances: {len(r['utterances'])} ({r['seconds_of_speech']:.0f} s): {', '.join(r['utterances'])}",
             "", "### Codec, no loss, first K codebooks", "",
             f"Clean original WER: {_cell(r['codec']['clean_wer'], 3)}", "",
             "| K | payload bit/s | ViSQOL | WER |", "|---|---|---|---|"]
    lines += [f"| {x['K']} | {x['bitrate_bps']:.0f} | {_cell(x['visqol'])} | {_cell(x['wer'], 3)} |" for x in r["codec"]["rows"]]
    lines += ["", "### Concealment (all 8 tokens sent once, 2 frames per packet)", "",
              "Δ: this concealer minus drop on the same utterances and loss draws, ± its standard error.", "",
              "| channel | loss | concealer | lost tokens | token acc. | semantic acc. | latent NMSE | ViSQOL | PLCMOS "
              "| Δ ViSQOL | Δ PLCMOS |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["concealment"]:
        ch = "uniform" if x["channel"] == "uniform" else f"GE burst {x['burst']:g}"
        drop = next(y for y in r["concealment"] if y["concealer"] == "drop"
                    and (y["channel"], y["loss"], y["burst"]) == (x["channel"], x["loss"], x["burst"]))
        lines.append(f"| {ch} | {x['loss']:.0%} | {x['concealer']} | {x['lost_tokens']} | {_cell(x['token_accuracy'], 3)} | "
                     f"{_cell(x['token_accuracy_semantic'], 3)} | {_cell(x.get('latent_nmse', float('nan')))} | {_cell(x['visqol'])} | "
                     f"{_cell(x['plcmos'])} | {_delta(x, drop, 'visqol')} | {_delta(x, drop, 'plcmos')} |")
    c = r["controller"]
    lines += controller_markdown(c)
    lines += ["", "### Learned vs fixed controller at equal copies, uniform loss, LM concealment", "",
              "Δ: this controller minus the learned one on the same utterances and loss draws, ± its standard error.", "",
              "| loss | controller | payload bit/s | ViSQOL | PLCMOS | Δ ViSQOL | Δ PLCMOS |", "|---|---|---|---|---|---|---|"]
    for x in c["compare"]:
        learned = next(y for y in c["compare"] if y["controller"] == "learned" and y["loss"] == x["loss"])
        lines.append(f"| {x['loss']:.0%} | {x['controller']} | {x['payload_bps']:.0f} | {_cell(x['visqol'])} | {_cell(x['plcmos'])} "
                     f"| {_delta(x, learned, 'visqol')} | {_delta(x, learned, 'plcmos')} |")
    lines += ["", f"Evaluation time: {r['elapsed_s']:.0f} s", ""]
    return "\n".join(lines)


def _delta(row: dict, reference: dict, metric: str) -> str:
    """``row``'s paired difference from ``reference`` in ``metric`` as "+0.03 ± 0.01" ("" for
    the reference itself or without per-utterance values)."""
    key = f"{metric}_per_utterance"
    if row is reference or key not in row or key not in reference:
        return ""
    mean, se = paired_difference(row[key], reference[key])
    return "nan" if mean != mean else f"{mean:+.2f} ± {se:.2f}"


def controller_markdown(c: dict) -> list[str]:
    """The `controller_stats` part of the evaluation as markdown lines."""
    lines = ["", "### Controller: silence vs speech (L = 8)", "",
             "| p̂ | frames silence/speech | tokens sent silence | tokens sent speech | copies silence | copies speech |",
             "|---|---|---|---|---|---|"]
    for key, x in c.items():
        if key.startswith("silence_speech_p"):
            lines.append(f"| {key[16:]} | {x['silence_frames']}/{x['speech_frames']} | {_cell(x['silence_tokens_sent'])} | "
                         f"{_cell(x['speech_tokens_sent'])} | {_cell(x['silence_copies'])} | {_cell(x['speech_copies'])} |")
    if "importances" in c:
        lines += ["", "### Controller: mean importances over p̂ (silence / speech frames)", "",
                  "| p̂ | I_s silence | I_s speech | I_c silence | I_c speech |", "|---|---|---|---|---|"]
        lines += [f"| {x['p_hat']} | {_cell(x['I_s_silence'], 3)} | {_cell(x['I_s_speech'], 3)} | {_cell(x['I_c_silence'], 3)} | "
                  f"{_cell(x['I_c_speech'], 3)} |" for x in c["importances"]]
    lines += ["", "### Controller: tokens, redundancy and payload bitrate over L and p̂", "",
              "| L | p̂ | tokens sent | doubled | copies | payload bit/s |", "|---|---|---|---|---|---|"]
    lines += [f"| {x['L']} | {x['p_hat']} | {_cell(x['tokens_sent'])} | {_cell(x['doubled'])} | {_cell(x['copies'])} | "
              f"{x['payload_bps']:.0f} |" for x in c["rates"]]
    if "payload_range_bps" in c:
        lo, hi = c["payload_range_bps"]
        lines += ["", f"Payload over L × p̂: {lo:.0f} .. {hi:.0f} bit/s (tokens only)"]
    return lines
