"""Training losses: the codec's reconstruction terms and the LM's eq. 19.

Codec: multi-resolution STFT (spectral convergence + log-magnitude L1, Yamamoto et al. 2020,
as in ParallelWaveGAN/EnCodec), log-mel L1 (librosa's Slaney mel filters), and a small
waveform L1. These are the terms that track what listeners hear (spectral envelope and
harmonics) rather than sample-exact phase.

LM (eq. 19): per frame, the cross-entropy of each codebook's logits, weighted by λ_k (semantic
vs acoustic) and normalised by Σ λ_k; the text term is absent (no text stream is used).
Only positions selected by ``mask`` count (e.g. only lost tokens, for concealment).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

EPS = 1e-5


class MultiResolutionSTFTLoss(torch.nn.Module):
    """Σ over resolutions of spectral convergence + mean |log|X| − log|Y||, averaged."""

    def __init__(self, resolutions: list[tuple[int, int]]):
        super().__init__()
        self.resolutions = [tuple(r) for r in resolutions]
        for n_fft, _ in self.resolutions:
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``pred``, ``target``: [B, samples]."""
        total = pred.new_zeros(())
        for n_fft, hop in self.resolutions:
            window = getattr(self, f"window_{n_fft}")
            p = _magnitude(pred, n_fft, hop, window)
            t = _magnitude(target, n_fft, hop, window)
            sc = torch.linalg.norm(t - p) / torch.linalg.norm(t).clamp_min(EPS)
            total = total + sc + F.l1_loss(torch.log(p), torch.log(t))
        return total / len(self.resolutions)


class MelLoss(torch.nn.Module):
    """L1 between log-mel spectrograms (``n_mels`` Slaney filters up to Nyquist)."""

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int):
        super().__init__()
        import librosa

        mel = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)
        self.register_buffer("mel", torch.from_numpy(mel).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.n_fft, self.hop = n_fft, hop

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = self.mel @ _magnitude(pred, self.n_fft, self.hop, self.window)
        t = self.mel @ _magnitude(target, self.n_fft, self.hop, self.window)
        return F.l1_loss(torch.log(p.clamp_min(EPS)), torch.log(t.clamp_min(EPS)))


def _magnitude(x: torch.Tensor, n_fft: int, hop: int, window: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(x, n_fft, hop_length=hop, window=window, return_complex=True)
    return spec.abs().clamp_min(EPS)  # [B, freq, frames]


def weighted_token_ce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                      weights: torch.Tensor) -> torch.Tensor:
    """Eq. 19's audio term: mean over frames of Σ_k λ_k CE_k / Σ_k λ_k, counting only the
    positions where ``mask`` is true (frames with none count zero and are not averaged).

    ``logits`` [B, K, T, card], ``targets`` [B, K, T] (long), ``mask`` [B, K, T] (bool),
    ``weights`` λ [K]. Returns a scalar (0 with a gradient path if nothing is masked).
    """
    B, K, T, card = logits.shape
    ce = F.cross_entropy(logits.float().reshape(-1, card), targets.clamp_min(0).reshape(-1),
                         reduction="none").view(B, K, T)
    lam = weights.to(ce).view(1, K, 1) * mask.to(ce)
    per_frame = (lam * ce).sum(dim=1) / lam.sum(dim=1).clamp_min(EPS)  # [B, T]
    counted = mask.any(dim=1)
    return (per_frame * counted).sum() / counted.sum().clamp_min(1)
