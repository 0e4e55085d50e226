"""Token streams (and latents) of the training speech, encoded once by a codec and cached.

Each utterance gives its tokens [n_q, frames] and Mimi's latent before quantization
[512, frames] (float16), the controller's input.

The cache file is keyed by the codec's weights (SHA-256 of its checkpoint; a profile with no
checkpoint is keyed by its name and seed), the speech folder, the amount of audio and the
seed of the subset, so a retrained codec never reuses stale tokens.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from simlab.models.mimi_config import FRAME_SAMPLES
from simlab.train.data import list_files
from simlab.train.state import file_hash


def codec_key(mimi_checkpoint: Path | None, fallback: str) -> str:
    """The cache key of a codec: its checkpoint's hash, or ``fallback`` (e.g. 'random-seed0')."""
    return file_hash(mimi_checkpoint) if mimi_checkpoint is not None else fallback


@torch.no_grad()
def encode_utterance(mimi, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens [n_q, frames] (int16) and latents [512, frames] (float16) of one utterance
    (zero-padded to whole frames)."""
    param = next(mimi.parameters())
    n = -(-len(x) // FRAME_SAMPLES) * FRAME_SAMPLES
    pad = np.zeros(n, dtype=np.float32)
    pad[:len(x)] = x
    z = mimi.encode_to_latent(torch.from_numpy(pad).to(param)[None, None], quantize=False)  # [1, 512, frames]
    codes = mimi.quantizer.encode(z)  # [1, n_q, frames]
    return codes[0].to("cpu", torch.int16).numpy(), z[0].to("cpu", torch.float16).numpy()


def corpus_loader(sub: str, max_minutes: float, seed: int) -> Callable[[], list[np.ndarray]]:
    """A function giving the seeded subset of ``sub`` that `cached_tokens` encodes, read on the
    first call only (several frame grids share one read of the speech)."""
    from simlab.train.data import load_corpus

    return functools.cache(lambda: load_corpus(sub, max_minutes, np.random.default_rng(seed), files=list_files(sub)))


def cached_tokens(mimi, key: str, sub: str, max_minutes: float, seed: int, cache_dir: Path,
                  latents: bool = False, shift: int = 0, corpus: Callable[[], list[np.ndarray]] | None = None,
                  ) -> list[np.ndarray] | tuple[list[np.ndarray], list[np.ndarray]]:
    """One [n_q, frames] int16 array per utterance of a seeded subset of ``sub`` (at most
    ``max_minutes``), from the cache when present, else encoded with ``mimi`` and cached.
    ``latents=True``: also the [512, frames] float16 latents, as a second list.
    ``shift``: encode each utterance from sample ``shift`` on (0 <= shift < one frame), so the
    frame grid falls elsewhere in the speech and the tokens differ (an augmentation).
    ``corpus``: the `corpus_loader` of the same ``sub``, ``max_minutes`` and ``seed``, to share
    its read between calls; read afresh when None."""
    if not 0 <= shift < FRAME_SAMPLES:
        raise ValueError(f"shift {shift}: expected 0..{FRAME_SAMPLES - 1} samples")
    tag = f"|shift{shift}" if shift else ""  # shift 0 keeps the caches made before shifts existed
    name = hashlib.sha256(f"{key}|{sub}|{max_minutes}|{seed}{tag}".encode()).hexdigest()[:16]
    path = Path(cache_dir).expanduser() / f"tokens-{name}.npz"
    if path.is_file():
        with np.load(path) as data:
            cuts = np.cumsum(data["lengths"])[:-1]
            tokens = np.split(data["tokens"], cuts, axis=1)
            return (tokens, np.split(data["latents"], cuts, axis=1)) if latents else tokens
    audio = (corpus or corpus_loader(sub, max_minutes, seed))()
    mimi.eval()
    desc = f"encode {sub}" + (f" (shift {shift})" if shift else "")
    pairs = [encode_utterance(mimi, x[shift:]) for x in tqdm(audio, desc=desc, mininterval=5.0)]
    streams, zs = [p[0] for p in pairs], [p[1] for p in pairs]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, tokens=np.concatenate(streams, axis=1), latents=np.concatenate(zs, axis=1),
             lengths=np.array([s.shape[1] for s in streams]))
    tmp.replace(path)
    return (streams, zs) if latents else streams


def token_batch(streams: list[np.ndarray], batch: int, frames: int, rng: np.random.Generator,
                latents: list[np.ndarray] | None = None):
    """[batch, n_q, frames] int64 windows at random utterances (by length) and offsets;
    utterances shorter than ``frames`` are skipped unless all are (then tiled).
    With ``latents``: also the matching [batch, 512, frames] float32 latents."""
    lengths = np.array([s.shape[1] for s in streams], dtype=float)
    weights = np.where(lengths >= frames, lengths, 0.0)
    if weights.sum() == 0:
        weights = lengths
    picks = rng.choice(len(streams), size=batch, p=weights / weights.sum())
    out = np.empty((batch, streams[0].shape[0], frames), dtype=np.int64)
    z_out = np.empty((batch, latents[0].shape[0], frames), dtype=np.float32) if latents is not None else None
    for b, i in enumerate(picks):
        s = streams[i]
        reps = -(-frames // s.shape[1])
        if reps > 1:
            s = np.tile(s, (1, reps))
        start = int(rng.integers(0, s.shape[1] - frames + 1))
        out[b] = s[:, start:start + frames]
        if z_out is not None:
            z = np.tile(latents[i], (1, reps)) if reps > 1 else latents[i]
            z_out[b] = z[:, start:start + frames]
    return out if z_out is None else (out, z_out)
