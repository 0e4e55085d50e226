"""The bitrate ladder's table (docs/baselines.md) from its runs.csv: one row per system and setting,
payload and total bitrate (lossless runs), ViSQOL, PLCMOS and WER at each loss condition, n.

    python experiments/ladder_table.py results/bitrate_ladder/runs.csv > table.md

WER is the corpus WER of the point's runs (their edits over their reference words, both after
simlab's normalisation: a short utterance's WER counts as many words as it has); ViSQOL and PLCMOS
are means over the runs. Transcripts come from each run's manifest.json. A cell whose runs are not
all ``ok`` shows what it has and its n.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

LOSS = "network.forward.loss"
SETTINGS = ("system.quantizers", "system.mode", "system.bitrate_bps")


def setting_text(system: dict) -> str:
    """A run's system setting as the table writes it: ``L=4``, ``mode 1200``, ``12.2 kbit/s``."""
    if system["kind"] == "largesc":
        return f"L={system['quantizers']}"
    if system["kind"] == "codec2":
        return f"mode {system['mode']}"
    return f"{system['bitrate_bps'] / 1000:g} kbit/s"


def _loss_of(spec) -> float:
    spec = json.loads(spec) if isinstance(spec, str) else spec
    return float(spec.get("loss", spec.get("p", np.nan)))


def corpus_wer(wer: pd.Series, words: pd.Series) -> float:
    """Total edits (wer × reference words, per run) over total reference words."""
    ok = wer.notna() & words.notna()
    return float((wer[ok] * words[ok]).sum() / words[ok].sum()) if ok.any() and words[ok].sum() > 0 else np.nan


def ladder_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (label, setting): ``label, setting, packet_ms, payload_bps, total_bps`` (lossless
    means), ``n`` and per loss ``visqol@L, plcmos@L, wer@L, loss@L`` (measured forward loss). ``df``
    is runs.csv with ``setting`` (text) and ``ref_words`` columns added."""
    df = df[df["status"] == "ok"].copy()
    df["loss"] = df[LOSS].map(_loss_of)
    losses = sorted(df["loss"].unique())
    rows = []
    for (label, setting), part in df.groupby(["label", "setting"], sort=False):
        clean = part[part["loss"] == losses[0]]
        row = {"label": label, "setting": setting, "packet_ms": part["packet_ms"].median(),
               "payload_bps": clean["payload_bps"].mean(), "total_bps": clean["total_bps"].mean(),
               "n": int(part.groupby("loss").size().min())}
        for loss in losses:
            p = part[part["loss"] == loss]
            row[f"visqol@{loss:g}"] = p["visqol"].mean()
            row[f"plcmos@{loss:g}"] = p["plcmos"].mean()
            row[f"wer@{loss:g}"] = corpus_wer(p["wer"], p["ref_words"])
            row[f"loss@{loss:g}"] = p["loss_rate"].mean()
        rows.append(row)
    out = pd.DataFrame(rows)
    return out.sort_values(["payload_bps", "label"], kind="stable").reset_index(drop=True)


def _num(v, fmt: str) -> str:
    """A cell: the number in ``fmt`` (thousands spaced), or a dash where there is none (L=1 sends no packets)."""
    return "—" if v is None or not np.isfinite(v) else format(v, fmt).replace(",", " ")


def markdown(t: pd.DataFrame) -> str:
    losses = [c.split("@")[1] for c in t.columns if c.startswith("visqol@")]
    pct = [f"{100 * float(v):g} %" for v in losses]
    head = (["system", "setting", "packet ms", "payload bit/s", "total bit/s"]
            + [f"ViSQOL {p}" for p in pct] + [f"PLCMOS {p}" for p in pct] + [f"WER {p}" for p in pct]
            + ["measured loss " + " / ".join(pct[1:]), "n"])
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for _, r in t.iterrows():
        cells = [r["label"], r["setting"], _num(r["packet_ms"], ".3g"), _num(r["payload_bps"], ",.0f"),
                 _num(r["total_bps"], ",.0f")]
        cells += [_num(r[f"{m}@{v}"], ".2f") for m in ("visqol", "plcmos", "wer") for v in losses]
        cells += [" / ".join(_num(100 * r[f"loss@{v}"], ".0f") for v in losses[1:]) + " %", str(r["n"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def speech_ms_per_packet(folder: Path) -> float:
    """Milliseconds of speech a media packet carries: the frame (capture times, frames.csv) times the
    frames a packet holds (first frames of consecutive packets, packets.csv). Not the interval between
    sends: LargeSC's interleaving sends its packets in pairs. NaN for a run that sent none (L=1)."""
    fr = pd.read_csv(folder / "frames.csv", usecols=["flow", "capture_s"])
    pk = pd.read_csv(folder / "packets.csv", usecols=["flow", "kind", "first_frame"])
    capture = np.sort(fr.loc[fr["flow"] == 0, "capture_s"].to_numpy())
    first = np.sort(pk.loc[(pk["kind"] == "media") & (pk["flow"] == 0), "first_frame"].to_numpy())
    if len(capture) < 2 or len(first) < 2:
        return np.nan
    return 1000 * float(np.median(np.diff(capture))) * float(np.median(np.diff(first)))


def load(runs_csv: Path) -> pd.DataFrame:
    """runs.csv with each run's ``setting`` and ``ref_words`` (its transcript's words) from its manifest,
    and ``packet_ms`` (`speech_ms_per_packet`)."""
    from simlab.metrics.wer import normalise

    df = pd.read_csv(runs_csv)
    settings, words, packet_ms = [], [], []
    for key in df["key"]:
        folder = runs_csv.parent / "runs" / key
        sc = json.loads((folder / "manifest.json").read_text())["scenario"]
        settings.append(setting_text(sc["system"]))
        words.append(len(normalise(sc["transcript"])) if sc.get("transcript") else np.nan)
        packet_ms.append(speech_ms_per_packet(folder))
    return df.assign(setting=settings, ref_words=words, packet_ms=packet_ms)


if __name__ == "__main__":
    sys.stdout.write(markdown(ladder_table(load(Path(sys.argv[1])))))
