"""Mimi's nearest-centroid search without recomputing the codebook's half of it on every call.

moshi's `EuclideanCodebook._quantize` calls ``torch.cdist(x, embedding)``; for 2048 centroids
torch computes it as one matrix product (ATen's ``_euclidean_dist``): it pads x with its squared
norm and ones, pads the centroids with ones and *their* squared norms, and multiplies. The
centroids' padded table is the same on every call, yet rebuilt each time (a 2048 x (D + 2)
copy): 0.28 ms of a 0.06 ms search, 8 times a frame. `FastEuclideanCodebook` keeps that table
and does the rest exactly as ATen does, so the distances, and the tokens, are bit for bit the
same (tests/test_codebook.py).
"""
from __future__ import annotations

import torch
from moshi.quantization.core_vq import EuclideanCodebook


class FastEuclideanCodebook(EuclideanCodebook):
    """`EuclideanCodebook` whose inference-time search reuses the centroids' padded table. The
    table follows ``self.embedding`` (moshi's cached centroids: rebuilt when that tensor is
    replaced, as `drop_codebook_cache` does, or changed in place); training, and anything
    torch would not compute by a matrix product, takes moshi's own path."""

    def _quantize(self, x: torch.Tensor) -> torch.Tensor:
        emb = self.embedding
        # cdist uses the matrix product for more than 25 rows on either side
        if torch.is_grad_enabled() or x.dim() != 2 or max(x.shape[0], emb.shape[0]) <= 25 or x.dtype != emb.dtype:
            return super()._quantize(x)
        try:
            version = emb._version
        except RuntimeError:  # an inference tensor (built inside inference_mode) keeps no version
            version = None
        cached = self.__dict__.get("_simlab_table")
        if cached is None or cached[0] is not emb or cached[1] != version:
            y = emb[None]
            y_norm = y.pow(2).sum(-1, keepdim=True)
            cached = (emb, version, torch.cat([y, torch.ones_like(y_norm), y_norm], -1))
            self.__dict__["_simlab_table"] = cached  # a plain attribute: not a buffer, not saved
        x = x[None]
        x_norm = x.pow(2).sum(-1, keepdim=True)
        x_ = torch.cat([x.mul(-2), x_norm, torch.ones_like(x_norm)], -1)
        dists = x_.matmul(cached[2].mT).clamp_min_(0).sqrt_()[0]
        return dists.argmin(dim=-1)


def use_fast_codebooks(mimi) -> int:
    """Switch Mimi's codebooks to `FastEuclideanCodebook` in place (state untouched); how many."""
    switched = 0
    for module in mimi.modules():
        if type(module) is EuclideanCodebook:
            module.__class__ = FastEuclideanCodebook
            switched += 1
    return switched
