"""Recipe `train evaluate`: quality of a profile's trained models on the dev speech, as the
tables of the model card (``<out_dir>/evaluation.md`` and ``evaluation.json``).

1. Codec, lossless, first K = 1..8 codebooks: ViSQOL and WER beside the payload bitrate
   (and the clean original's WER).
2. Concealment (LM vs repeat vs drop), all 8 tokens sent, packets lost uniformly at each of
   ``uniform_losses`` and by a Gilbert channel (``burst``): token accuracy (share of lost
   tokens concealed exactly), ViSQOL and PLCMOS.
3. The trained controller: tokens and copies per frame in silence vs speech, redundancy as
   p̂ rises, payload bitrate over L and p̂, and ViSQOL against fixed controllers of the same
   average number of copies under uniform loss.
Metrics come from `simlab.metrics.compute_metrics` against the original dev speech (24 kHz);
every loss draw from a numpy Generator seeded per (condition, utterance).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from channels.gilbert_elliott import GilbertElliott
from channels.uniform import Uniform
from simlab.actors.controller import FixedController
from simlab.actors.mimi import MimiCodec
from simlab.audio import SAMPLE_RATE, read_audio
from simlab.metrics.compute import compute_metrics
from simlab.models.mimi_config import FRAME_RATE, FRAME_SAMPLES, N_Q
from simlab.train import simulate as sim
from simlab.train.data import list_files, transcripts
from simlab.train.state import set_threads

TOKEN_BITS = 11
CONCEALERS = ("lm", "repeat", "drop")


def pick_utterances(sub: str, count: int) -> list[Path]:
    """``count`` dev utterances, round-robin over speakers (first files of each, sorted)."""
    by_speaker: dict[str, list[Path]] = {}
    for f in list_files(sub):
        by_speaker.setdefault(f.name.split("-")[0], []).append(f)
    out, i = [], 0
    while len(out) < count and any(i < len(v) for v in by_speaker.values()):
        out += [v[i] for v in by_speaker.values() if i < len(v)][:count - len(out)]
        i += 1
    return out


def _mean(rows: list[dict], key: str) -> float:
    vals = [float(r[key]) for r in rows if key in r and np.isfinite(float(r[key]))]
    return float(np.mean(vals)) if vals else float("nan")


def _lost_packets(kind: str, loss: float, burst: float, packets: int, seed: int, *key: int) -> np.ndarray:
    rng = np.random.default_rng([seed, *key])
    channel = Uniform(loss, rng) if kind == "uniform" else GilbertElliott.from_average(loss, burst, rng)
    return channel.draw(packets)


def evaluate(config: dict) -> Path:
    """Run every table; returns ``<out_dir>/evaluation.md``."""
    from simlab.models.profiles import load_profile

    set_threads(int(config["threads"]))
    t_start = time.perf_counter()
    out_dir = Path(config["out_dir"]).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    models = load_profile(config["profile"], device=config["device"], seed=config["seed"])
    codec = MimiCodec(models.mimi)
    texts = transcripts(config["data"])
    utts = []
    for f in pick_utterances(config["data"], config["utterances"]):
        audio = read_audio(f, SAMPLE_RATE)
        tokens, latents, padded = sim.encode(codec, audio)
        utts.append({"id": f.name[:-5], "audio": padded, "tokens": tokens, "latents": latents})
    fpp = config["frames_per_packet"]

    def metrics(names: list[str], u: dict, received: np.ndarray) -> dict:
        return compute_metrics(names, u["audio"], received, SAMPLE_RATE, transcript=texts.get(u["id"]),
                               seed=config["seed"], recognizer=config["recognizer"], workers=1)

    results: dict = {"profile": models.describe(), "utterances": [u["id"] for u in utts],
                     "seconds_of_speech": sum(len(u["audio"]) for u in utts) / SAMPLE_RATE}
    # 1. codec, first K codebooks, no loss
    rows = []
    clean = [metrics(["wer"], u, u["audio"]) for u in utts]
    for k in range(1, N_Q + 1):
        per = []
        for u in utts:
            t = u["tokens"].copy()
            t[:, k:] = sim.MISSING
            per.append(metrics(["visqol", "wer"], u, sim.decode(codec, t)))
        rows.append({"K": k, "bitrate_bps": k * TOKEN_BITS * FRAME_RATE, "visqol": _mean(per, "visqol"),
                     "wer": _mean(per, "wer")})
    results["codec"] = {"rows": rows, "clean_wer": _mean(clean, "wer")}
    # 2. concealment, all tokens sent once
    channels = [("uniform", p, 1.0) for p in config["uniform_losses"]]
    channels.append(("burst", config["burst"]["loss"], config["burst"]["length"]))
    rows = []
    full = np.ones((1, N_Q), dtype=np.int64)
    for c, (kind, loss, burst) in enumerate(channels):
        for name in CONCEALERS:
            per, hits, lost_n, hits0, lost0 = [], 0, 0, 0, 0
            for i, u in enumerate(utts):
                T = len(u["tokens"])
                masks = np.repeat(full, T, axis=0)
                lost_p = _lost_packets(kind, loss, burst, T // fpp + 2, config["seed"], 2, c, i)
                arrived = sim.arrivals(masks, lost_p, fpp)
                filled = sim.conceal(name, u["tokens"], arrived, models.lm)
                lost = ~arrived
                hits += int(((filled == u["tokens"]) & lost).sum())
                lost_n += int(lost.sum())
                hits0 += int(((filled[:, 0] == u["tokens"][:, 0]) & lost[:, 0]).sum())
                lost0 += int(lost[:, 0].sum())
                received = sim.decode(codec, sim.decoder_tokens(u["tokens"], masks, arrived, filled))
                per.append(metrics(["visqol", "plcmos"], u, received))
            rows.append({"channel": kind, "loss": loss, "burst": burst, "concealer": name,
                         "lost_tokens": lost_n, "token_accuracy": hits / max(lost_n, 1),
                         "token_accuracy_semantic": hits0 / max(lost0, 1),
                         "visqol": _mean(per, "visqol"), "plcmos": _mean(per, "plcmos")})
    results["concealment"] = rows
    results["controller"] = controller_tables(config, models, codec, utts, metrics)
    results["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    (out_dir / "evaluation.json").write_text(json.dumps(results, indent=1, default=str))
    path = out_dir / "evaluation.md"
    path.write_text(markdown(results))
    return path


def controller_tables(config: dict, models, codec: MimiCodec, utts: list[dict], metrics) -> dict:
    """Section 3 of the evaluation (see the module docstring)."""
    ctrl = models.controller
    out: dict = {}
    # silence vs speech, by frame energy relative to the utterance's loudest frame
    for p_hat in (0.0, 0.2):
        sil, spe = [], []
        for u in utts:
            m = sim.controller_masks(ctrl, u["latents"], p_hat, 8)
            frames = u["audio"].reshape(-1, FRAME_SAMPLES)
            db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
            sil.append(m[db < db.max() - config["silence_db"]])
            spe.append(m[db > db.max() - config["speech_db"]])
        s, v = np.concatenate(sil), np.concatenate(spe)
        out[f"silence_speech_p{p_hat}"] = {
            "silence_frames": len(s), "speech_frames": len(v),
            "silence_tokens_sent": float((s >= 1).sum(1).mean()), "speech_tokens_sent": float((v >= 1).sum(1).mean()),
            "silence_copies": float(s.sum(1).mean()), "speech_copies": float(v.sum(1).mean())}
    # redundancy and payload over p̂ and L
    table = []
    for L in config["quantizers"]:
        for p_hat in config["p_hats"]:
            m = np.concatenate([sim.controller_masks(ctrl, u["latents"], p_hat, L) for u in utts])
            table.append({"L": L, "p_hat": p_hat, "tokens_sent": float((m >= 1).sum(1).mean()),
                          "doubled": float((m == 2).sum(1).mean()), "copies": float(m.sum(1).mean()),
                          "payload_bps": float(m.sum(1).mean() * TOKEN_BITS * FRAME_RATE)})
    out["rates"] = table
    # learned vs fixed at the same average number of copies, under uniform loss, LM concealment
    fpp = config["frames_per_packet"]
    rows = []
    for c, loss in enumerate(config["compare_losses"]):
        learned = [sim.controller_masks(ctrl, u["latents"], loss, config["compare_quantizers"]) for u in utts]
        copies = float(np.concatenate(learned).sum(1).mean())
        total = int(np.clip(round(copies), 1, 2 * N_Q))
        candidates = [("learned", learned)]
        for redundant in sorted({max(0, total - N_Q), total // 3}):
            quant = total - redundant
            if 1 <= quant <= N_Q and redundant <= quant:
                fixed = FixedController(quant, redundant, N_Q)
                candidates.append((f"fixed L={quant} R={redundant}",
                                   [sim.controller_masks(fixed, u["latents"], loss, quant) for u in utts]))
        for name, masks in candidates:
            per = []
            for i, u in enumerate(utts):
                T = len(u["tokens"])
                lost_p = _lost_packets("uniform", loss, 1.0, T // fpp + 2, config["seed"], 3, c, i)
                arrived = sim.arrivals(masks[i], lost_p, fpp)
                filled = sim.conceal("lm", u["tokens"], arrived, models.lm)
                per.append(metrics(["visqol", "plcmos"], u,
                                   sim.decode(codec, sim.decoder_tokens(u["tokens"], masks[i], arrived, filled))))
            rows.append({"loss": loss, "controller": name,
                         "payload_bps": float(np.concatenate(masks).sum(1).mean() * TOKEN_BITS * FRAME_RATE),
                         "visqol": _mean(per, "visqol"), "plcmos": _mean(per, "plcmos")})
    out["compare"] = rows
    return out


def markdown(r: dict) -> str:
    """The evaluation as markdown tables (pasted into the model card)."""
    f = lambda v, d=2: "nan" if v != v else f"{v:.{d}f}"  # noqa: E731
    lines = [f"Dev utterances: {len(r['utterances'])} ({r['seconds_of_speech']:.0f} s): {', '.join(r['utterances'])}",
             "", "### Codec, no loss, first K codebooks", "",
             f"Clean original WER: {f(r['codec']['clean_wer'], 3)}", "",
             "| K | payload bit/s | ViSQOL | WER |", "|---|---|---|---|"]
    lines += [f"| {x['K']} | {x['bitrate_bps']:.0f} | {f(x['visqol'])} | {f(x['wer'], 3)} |" for x in r["codec"]["rows"]]
    lines += ["", "### Concealment (all 8 tokens sent once, 2 frames per packet)", "",
              "| channel | loss | concealer | lost tokens | token acc. | semantic acc. | ViSQOL | PLCMOS |",
              "|---|---|---|---|---|---|---|---|"]
    for x in r["concealment"]:
        ch = "uniform" if x["channel"] == "uniform" else f"GE burst {x['burst']:g}"
        lines.append(f"| {ch} | {x['loss']:.0%} | {x['concealer']} | {x['lost_tokens']} | {f(x['token_accuracy'], 3)} | "
                     f"{f(x['token_accuracy_semantic'], 3)} | {f(x['visqol'])} | {f(x['plcmos'])} |")
    c = r["controller"]
    lines += ["", "### Controller: silence vs speech (L = 8)", "",
              "| p̂ | frames silence/speech | tokens sent silence | tokens sent speech | copies silence | copies speech |",
              "|---|---|---|---|---|---|"]
    for key, x in c.items():
        if key.startswith("silence_speech_p"):
            lines.append(f"| {key[16:]} | {x['silence_frames']}/{x['speech_frames']} | {f(x['silence_tokens_sent'])} | "
                         f"{f(x['speech_tokens_sent'])} | {f(x['silence_copies'])} | {f(x['speech_copies'])} |")
    lines += ["", "### Controller: tokens, redundancy and payload bitrate over L and p̂", "",
              "| L | p̂ | tokens sent | doubled | copies | payload bit/s |", "|---|---|---|---|---|---|"]
    lines += [f"| {x['L']} | {x['p_hat']} | {f(x['tokens_sent'])} | {f(x['doubled'])} | {f(x['copies'])} | "
              f"{x['payload_bps']:.0f} |" for x in c["rates"]]
    lines += ["", "### Learned vs fixed controller at equal copies, uniform loss, LM concealment", "",
              "| loss | controller | payload bit/s | ViSQOL | PLCMOS |", "|---|---|---|---|---|"]
    lines += [f"| {x['loss']:.0%} | {x['controller']} | {x['payload_bps']:.0f} | {f(x['visqol'])} | {f(x['plcmos'])} |"
              for x in c["compare"]]
    lines += ["", f"Evaluation time: {r['elapsed_s']:.0f} s", ""]
    return "\n".join(lines)
