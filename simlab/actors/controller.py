"""The adaptive controller of LargeSC (paper section on content- and loss-aware compression).

From the latent z_n of a frame (512-d, Mimi before quantization) and the loss rate p the
controller gives two importances in [0, 1]: I_s (content: an important frame loses fewer
tokens) and I_c (channel: a lossy link gets more redundancy). With L quantizers in use
they become a mask m ∈ {0, 1, 2}^N_Q (eq. 5-7): m_j = H^j(L·I_s) + H^j(L·I_c), so the first
⌊L·I_s⌋ tokens are sent and the first ⌊L·I_c⌋ of them (or of all) are sent twice.

Network (the paper's, exactly): semantic-importance extractor of four Conv1d with kernel 3,
Snake activations, 512 → 256 → 128 → 64 → 1 (giving I_sem); I_sem concatenated with p; two
Conv1d with kernel 1; sigmoid → (I_s, I_c).

Padding choice: the kernel-3 convolutions are *causal* (two zeros on the left, none on the
right). A sender cannot wait for future frames, and a causal network trained on sequences
is exactly the network that runs frame by frame: `decide` keeps the last
`receptive_field` latents and its output equals `forward` on the whole sequence so far.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Default sharpness τ of the soft step (eq. 11). The paper does not state its value.
DEFAULT_TAU = 4.0


class Snake(nn.Module):
    """Snake activation x + sin²(αx)/α with a learned α per channel (Ziyin et al. 2020),
    in the form DAC and BigVGAN use (α starts at 1; 1e-9 guards the division)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


class CausalConv1d(nn.Conv1d):
    """Conv1d that pads only on the left, so output t depends on inputs ≤ t."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = (self.kernel_size[0] - 1) * self.dilation[0]
        return super().forward(F.pad(x, (left, 0)))


class AdaptiveController(nn.Module):
    """(z, p) → (I_s, I_c), the paper's controller network; see the module docstring.

    ``adapter_channels`` is the width between the two kernel-1 convolutions (the paper does
    not give it; it changes the parameter count by 5 per channel). The initial weights come
    from ``seed`` (PyTorch's initialisers draw from the global generator: they run inside
    `torch.random.fork_rng`, so the caller's random state is untouched); ``None``: unseeded.
    """

    def __init__(self, latent_dim: int = 512, widths: tuple[int, ...] = (256, 128, 64),
                 adapter_channels: int = 32, n_q: int = 8, seed: int | None = 0):
        super().__init__()
        with _seeded(seed):
            self._build(latent_dim, widths, adapter_channels, n_q)
        self._history: list[torch.Tensor] = []

    def _build(self, latent_dim: int, widths: tuple[int, ...], adapter_channels: int, n_q: int) -> None:
        self.latent_dim = latent_dim
        self.n_q = n_q
        layers: list[nn.Module] = []
        c_in = latent_dim
        for c_out in widths:
            layers += [CausalConv1d(c_in, c_out, kernel_size=3), Snake(c_out)]
            c_in = c_out
        layers.append(CausalConv1d(c_in, 1, kernel_size=3))  # I_sem: a linear read-out
        self.extractor = nn.Sequential(*layers)
        # Channel adaptation: [I_sem, p] → hidden → [logit I_s, logit I_c]; the activation
        # between the two kernel-1 convolutions keeps them from collapsing into one.
        self.adapter = nn.Sequential(
            nn.Conv1d(2, adapter_channels, kernel_size=1), Snake(adapter_channels),
            nn.Conv1d(adapter_channels, 2, kernel_size=1),
        )
        #: Frames of history the current output depends on (1 + 2 per kernel-3 layer).
        self.receptive_field = 1 + 2 * (len(widths) + 1)

    def forward(self, z: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, 512, T], p [B] or [B, T] (loss rate in [0, 1]) → (I_s, I_c), each [B, T]."""
        if z.dim() != 3 or z.shape[1] != self.latent_dim:
            raise ValueError(f"controller: z must be [B, {self.latent_dim}, T], got {list(z.shape)}")
        B, _, T = z.shape
        p = torch.as_tensor(p, dtype=z.dtype, device=z.device)
        if p.shape == (B,):
            p = p[:, None].expand(B, T)
        if p.shape != (B, T):
            raise ValueError(f"controller: p must be [B] or [B, T] = [{B}, {T}], got {list(p.shape)}")
        i_sem = self.extractor(z)  # [B, 1, T]
        out = torch.sigmoid(self.adapter(torch.cat([i_sem, p[:, None, :]], dim=1)))
        return out[:, 0], out[:, 1]

    def reset(self) -> None:
        """Forget the latents of earlier frames (a new stream starts)."""
        self._history = []

    def decide(self, z: np.ndarray | torch.Tensor, p_hat: float, quantizers: int) -> np.ndarray:
        """The hard mask (int8, n_q values) for one frame's latent ``z`` (512 values).

        Streaming: remembers the last ``receptive_field - 1`` latents, so the result equals
        `forward` over the whole stream since `reset`. No gradient; no layer here depends on
        train/eval mode (no dropout, no normalisation).
        """
        return decide_on(self, self._history, z, p_hat, quantizers)


class ControllerStream:
    """One stream's decisions on a shared `AdaptiveController`: the latent history is the
    stream's own, the weights are the network's (flows of a run share one loaded network)."""

    def __init__(self, net: AdaptiveController):
        self.net = net
        self.n_q = net.n_q
        self.reset()

    def reset(self) -> None:
        self._history: list[torch.Tensor] = []

    def decide(self, z, p_hat: float, quantizers: int) -> np.ndarray:
        return decide_on(self.net, self._history, z, p_hat, quantizers)

    def push(self, z: torch.Tensor) -> torch.Tensor:
        """Append one latent column [512, 1] (on the net's device and dtype) to the history and
        return the window [512, t] the next decision sees (batched streams, `simlab.actors.largesc_batch`)."""
        return _push(self.net, self._history, z)


def _push(net: AdaptiveController, history: list, frame: torch.Tensor) -> torch.Tensor:
    """Append a latent column to ``history``, keep the receptive field, return the window [512, t]."""
    history.append(frame)
    del history[:-net.receptive_field]
    return torch.cat(history, dim=1)


def decide_on(net: AdaptiveController, history: list, z, p_hat: float, quantizers: int) -> np.ndarray:
    """`AdaptiveController.decide` with the latent history in ``history`` (updated in place)."""
    p = float(p_hat)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"controller: p_hat={p_hat!r} is outside [0, 1]")
    _check_quantizers(quantizers, net.n_q)
    param = next(net.parameters())
    with torch.no_grad():
        frame = torch.as_tensor(np.asarray(z) if not torch.is_tensor(z) else z)
        if frame.numel() != net.latent_dim:
            raise ValueError(f"controller: z must hold {net.latent_dim} values, "
                             f"got shape {tuple(frame.shape)}")
        frame = frame.reshape(net.latent_dim, 1).to(device=param.device, dtype=param.dtype)
        window = _push(net, history, frame)[None]  # [1, 512, t ≤ receptive_field]
        p_row = torch.full((1, window.shape[2]), p, dtype=param.dtype, device=param.device)
        i_s, i_c = net.forward(window, p_row)
        mask = hard_mask(i_s[0, -1], i_c[0, -1], quantizers, net.n_q)
    return mask.cpu().numpy().astype(np.int8)


class FixedController:
    """Ablation: no content or loss awareness. The first L tokens are sent, the first R of
    them twice (``redundant`` R ≤ L ≤ n_q)."""

    def __init__(self, quantizers: int, redundant: int, n_q: int = 8):
        _check_quantizers(quantizers, n_q, upper=n_q)
        if not isinstance(redundant, (int, np.integer)) or not 0 <= redundant <= quantizers:
            raise ValueError(f"fixed controller: redundant={redundant!r} must be an int in "
                             f"[0, quantizers={quantizers}]")
        self.quantizers, self.redundant, self.n_q = int(quantizers), int(redundant), n_q

    def reset(self) -> None:
        """Nothing to forget (for symmetry with `AdaptiveController`)."""

    def decide(self, z=None, p_hat: float = 0.0, quantizers: int | None = None) -> np.ndarray:
        """The mask; ``quantizers`` overrides L for this frame (R is capped at it)."""
        L = self.quantizers if quantizers is None else quantizers
        _check_quantizers(L, self.n_q, upper=self.n_q)
        mask = np.zeros(self.n_q, dtype=np.int8)
        mask[:L] = 1
        mask[:min(self.redundant, L)] = 2
        return mask


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's CPU generator seeded, restoring it afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _check_quantizers(quantizers, n_q: int, upper: int | None = None) -> None:
    upper = 2 * n_q if upper is None else upper
    if not isinstance(quantizers, (int, np.integer)) or not 0 <= quantizers <= upper:
        raise ValueError(f"controller: quantizers={quantizers!r} must be an int in [0, {upper}]")


def _levels(n_q: int, like: torch.Tensor) -> torch.Tensor:
    return torch.arange(1, n_q + 1, device=like.device, dtype=like.dtype)


def _scaled(i: torch.Tensor, quantizers) -> torch.Tensor:
    L = torch.as_tensor(quantizers, dtype=i.dtype, device=i.device)
    return (L * i)[..., None]  # [..., 1], broadcast against the levels j = 1..n_q


def hard_mask(i_s: torch.Tensor, i_c: torch.Tensor, quantizers, n_q: int = 8) -> torch.Tensor:
    """Eq. 5-7: m_j = H^j(L·I_s) + H^j(L·I_c), H^j(i) = 1 if j ≤ i else 0, j = 1..n_q.

    ``quantizers`` (L) is an int or a tensor broadcastable to ``i_s`` (one L per example).
    Returns a LongTensor [..., n_q] with values in {0, 1, 2}.
    """
    i_s, i_c = torch.as_tensor(i_s), torch.as_tensor(i_c)
    j = _levels(n_q, i_s)
    return (j <= _scaled(i_s, quantizers)).long() + (j <= _scaled(i_c, quantizers)).long()


def soft_step(i: torch.Tensor, j: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 11: H_soft^j(i) = log(cosh(τ(i−j)) / cosh(τ(−i+j+1))) / (2τ) + 1/2.

    log cosh(x) = |x| + log1p(e^{−2|x|}) − log 2 keeps it finite for any τ (the log 2 cancels).
    """
    def logcosh(x: torch.Tensor) -> torch.Tensor:
        return x.abs() + torch.log1p(torch.exp(-2.0 * x.abs()))

    return (logcosh(tau * (i - j)) - logcosh(tau * (j + 1 - i))) / (2.0 * tau) + 0.5


def soft_mask(i_s: torch.Tensor, i_c: torch.Tensor, quantizers, n_q: int = 8,
              tau: float = DEFAULT_TAU) -> torch.Tensor:
    """Eq. 13 straight-through mask: the value of `hard_mask`, the gradient of the soft step.

    Written as hard + (soft − sg(soft)) rather than soft + sg(hard − soft): the same function
    and gradient, but the forward value is the hard mask exactly, not up to rounding.
    """
    if tau <= 0:
        raise ValueError(f"soft_mask: tau={tau!r} must be > 0")
    j = _levels(n_q, i_s)
    soft = soft_step(_scaled(i_s, quantizers), j, tau) + soft_step(_scaled(i_c, quantizers), j, tau)
    hard = hard_mask(i_s, i_c, quantizers, n_q).to(soft.dtype)
    return hard + (soft - soft.detach())


def parameter_count(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())
