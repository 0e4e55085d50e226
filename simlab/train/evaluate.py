"""Recipe `train evaluate`: quality of a profile's trained models on the dev speech, as the
tables of the model card (``<out_dir>/evaluation.md`` and ``evaluation.json``).

1. Codec, lossless, first K = 1..8 codebooks: ViSQOL and WER beside the payload bitrate
   (and the clean original's WER).
2. Concealment (LM vs repeat vs drop), all 8 tokens sent, packets lost uniformly at each of
   ``uniform_losses`` and by a Gilbert channel (``burst``): token accuracy (share of lost
   tokens concealed exactly), latent NMSE (`simulate.latent_error`: how far the concealed
   frames' quantized latent is from the sent one; leaving lost frames out gives 1), ViSQOL
   and PLCMOS.
3. The trained controller: tokens and copies per frame in silence vs speech, redundancy as
   p̂ rises, payload bitrate over L and p̂, and ViSQOL against fixed controllers of the same
   average number of copies under uniform loss (``compare_draws`` loss draws per utterance,
   averaged per utterance before the paired difference).
Metrics come from `simlab.metrics.compute_metrics` against the original dev speech (24 kHz);
every loss draw from a numpy Generator seeded per (condition, utterance).

Section 3 without its metrics (`controller_stats`) runs alone in seconds on any trained
controller: ``python -m simlab.train.evaluate <controller folder or file> [--set key=value]``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from channels.gilbert_elliott import GilbertElliott
from channels.uniform import Uniform
from simlab.actors.controller import FixedController, hard_mask
from simlab.actors.mimi import MimiCodec
from simlab.audio import SAMPLE_RATE, read_audio
from simlab.batch.table import write_atomic
from simlab.metrics.compute import compute_metrics
from simlab.models.mimi_config import FRAME_RATE, FRAME_SAMPLES, N_Q
from simlab.train import simulate as sim
from simlab.train.data import list_files, transcripts
from simlab.train.evaluate_markdown import controller_markdown, markdown
from simlab.train.state import set_threads

TOKEN_BITS = 11


def concealer_variants(min_confidence: float) -> list[tuple[str, str, float]]:
    """(label, kind, min_confidence) of the concealers compared: the paper's LM concealer, the
    LM concealer leaving out its guesses below ``min_confidence`` (when > 0), and the baselines."""
    gated = [(f"lm p>={min_confidence:g}", "lm", min_confidence)] if min_confidence > 0 else []
    return [("lm", "lm", 0.0), *gated, ("repeat", "repeat", 0.0), ("drop", "drop", 0.0)]


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


def dev_utterances(codec: MimiCodec, sub: str, count: int) -> list[dict]:
    """``count`` utterances of ``sub`` (`pick_utterances`), each as id, 24 kHz audio padded to
    whole frames, tokens [T, 8] and latents [T, 512] from the streaming codec."""
    utts = []
    for f in pick_utterances(sub, count):
        tokens, latents, padded = sim.encode(codec, read_audio(f, SAMPLE_RATE))
        utts.append({"id": f.name[:-5], "audio": padded, "tokens": tokens, "latents": latents})
    return utts


def frame_classes(audio: np.ndarray, silence_db: float, speech_db: float) -> tuple[np.ndarray, np.ndarray]:
    """(silence, speech) bool per 80 ms frame of ``audio`` (whole frames): a frame more than
    ``silence_db`` below the utterance's loudest frame is silence, one within ``speech_db`` of it
    is speech (frames in between are neither, so the two classes stay clearly apart)."""
    frames = audio.reshape(-1, FRAME_SAMPLES)
    db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return db < db.max() - silence_db, db > db.max() - speech_db


def _mean(rows: list[dict], key: str) -> float:
    vals = [float(r[key]) for r in rows if key in r and np.isfinite(float(r[key]))]
    return float(np.mean(vals)) if vals else float("nan")


def _per_utterance(rows: list[dict], key: str) -> list[float]:
    return [float(r.get(key, float("nan"))) for r in rows]


def _lost_packets(kind: str, loss: float, burst: float, packets: int, seed: int, *key: int) -> np.ndarray:
    rng = np.random.default_rng([seed, *key])
    channel = Uniform(loss, rng) if kind == "uniform" else GilbertElliott.from_average(loss, burst, rng)
    return channel.draw(packets)


@torch.no_grad()  # (a decorator, not set_grad_enabled: the caller's grad mode comes back)
def evaluate(config: dict) -> Path:
    """Run every table; returns ``<out_dir>/evaluation.md``."""
    from simlab.models.profiles import load_profile
    from simlab.train.config import check_range

    check_range(config, "utterances", 1, 10_000, integer=True)
    check_range(config, "compare_draws", 1, 1000, integer=True)
    check_range(config, "min_confidence", 0.0, 1.0)

    set_threads(int(config["threads"]))
    t_start = time.perf_counter()
    out_dir = Path(config["out_dir"]).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    models = load_profile(config["profile"], device=config["device"], seed=config["seed"])
    codec = MimiCodec(models.mimi)
    texts = transcripts(config["data"])
    utts = dev_utterances(codec, config["data"], config["utterances"])
    fpp = config["frames_per_packet"]
    channels = [("uniform", p, 1.0) for p in config["uniform_losses"]]
    channels.append(("burst", config["burst"]["loss"], config["burst"]["length"]))
    # one unit per metric call (nearly all the time); the comparison counts at most 3 controllers
    bar = tqdm(total=len(utts) * (1 + N_Q + len(channels) * len(concealer_variants(config["min_confidence"]))
                                  + 3 * len(config["compare_losses"]) * config["compare_draws"]),
               desc="train evaluate", unit="metric", mininterval=5.0, dynamic_ncols=True)

    def metrics(names: list[str], u: dict, received: np.ndarray) -> dict:
        bar.update()
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
    rows = []
    full = np.ones((1, N_Q), dtype=np.int64)
    for c, (kind, loss, burst) in enumerate(channels):
        for name, kind_c, gate in concealer_variants(config["min_confidence"]):
            per, hits, lost_n, hits0, lost0, err, ref = [], 0, 0, 0, 0, 0.0, 0.0
            for i, u in enumerate(utts):
                T = len(u["tokens"])
                masks = np.repeat(full, T, axis=0)
                lost_p = _lost_packets(kind, loss, burst, T // fpp + 2, config["seed"], 2, c, i)
                arrived = sim.arrivals(masks, lost_p, fpp)
                filled = sim.conceal(kind_c, u["tokens"], arrived, models.lm, min_confidence=gate)
                lost = ~arrived
                hits += int(((filled == u["tokens"]) & lost).sum())
                lost_n += int(lost.sum())
                hits0 += int(((filled[:, 0] == u["tokens"][:, 0]) & lost[:, 0]).sum())
                lost0 += int(lost[:, 0].sum())
                given = sim.decoder_tokens(u["tokens"], masks, arrived, filled)
                e, r = sim.latent_error(codec, u["tokens"], given, lost)
                err, ref = err + e, ref + r
                per.append(metrics(["visqol", "plcmos"], u, sim.decode(codec, given)))
            rows.append({"channel": kind, "loss": loss, "burst": burst, "concealer": name,
                         "lost_tokens": lost_n, "token_accuracy": hits / max(lost_n, 1),
                         "token_accuracy_semantic": hits0 / max(lost0, 1), "latent_nmse": err / max(ref, 1e-12),
                         "visqol": _mean(per, "visqol"), "plcmos": _mean(per, "plcmos"),
                         "visqol_per_utterance": _per_utterance(per, "visqol"),
                         "plcmos_per_utterance": _per_utterance(per, "plcmos")})
    results["concealment"] = rows
    results["controller"] = controller_tables(config, models, codec, utts, metrics)
    bar.total = bar.n  # fewer fixed controllers than the bound
    bar.close()
    results["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    write_atomic(out_dir / "evaluation.json", json.dumps(results, indent=1, default=str).encode())
    path = out_dir / "evaluation.md"
    write_atomic(path, markdown(results).encode())
    return path


def controller_stats(ctrl, utts: list[dict], config: dict) -> dict:
    """What a controller does on the dev speech, without any metric (fast): tokens and copies
    per frame in silence vs speech (`frame_classes`, L = 8), mean I_s and I_c per class over
    ``config["p_hats"]``, and tokens, doubled tokens, copies and payload bit/s over
    ``config["quantizers"]`` × ``config["p_hats"]``. ``ctrl``: an `AdaptiveController`."""
    out: dict = {}
    classes = [frame_classes(u["audio"], config["silence_db"], config["speech_db"]) for u in utts]
    p_hats = sorted({0.0, 0.2, *map(float, config["p_hats"])})
    # (I_s, I_c) per utterance from the whole-sequence forward: the causal network makes it
    # equal to the streaming `decide` (tests/test_controller.py), and it is ~100x faster
    param = next(ctrl.parameters())
    imp: dict[float, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    with torch.no_grad():
        for p_hat in p_hats:
            imp[p_hat] = []
            for u in utts:
                z = torch.as_tensor(u["latents"].T[None], dtype=param.dtype, device=param.device)
                i_s, i_c = ctrl(z, torch.full((1,), p_hat, dtype=param.dtype, device=param.device))
                imp[p_hat].append((i_s[0].cpu(), i_c[0].cpu()))

    def masks(p_hat: float, quantizers: int) -> list[np.ndarray]:
        return [hard_mask(i_s, i_c, quantizers, N_Q).numpy() for i_s, i_c in imp[p_hat]]

    for p_hat in (0.0, 0.2):
        m = masks(p_hat, 8)
        s = np.concatenate([mi[c[0]] for mi, c in zip(m, classes)])
        v = np.concatenate([mi[c[1]] for mi, c in zip(m, classes)])
        out[f"silence_speech_p{p_hat}"] = {
            "silence_frames": len(s), "speech_frames": len(v),
            "silence_tokens_sent": float((s >= 1).sum(1).mean()), "speech_tokens_sent": float((v >= 1).sum(1).mean()),
            "silence_copies": float(s.sum(1).mean()), "speech_copies": float(v.sum(1).mean())}
    rows = []
    for p_hat in config["p_hats"]:
        row = {"p_hat": p_hat}
        for n, name in enumerate(("I_s", "I_c")):
            for cls, k in (("silence", 0), ("speech", 1)):
                vals = [pair[n].numpy()[c[k]] for pair, c in zip(imp[float(p_hat)], classes)]
                row[f"{name}_{cls}"] = float(np.concatenate(vals).mean())
        rows.append(row)
    out["importances"] = rows
    # redundancy and payload over p̂ and L
    table = []
    for L in config["quantizers"]:
        for p_hat in config["p_hats"]:
            m = np.concatenate(masks(float(p_hat), L))
            table.append({"L": L, "p_hat": p_hat, "tokens_sent": float((m >= 1).sum(1).mean()),
                          "doubled": float((m == 2).sum(1).mean()), "copies": float(m.sum(1).mean()),
                          "payload_bps": float(m.sum(1).mean() * TOKEN_BITS * FRAME_RATE)})
    out["rates"] = table
    bps = [x["payload_bps"] for x in table]
    out["payload_range_bps"] = [min(bps), max(bps)]
    return out


def controller_tables(config: dict, models, codec: MimiCodec, utts: list[dict], metrics) -> dict:
    """Section 3 of the evaluation (see the module docstring)."""
    ctrl = models.controller
    out = controller_stats(ctrl, utts, config)
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
            per = []  # per utterance: the mean over its loss draws
            for i, u in enumerate(utts):
                T = len(u["tokens"])
                draws = []
                for d in range(config["compare_draws"]):
                    lost_p = _lost_packets("uniform", loss, 1.0, T // fpp + 2, config["seed"], 3, c, i, d)
                    arrived = sim.arrivals(masks[i], lost_p, fpp)
                    filled = sim.conceal("lm", u["tokens"], arrived, models.lm)
                    draws.append(metrics(["visqol", "plcmos"], u,
                                         sim.decode(codec, sim.decoder_tokens(u["tokens"], masks[i], arrived, filled))))
                per.append({k: _mean(draws, k) for k in ("visqol", "plcmos")})
            rows.append({"loss": loss, "controller": name,
                         "payload_bps": float(np.concatenate(masks).sum(1).mean() * TOKEN_BITS * FRAME_RATE),
                         "visqol": _mean(per, "visqol"), "plcmos": _mean(per, "plcmos"),
                         "visqol_per_utterance": _per_utterance(per, "visqol"),
                         "plcmos_per_utterance": _per_utterance(per, "plcmos")})
    out["compare"] = rows
    return out


@torch.no_grad()
def diagnose_controller(config: dict, weights: str | Path) -> dict:
    """`controller_stats` of the controller in ``weights`` (a ``controller.safetensors`` or the
    `train controller` out_dir holding one), on ``config``'s dev utterances encoded by the Mimi of
    ``config["profile"]`` (the codec the controller was trained on). Seconds, no metrics: the
    quick check after a controller run (`main`)."""
    from simlab.actors.controller import AdaptiveController
    from simlab.errors import UserError
    from simlab.models.checkpoint import load_state_dict
    from simlab.models.profiles import load_profile

    path = Path(weights).expanduser()
    if path.is_dir():
        path = path / "controller.safetensors"
    if not path.is_file():
        raise UserError(f"{path}: controller weights not found (give controller.safetensors or its folder)")
    set_threads(int(config["threads"]))
    models = load_profile(config["profile"], device=config["device"], seed=config["seed"])
    ctrl = AdaptiveController(**models.profile.controller_kwargs, seed=config["seed"])
    ctrl.load_state_dict(load_state_dict(path))
    ctrl = ctrl.to(models.device).eval()
    utts = dev_utterances(MimiCodec(models.mimi), config["data"], config["utterances"])
    return {"controller": str(path), "utterances": [u["id"] for u in utts], **controller_stats(ctrl, utts, config)}


def main(argv: list[str] | None = None) -> int:
    """``python -m simlab.train.evaluate CONTROLLER [--set key=value ...]``: print the controller
    tables (`diagnose_controller`) for a trained controller; ``--set`` overrides the evaluate
    config (e.g. ``profile=~/.cache/simlab/train/stage-lm``, ``utterances=6``)."""
    import argparse
    import sys

    from simlab.errors import UserError
    from simlab.train.config import load_config
    from simlab.train.overrides import parse_overrides

    parser = argparse.ArgumentParser(prog="python -m simlab.train.evaluate",
                                     description="controller tables (silence vs speech, redundancy vs p̂, payload)")
    parser.add_argument("controller", help="controller.safetensors or the folder of a `train controller` run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="evaluate config override")
    parser.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    try:
        stats = diagnose_controller(load_config("evaluate", overrides=parse_overrides(args.set)), args.controller)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        Path(args.json).write_text(json.dumps(stats, indent=1))
    print("\n".join([f"Controller {stats['controller']} on {len(stats['utterances'])} dev utterances"]
                    + controller_markdown(stats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
