"""How much could *any* causal concealer help the small profile's codec? A probe, not a recipe.

    python experiments/concealment_bound.py [--utterances 6] [--order 4] [--cache-dir DIR]

The LM concealer of the small profile loses to leaving lost frames out (`train evaluate`,
model card). Is the LM the reason, or the codec? This fits the best *linear* predictor of a
frame's quantized latent from the K frames before it (ridge regression, no intercept, on the
training speech's tokens, encoded by the shipped codec and cached like `train lm` does) and:

1. prints its held-out NMSE with every past frame received (the last 5 % of the training
   utterances), beside leaving the frame out (1 by definition), the training mean and
   repeating the previous latent;
2. conceals packet loss on dev utterances with it (a lost frame's latent predicted from the
   frames before it as the receiver has them: received, or themselves predicted; a frame that
   lost only some tokens keeps the ones that arrived) and decodes that latent with the real
   streaming decoder: latent NMSE over the lost frames, ViSQOL and PLCMOS, and the paired
   difference from leaving the lost tokens out, ± its standard error over the utterances.

Loss draws are those of `train evaluate`'s concealment table (same seeds, all 8 tokens sent
once, 2 frames per packet). Needs ``../shared/speech/{train,dev}``; stops with a one-line
message when they are absent.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from simlab.actors.mimi import MimiCodec
from simlab.metrics.compute import compute_metrics
from simlab.models.mimi_config import LATENT_DIM
from simlab.models.profiles import SMALL_DIR, load_profile
from simlab.train.config import train_dir
from simlab.train import evaluate as ev
from simlab.train import simulate as sim
from simlab.train.data import speech_available
from simlab.train.evaluate_markdown import paired_difference
from simlab.train.tokens import cached_tokens, codec_key

CHANNELS = [("uniform", 0.1, 1.0), ("uniform", 0.2, 1.0), ("uniform", 0.3, 1.0), ("burst", 0.2, 3.0)]


def quantized_latents(mimi, tokens: np.ndarray) -> np.ndarray:
    """[512, T] quantized latents of [8, T] tokens (moshi's quantizer decode)."""
    with torch.inference_mode():
        return torch.cat([mimi.quantizer.decode(torch.from_numpy(tokens[:, i:i + 8192].astype(np.int64))[None])[0]
                          for i in range(0, tokens.shape[1], 8192)], 1).numpy()


def lagged(streams: list[np.ndarray], order: int) -> tuple[np.ndarray, np.ndarray]:
    """(X [N, order*512], Y [N, 512]): each frame from the ``order`` frames before it."""
    xs, ys = [], []
    for z in streams:
        idx = np.arange(order, z.shape[1])
        xs.append(np.concatenate([z[:, idx - k] for k in range(1, order + 1)], 0).T)
        ys.append(z[:, idx].T)
    return np.concatenate(xs).astype(np.float64), np.concatenate(ys).astype(np.float64)


def fit_predictor(streams: list[np.ndarray], order: int, ridge: float = 1e-3) -> np.ndarray:
    x, y = lagged(streams, order)
    a = x.T @ x
    a += ridge * np.trace(a) / len(a) * np.eye(len(a))
    return np.linalg.solve(a, x.T @ y).astype(np.float32)


def nmse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(((y - pred) ** 2).sum() / (y ** 2).sum())


@torch.inference_mode()
def conceal_decode(codec: MimiCodec, w: np.ndarray, order: int, tokens: np.ndarray, arrived: np.ndarray):
    """(audio, Σ‖ẑ − z‖², Σ‖z‖² over frames with a lost token) with the linear predictor."""
    T = len(tokens)
    z = np.zeros((T + order, LATENT_DIM), dtype=np.float32)  # `order` zero frames before the start
    out, err, ref = [], 0.0, 0.0
    codec.reset()
    with codec._streaming:
        for n in range(T):
            e = codec.latent(np.where(arrived[n], tokens[n], sim.MISSING))
            if not arrived[n].all():
                sent = codec.latent(tokens[n])
                if not arrived[n].any():
                    past = z[n:n + order][::-1].reshape(-1)  # frames n-1 .. n-order
                    e = torch.from_numpy(past @ w).view(1, LATENT_DIM, 1).to(e)
                err += float(((e - sent) ** 2).sum())
                ref += float((sent ** 2).sum())
            z[n + order] = e[0, :, 0].float().numpy()
            out.append(codec._decode_latent(e))
    return np.concatenate(out), err, ref


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utterances", type=int, default=6)
    ap.add_argument("--order", type=int, default=4)
    ap.add_argument("--cache-dir", default=str(train_dir() / "cache"))
    args = ap.parse_args(argv)
    for sub in ("train", "dev"):
        if not speech_available(sub):
            print(f"concealment_bound: real speech not found at ../shared/speech/{sub}; nothing to measure",
                  file=sys.stderr)
            return 2
    torch.set_num_threads(1)
    models = load_profile("small", device="cpu")
    mimi = models.mimi.eval()
    key = codec_key(SMALL_DIR / "mimi.safetensors", "")
    streams = [quantized_latents(mimi, t) for t in cached_tokens(mimi, key, "train", 1000, 0, Path(args.cache_dir))]
    held = len(streams) // 20
    w = fit_predictor(streams[held:], args.order)
    x, y = lagged(streams[:held], args.order)
    mean = np.concatenate([s[:, args.order:] for s in streams[held:]], 1).mean(1)
    print(f"held-out NMSE, every past frame received ({held} utterances, {len(y)} frames): leave out 1.000, "
          f"training mean {nmse(y, mean[None]):.3f}, repeat {nmse(y, x[:, :LATENT_DIM]):.3f}, "
          f"linear order {args.order} {nmse(y, x @ w):.3f}")

    codec = MimiCodec(mimi)
    utts = ev.dev_utterances(codec, "dev", args.utterances)
    full = np.ones((1, 8), dtype=np.int64)
    for c, (kind, loss, burst) in enumerate(CHANNELS):
        scores = {"drop": [], "linear": []}
        err = ref = 0.0
        for i, u in enumerate(utts):
            T = len(u["tokens"])
            lost_p = ev._lost_packets(kind, loss, burst, T // 2 + 2, 0, 2, c, i)  # evaluate's draws
            arrived = sim.arrivals(np.repeat(full, T, axis=0), lost_p, 2)
            audio, e, r = conceal_decode(codec, w, args.order, u["tokens"], arrived)
            err, ref = err + e, ref + r
            drop = sim.decode(codec, np.where(arrived, u["tokens"], sim.MISSING))
            for name, y_hat in (("drop", drop), ("linear", audio)):
                scores[name].append(compute_metrics(["visqol", "plcmos"], u["audio"], y_hat, 24000, seed=0, workers=1))
        cells = []
        for metric in ("visqol", "plcmos"):
            a = [s[metric] for s in scores["linear"]]
            b = [s[metric] for s in scores["drop"]]
            d, se = paired_difference(a, b)
            cells.append(f"{metric} drop {np.mean(b):.2f} linear {np.mean(a):.2f} (Δ {d:+.2f} ± {se:.2f})")
        name = f"{kind} {loss:.0%}" + (f" burst {burst:g}" if kind == "burst" else "")
        print(f"{name}: latent NMSE {err / ref:.2f}; " + "; ".join(cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
