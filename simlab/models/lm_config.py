"""Configurations of moshi's language model (`moshi.models.lm.LMModel`) and a builder.

`MOSHIKO_LM_KWARGS` is the full-size Moshi layout (the real Kyutai checkpoint has no config
file, so its kwargs must be given explicitly; a silent fallback to a default would build a
different network). `small_lm_kwargs` keeps Moshi's structure (RQ-Transformer: temporal
transformer, depth transformer with weights per step, semantic token undelayed and acoustic
tokens delayed one step) at a size a 2-core CPU runs in milliseconds per step.
"""
from __future__ import annotations

import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi compiles on first call otherwise (~20 s)

import torch  # noqa: E402

#: Kwargs of Kyutai's Moshiko LM, copied from `moshi.models.loaders._lm_kwargs` (moshi 0.2.13).
#: Streams: 0 text, 1-8 Moshi's own audio (1 semantic, 2-8 acoustic, delayed one step),
#: 9-16 the user's audio (same layout).
MOSHIKO_LM_KWARGS: dict = {
    "dim": 4096,
    "text_card": 32000,
    "existing_text_padding_id": 3,
    "n_q": 16,
    "dep_q": 8,
    "card": 2048,
    "num_heads": 32,
    "num_layers": 32,
    "hidden_scale": 4.125,
    "causal": True,
    "layer_scale": None,
    "context": 3000,
    "max_period": 10000,
    "gating": "silu",
    "norm": "rms_norm_f32",
    "positional_embedding": "rope",
    "depformer_dim": 1024,
    "depformer_dim_feedforward": int(4.125 * 1024),
    "depformer_num_heads": 16,
    "depformer_num_layers": 6,
    "depformer_layer_scale": None,
    "depformer_multi_linear": True,
    "depformer_context": 8,
    "depformer_max_period": 10000,
    "depformer_gating": "silu",
    "depformer_pos_emb": "none",
    "depformer_weights_per_step": True,
    "delays": [0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1],
}


def small_lm_kwargs(n_q: int = 8, card: int = 2048) -> dict:
    """Moshi's layout scaled down: one audio stream of ``n_q`` codebooks, all predicted by
    the depth transformer (``dep_q = n_q``), no user stream, a token text vocabulary (the
    text stream is always fed as absent, -1).

    dim 256 / 4 layers / 4 heads; depformer dim 128 / 2 layers / 2 heads (head dim 64 as in
    Moshi's depformer); delays ``[0, 0, 1, ..., 1]`` (text, semantic, acoustic).
    """
    if not isinstance(n_q, int) or not 2 <= n_q <= 32:
        raise ValueError(f"small_lm_kwargs: n_q={n_q!r} must be an int in [2, 32]")
    if not isinstance(card, int) or not 2 <= card <= 65536:
        raise ValueError(f"small_lm_kwargs: card={card!r} must be an int in [2, 65536]")
    kwargs = dict(MOSHIKO_LM_KWARGS)
    kwargs.update(
        dim=256,
        text_card=32,  # unused (text fed as -1) but the embedding tables must exist
        n_q=n_q,
        dep_q=n_q,
        card=card,
        num_heads=4,
        num_layers=4,
        depformer_dim=128,
        depformer_dim_feedforward=int(4.125 * 128),
        depformer_num_heads=2,
        depformer_num_layers=2,
        depformer_context=n_q,
        delays=[0, 0] + [1] * (n_q - 1),
    )
    return kwargs


def build_lm(kwargs: dict, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
             seed: int | None = 0):
    """Build moshi's real `LMModel` from ``kwargs`` on ``device``, in eval mode.

    moshi initialises weights from torch's global generator; with ``seed`` set, that happens
    inside `torch.random.fork_rng` seeded with it, so the weights are reproducible and the
    caller's global random state is left exactly as it was. ``seed=None``: no seeding
    (use when a checkpoint overwrites every weight anyway).
    """
    from moshi.models.lm import LMModel

    if not isinstance(kwargs, dict):
        raise TypeError(f"build_lm: kwargs must be a dict, got {type(kwargs).__name__}")
    devices = [torch.device(device)] if torch.device(device).type == "cuda" else []
    if seed is None:
        lm = LMModel(**kwargs, device=device, dtype=dtype)
    else:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            lm = LMModel(**kwargs, device=device, dtype=dtype)
    return lm.eval()
