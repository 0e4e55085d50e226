"""Mimi as a frame-by-frame codec: 80 ms of 24 kHz audio <-> 8 tokens (+ the 512-d latent).

Both directions run in moshi's streaming mode, one 1920-sample frame per call. The codec keeps
its own streaming state (set on the shared model around each call), so several codecs can share
one loaded Mimi, and the sender's encoder and the receiver's decoder never disturb each other.

Decoding accepts erasures: a token given as -1 is *left out* of the sum of codebook vectors.
Code 0 is a real centroid, so padding with 0 would decode something that was never sent. The
quantized latent is therefore summed here from the centroids of the present tokens only (the
arithmetic of moshi's `SplitResidualVectorQuantizer.decode`), and Mimi's decoder path
(upsampling, decoder transformer, SEANet decoder) runs on it.
"""
from __future__ import annotations

import numpy as np
import torch

from simlab.models.mimi_config import FRAME_SAMPLES, LATENT_DIM, check_mimi, codebook_layers


class MimiCodec:
    """Streaming Mimi encoder/decoder for one stream (batch 1), or for ``batch`` streams stepped
    together (`encode_batch`, `decode_batch`: row b is stream b; each row's state is its own).

    ``fast_cpu`` switches the model's transposed convolutions to `GemmConvTranspose1d` (in
    place, on the shared model; same parameters, same results to float rounding), which
    makes a full-size frame decode several times faster on CPU; CUDA is not affected.
    """

    def __init__(self, mimi, device: str | torch.device | None = None, fast_cpu: bool = True, batch: int = 1):
        check_mimi(mimi)
        self.mimi = mimi.eval()
        if fast_cpu:
            use_gemm_conv_transpose(mimi)
        param = next(mimi.parameters())
        self.device = torch.device(device) if device is not None else param.device
        self.dtype = param.dtype
        self.n_q = mimi.num_codebooks
        self.n_semantic = mimi.quantizer.n_q_semantic
        self.card = mimi.cardinality
        self._layers = codebook_layers(mimi)
        self.batch = int(batch)
        self._state: dict | None = None
        self.reset()

    def reset(self) -> None:
        """Start a new stream: fresh streaming state for encoder and decoder."""
        previous = self.mimi.get_streaming_state() if self.mimi.is_streaming else None
        if previous is not None:
            self.mimi._stop_streaming()
        with self.mimi.streaming(self.batch):
            self._state = self.mimi.get_streaming_state()
        self._streaming = _Streaming(self.mimi, self._state)
        if previous is not None:
            self.mimi.set_streaming_state(previous)

    # -- sender ----------------------------------------------------------------------------
    def encode(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Tokens (int64, (8,), codebook 0 semantic) and the latent z_n before quantization
        (float32, (512,)) of the next 1920-sample frame of the stream."""
        x = np.asarray(frame, dtype=np.float32)
        if x.shape != (FRAME_SAMPLES,):
            raise ValueError(f"Mimi encodes frames of shape ({FRAME_SAMPLES},), got {x.shape}")
        with torch.inference_mode(), self._streaming:
            xt = torch.from_numpy(x).to(self.device, self.dtype).view(1, 1, FRAME_SAMPLES)
            z = self.mimi.encode_to_latent(xt, quantize=False)  # [1, 512, 1]
            codes = self.mimi.quantizer.encode(z)  # [1, 8, 1]
        return (codes[0, :, 0].to("cpu", torch.int64).numpy(),
                z[0, :, 0].to("cpu", torch.float32).numpy())

    # -- receiver --------------------------------------------------------------------------
    def latent(self, tokens: np.ndarray) -> torch.Tensor:
        """Quantized latent [1, 512, 1] from the present tokens (-1 = absent, left out)."""
        codes = self._check_tokens(tokens)
        q = self.mimi.quantizer
        groups = ((q.rvq_first, range(0, self.n_semantic)), (q.rvq_rest, range(self.n_semantic, self.n_q)))
        out = torch.zeros(1, LATENT_DIM, 1, device=self.device, dtype=self.dtype)
        for rvq, depths in groups:
            present = [d for d in depths if codes[d] >= 0]
            if not present:
                continue  # no codebook of this group: it adds nothing (its projection has no bias)
            summed = None
            for d in present:
                code = torch.tensor([[int(codes[d])]], device=self.device)
                vec = self._layers[d].decode(code)  # [1, D, 1]
                summed = vec if summed is None else summed + vec
            out = out + rvq.output_proj(summed)
        return out

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """The next 1920 samples (float32) of the stream from one frame's tokens; -1 = absent."""
        with torch.inference_mode(), self._streaming:
            emb = self.latent(tokens)
            return self._decode_latent(emb)

    def _decode_latent(self, emb: torch.Tensor) -> np.ndarray:
        # The path of MimiModel.decode after `decode_latent`, in streaming mode.
        state = self.mimi._streaming_state
        emb = self.mimi._to_encoder_framerate(emb)
        if self.mimi.decoder_transformer is not None:
            (emb,) = state.graphed_tr_dec(emb)
        out = state.graphed_decoder(emb)
        return out[0, 0].to("cpu", torch.float32).numpy().copy()

    # -- batched streams (rows stepped together) ------------------------------------------------
    def encode_batch(self, frames: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """`encode` for every stream at once: frames [batch, 1920] -> tokens [batch, 8] (int64)
        and latents [batch, 512] (a tensor on the model's device)."""
        x = np.asarray(frames, dtype=np.float32)
        if x.shape != (self.batch, FRAME_SAMPLES):
            raise ValueError(f"Mimi encodes batches of shape ({self.batch}, {FRAME_SAMPLES}), got {x.shape}")
        with torch.inference_mode(), self._streaming:
            xt = torch.from_numpy(x).to(self.device, self.dtype).view(self.batch, 1, FRAME_SAMPLES)
            z = self.mimi.encode_to_latent(xt, quantize=False)  # [B, 512, 1]
            codes = self.mimi.quantizer.encode(z)  # [B, 8, 1]
        return codes[:, :, 0].to("cpu", torch.int64).numpy(), z[:, :, 0].clone()

    def decode_batch(self, tokens: np.ndarray) -> np.ndarray:
        """`decode` for every stream at once: tokens [batch, 8] (-1 = absent) -> [batch, 1920]."""
        codes = np.asarray(tokens)
        if codes.shape != (self.batch, self.n_q) or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"Mimi decodes integer token rows of shape ({self.batch}, {self.n_q}), "
                             f"got {codes.dtype} {codes.shape}")
        if np.any(codes >= self.card) or np.any(codes < -1):
            raise ValueError(f"tokens must be in [0, {self.card}) or -1 (absent)")
        with torch.inference_mode(), self._streaming:
            emb = self._latent_batch(codes)
            state = self.mimi._streaming_state
            emb = self.mimi._to_encoder_framerate(emb)
            if self.mimi.decoder_transformer is not None:
                (emb,) = state.graphed_tr_dec(emb)
            out = state.graphed_decoder(emb)
            return out[:, 0].to("cpu", torch.float32).numpy().copy()

    def _latent_batch(self, codes: np.ndarray) -> torch.Tensor:
        """`latent` row by row: an absent token adds an exact zero in its place, so each row's
        sum is the one `latent` forms (same order; x + 0 is x)."""
        q = self.mimi.quantizer
        present = torch.from_numpy(codes >= 0).to(self.device)
        idx = torch.from_numpy(np.maximum(codes, 0)).to(self.device)
        out = torch.zeros(self.batch, LATENT_DIM, 1, device=self.device, dtype=self.dtype)
        for rvq, depths in ((q.rvq_first, range(0, self.n_semantic)), (q.rvq_rest, range(self.n_semantic, self.n_q))):
            summed = None
            for d in depths:
                vec = self._layers[d].decode(idx[:, d:d + 1]) * present[:, d, None, None].to(self.dtype)
                summed = vec if summed is None else summed + vec
            rows = present[:, list(depths)].any(dim=1)
            if rows.any():  # a row with no codebook of the group gets exactly 0 (the projection has no bias)
                out = out + rvq.output_proj(summed) * rows[:, None, None].to(self.dtype)
        return out

    def _check_tokens(self, tokens: np.ndarray) -> np.ndarray:
        codes = np.asarray(tokens)
        if codes.shape != (self.n_q,) or not np.issubdtype(codes.dtype, np.integer):
            raise ValueError(f"Mimi decodes integer token rows of shape ({self.n_q},), got {codes.dtype} {codes.shape}")
        if np.any(codes >= self.card) or np.any(codes < -1):
            raise ValueError(f"tokens must be in [0, {self.card}) or -1 (absent), got {codes.tolist()}")
        return codes


class _Streaming:
    """Installs a codec's streaming state on the shared model for one call, then restores
    whatever was there (usually nothing).

    The states are written straight into each streaming module's ``__dict__`` (where
    ``nn.Module`` keeps plain attributes): the same effect as moshi's
    ``set_streaming_state``, without its per-module ``nn.Module.__setattr__`` cost (~0.7 ms a
    call on full-size Mimi, 2-5 % of a frame)."""

    def __init__(self, mimi, state: dict):
        self.mimi, self.state = mimi, state
        if mimi._cached_children is None:
            mimi.get_streaming_state()  # makes moshi cache its list of streaming modules
        self.pairs = [(module.__dict__, state[name]) for name, module in mimi._cached_children]

    def __enter__(self):
        self.previous = self.mimi.get_streaming_state() if self.mimi.is_streaming else None
        for attrs, value in self.pairs:
            attrs["_streaming_state"] = value

    def __exit__(self, *exc):
        if self.previous is not None:
            self.mimi.set_streaming_state(self.previous)
        else:
            for attrs, _ in self.pairs:
                attrs["_streaming_state"] = None


class GemmConvTranspose1d(torch.nn.ConvTranspose1d):
    """`nn.ConvTranspose1d` (same parameters, same state dict) whose inference forward is one
    GEMM on the weight as stored, ``x^T @ W[ci, co*k]``, followed by torch's own col2im
    (`F.fold`) for the overlap-add.

    Why: in streaming, Mimi's first decoder upsampler (1024 -> 512 channels, kernel 16) sees 2
    time steps per frame; for inputs that small torch's CPU path (`slow_conv_transpose2d`, or
    oneDNN, which re-packs the 32 MB weight on every call) takes ~100 ms, while one GEMM takes
    ~10 ms. Training, autograd and any case other than plain stride/kernel use torch's path.
    """

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if (torch.is_grad_enabled() or output_size is not None or x.device.type != "cpu" or x.dim() != 3
                or self.groups != 1 or self.padding != (0,) or self.dilation != (1,) or self.output_padding != (0,)):
            return super().forward(x, output_size)
        batch, c_in, steps = x.shape
        (k,), (s,) = self.kernel_size, self.stride
        cols = torch.matmul(x.transpose(1, 2), self.weight.view(c_in, -1))  # [B, T, co*k]
        length = (steps - 1) * s + k
        y = torch.nn.functional.fold(cols.transpose(1, 2), output_size=(1, length),
                                     kernel_size=(1, k), stride=(1, s))[:, :, 0]
        return y if self.bias is None else y + self.bias[:, None]


def use_gemm_conv_transpose(module: torch.nn.Module) -> int:
    """Switch every plain `nn.ConvTranspose1d` inside ``module`` to `GemmConvTranspose1d`
    in place (parameters untouched); returns how many were switched."""
    switched = 0
    for sub in module.modules():
        if type(sub) is torch.nn.ConvTranspose1d and sub.groups == 1:
            sub.__class__ = GemmConvTranspose1d
            switched += 1
    return switched
