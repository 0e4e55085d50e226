"""Mimi configurations: the full-size codec as Kyutai ships it, and a small one with the same
interface (24 kHz in, 12.5 Hz frames of 1920 samples, 8 codebooks of 2048 entries, 512-d latent)
that runs fast on a 2-core CPU.

Both are moshi's real `MimiModel` (SEANet encoder/decoder, causal transformers, learnt
down/upsampling, `SplitResidualVectorQuantizer`): only channel counts and depths differ.
"""
from __future__ import annotations

import copy
import os

import torch

os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi would otherwise compile for ~20 s on first call

#: Fixed by the system: the controller reads a 512-d latent, the packetizer counts 8 x 11 bits.
SAMPLE_RATE = 24_000
FRAME_RATE = 12.5
FRAME_SAMPLES = 1920
LATENT_DIM = 512
N_Q = 8
CARD = 2048


def full_mimi_kwargs() -> dict:
    """A deep copy of the configuration `moshi.models.loaders.get_mimi` builds (79 M parameters)."""
    from moshi.models import loaders

    return copy.deepcopy(loaders._mimi_config)


def small_mimi_kwargs() -> dict:
    """Mimi's layout scaled down (about 4 M parameters): SEANet with 16 base filters, the same
    strides (8·6·5·4 = 960 samples per 25 Hz encoder step, then a learnt stride-2 downsampling
    to 12.5 Hz), 2-layer 256-d transformers behind 512-d projections, and a split RVQ of
    1 semantic + 7 acoustic codebooks of 2048 entries in 128 dimensions."""
    seanet = {
        "channels": 1,
        "dimension": LATENT_DIM,
        "causal": True,
        "n_filters": 16,
        "n_residual_layers": 1,
        "activation": "ELU",
        "compress": 2,
        "dilation_base": 2,
        "disable_norm_outer_blocks": 0,
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 3,
        "norm": "none",
        "pad_mode": "constant",
        "ratios": [8, 6, 5, 4],
        "true_skip": True,
    }
    transformer = {
        "d_model": 256,
        "num_heads": 4,
        "num_layers": 2,
        "causal": True,
        "layer_scale": 0.01,
        "context": 250,
        "conv_layout": True,
        "max_period": 10000,
        "gating": "none",
        "norm": "layer_norm",
        "positional_embedding": "rope",
        "dim_feedforward": 512,
        "input_dimension": LATENT_DIM,
        "output_dimensions": [LATENT_DIM],
    }
    quantizer = {
        "dimension": 128,
        "n_q": N_Q,
        "bins": CARD,
        "input_dimension": LATENT_DIM,
        "output_dimension": LATENT_DIM,
    }
    return {
        "sample_rate": SAMPLE_RATE,
        "channels": 1,
        "frame_rate": FRAME_RATE,
        "seanet": seanet,
        "quantizer": quantizer,
        "transformer": transformer,
    }


def build_mimi(kwargs: dict | None = None, device: str | torch.device = "cpu"):
    """moshi's `MimiModel` from ``kwargs`` (None: the full-size configuration), in eval mode with
    8 active codebooks. Parameters come from torch's default initialisers; the codebooks are
    zeros until weights are loaded or `randomize_codebooks` fills them. The codebooks search
    with `simlab.models.codebook.FastEuclideanCodebook` (the same tokens, faster)."""
    from moshi.models import loaders

    from simlab.models.codebook import use_fast_codebooks

    mimi = loaders.get_mimi(None, copy.deepcopy(kwargs) if kwargs is not None else None,
                            device=device, num_codebooks=N_Q)
    check_mimi(mimi)
    use_fast_codebooks(mimi)
    return mimi


def check_mimi(mimi) -> None:
    """Refuse a Mimi that does not fit the system's frame, token and latent sizes."""
    problems = []
    if mimi.sample_rate != SAMPLE_RATE or mimi.frame_size != FRAME_SAMPLES:
        problems.append(f"sample rate {mimi.sample_rate} / frame {mimi.frame_size} samples "
                        f"(need {SAMPLE_RATE} / {FRAME_SAMPLES})")
    if mimi.num_codebooks != N_Q or mimi.cardinality != CARD:
        problems.append(f"{mimi.num_codebooks} codebooks of {mimi.cardinality} (need {N_Q} of {CARD})")
    if mimi.dimension != LATENT_DIM:
        problems.append(f"latent dimension {mimi.dimension} (need {LATENT_DIM})")
    if problems:
        raise ValueError("Mimi configuration does not fit the system: " + "; ".join(problems))


def codebook_layers(mimi) -> list:
    """The `VectorQuantization` layers of the active codebooks in depth order (0 semantic)."""
    q = mimi.quantizer
    return list(q.rvq_first.vq.layers[: q.rvq_first.n_q]) + list(q.rvq_rest.vq.layers[: q.rvq_rest.n_q])


@torch.no_grad()
def randomize_codebooks(mimi, generator: torch.Generator, scale: float | None = None) -> None:
    """Fill every codebook (active or not) with N(0, scale²) centroids drawn from ``generator``
    and mark them initialised: an untrained Mimi otherwise maps every frame to code 0.

    ``scale=None`` matches the centroids to the spread of this Mimi's own quantizer input on a
    probe of white noise drawn from ``generator``, so that different frames pick different codes
    (centroids far larger than the residuals would make the code depend on centroid norms only).
    """
    q = mimi.quantizer
    if scale is None:
        probe = 0.1 * torch.randn(1, 1, 4 * FRAME_SAMPLES, generator=generator)
        param = next(mimi.parameters())
        z = mimi.encode_to_latent(probe.to(param), quantize=False)
        scale = float(q.rvq_first.input_proj(z).float().std())
    for layer in list(q.rvq_first.vq.layers) + list(q.rvq_rest.vq.layers):
        cb = layer._codebook
        values = torch.randn(cb.embedding_sum.shape, generator=generator, dtype=torch.float32)
        cb.embedding_sum.copy_(values.to(cb.embedding_sum) * scale)
        cb.cluster_usage.fill_(1.0)
        cb._initialized.fill_(1.0)
    drop_codebook_cache(mimi)


def drop_codebook_cache(mimi) -> None:
    """Forget moshi's cached centroid tables (``embedding_sum / cluster_usage``): it is not
    refreshed by ``load_state_dict`` or in-place edits, so call this after either."""
    q = mimi.quantizer
    for layer in list(q.rvq_first.vq.layers) + list(q.rvq_rest.vq.layers):
        cb = layer._codebook
        cb._cached_initialized = False
        cb.register_buffer("_embedding", None, persistent=False)
