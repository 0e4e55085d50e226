"""FastEuclideanCodebook finds the same centroids as moshi's cdist search, bit for bit, and
follows the codebook when it changes."""
from __future__ import annotations

import numpy as np
import torch
from moshi.quantization.core_vq import EuclideanCodebook

from simlab.actors.mimi import MimiCodec
from simlab.audio import SHIPPED_CLIP, read_audio
from simlab.models.codebook import FastEuclideanCodebook
from simlab.models.mimi_config import FRAME_SAMPLES, drop_codebook_cache
from simlab.models.profiles import load_profile


def test_same_distances_and_codes():
    torch.manual_seed(0)
    cb = EuclideanCodebook(dim=128, codebook_size=2048)
    with torch.no_grad():
        cb.embedding_sum.normal_()
        cb.cluster_usage.uniform_(0.5, 2.0)
        cb._initialized.fill_(True)
    fast = EuclideanCodebook(dim=128, codebook_size=2048)
    fast.load_state_dict(cb.state_dict())
    fast.__class__ = FastEuclideanCodebook
    g = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        for rows in (1, 2, 4, 30):
            for _ in range(50):
                x = torch.randn(rows, 128, generator=g)
                assert torch.equal(fast._quantize(x), torch.cdist(x[None], cb.embedding[None], p=2)[0].argmin(-1))
        # a new codebook (drop_codebook_cache's way): the table follows
        with torch.no_grad():
            fast.embedding_sum.mul_(3.0)
        fast.register_buffer("_embedding", None, persistent=False)
        x = torch.randn(1, 128, generator=g)
        assert torch.equal(fast._quantize(x), torch.cdist(x[None], fast.embedding[None], p=2)[0].argmin(-1))


def test_shipped_mimi_tokens_unchanged():
    torch.set_num_threads(1)
    mimi = load_profile("small").mimi
    layers = [m for m in mimi.modules() if isinstance(m, EuclideanCodebook)]
    assert layers and all(type(m) is FastEuclideanCodebook for m in layers)
    clip = read_audio(SHIPPED_CLIP)
    frames = [clip[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] for i in range(40)]
    codec = MimiCodec(mimi)
    fast = [codec.encode(f)[0] for f in frames]
    for m in layers:
        m.__class__ = EuclideanCodebook
    drop_codebook_cache(mimi)
    codec.reset()
    plain = [codec.encode(f)[0] for f in frames]
    assert all(np.array_equal(a, b) for a, b in zip(fast, plain))
