"""Feeding moshi's `LMModel` the way the concealer does: the audio tokens in streams
1..dep_q, the text stream and any further streams (Moshi's user stream) absent (-1).

`teacher_forced` runs ``lm(codes)`` (moshi undoes its own delays: logits are aligned with
the codes) and returns finite logits (moshi fills invalid positions with NaN) and the
validity mask. With every token given, these logits equal the per-step logits of the
streaming concealer (`simlab.actors.concealer.LMConcealer`).
"""
from __future__ import annotations

import torch

from simlab.train.losses import weighted_token_ce

ABSENT = -1


def lm_codes(lm, audio: torch.Tensor) -> torch.Tensor:
    """[B, dep_q, T] audio tokens (-1 = absent) -> [B, num_codebooks, T] LM input."""
    B, K, T = audio.shape
    if K != lm.dep_q:
        raise ValueError(f"LM input: {K} audio codebooks, the LM predicts {lm.dep_q}")
    codes = torch.full((B, lm.num_codebooks, T), ABSENT, dtype=torch.long, device=audio.device)
    codes[:, lm.audio_offset:lm.audio_offset + K] = audio
    return codes


def teacher_forced(lm, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [B, dep_q, T, card] with invalid positions zeroed, valid mask [B, dep_q, T])."""
    out = lm(lm_codes(lm, audio))
    valid = out.mask
    logits = torch.where(valid[..., None], out.logits, torch.zeros((), dtype=out.logits.dtype, device=audio.device))
    return logits, valid


def depth_weights(semantic: float, acoustic: float, dep_q: int) -> torch.Tensor:
    """λ of eq. 19: ``semantic`` for codebook 0, ``acoustic`` for the others."""
    return torch.tensor([semantic] + [acoustic] * (dep_q - 1), dtype=torch.float32)


def lm_loss(lm, inputs: torch.Tensor, targets: torch.Tensor, counted: torch.Tensor,
            weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 19 on ``targets`` for the LM fed ``inputs`` (both [B, dep_q, T]), counting the
    positions in ``counted`` that moshi marks valid. Returns (loss, argmax [B, dep_q, T],
    counted & valid)."""
    logits, valid = teacher_forced(lm, inputs)
    mask = counted & valid
    loss = weighted_token_ce(logits, targets, mask, weights.to(logits.device))
    return loss, logits.argmax(dim=-1), mask
