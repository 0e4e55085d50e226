"""Adaptive controller: masks (eq. 5-7), soft step (eq. 11), straight-through (eq. 13),
the paper's architecture and its size, and frame-by-frame decisions equal to the sequence."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simlab.actors.controller import (
    AdaptiveController,
    FixedController,
    hard_mask,
    parameter_count,
    soft_mask,
    soft_step,
)

N_Q = 8
PAPER_PARAMS = 0.517e6


def _importances(seed: int, shape=(500,)):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g, dtype=torch.float64), torch.rand(shape, generator=g, dtype=torch.float64)


def test_hard_mask_hand_values():
    # L·I_s = 4 → first four sent; L·I_c = 2 → first two doubled.
    m = hard_mask(torch.tensor(0.5), torch.tensor(0.25), 8)
    assert m.tolist() == [2, 2, 1, 1, 0, 0, 0, 0]
    # H^j(i) = 1 iff j ≤ i, with j from 1: L·I = 2.99 sends two tokens, 3.0 three.
    assert hard_mask(torch.tensor(2.99 / 8), torch.tensor(0.0), 8).tolist() == [1, 1, 0, 0, 0, 0, 0, 0]
    assert hard_mask(torch.tensor(3.0 / 8), torch.tensor(0.0), 8).tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    # L up to 2·N_Q: L·I can exceed N_Q, the mask saturates at all-2.
    assert hard_mask(torch.tensor(1.0), torch.tensor(1.0), 16).tolist() == [2] * 8
    assert hard_mask(torch.tensor(0.7), torch.tensor(0.9), 0).tolist() == [0] * 8


def test_hard_mask_values_budget_and_monotone_in_L():
    i_s, i_c = _importances(0)
    previous = None
    for L in range(0, 2 * N_Q + 1):
        m = hard_mask(i_s, i_c, L, N_Q)
        assert m.dtype == torch.long and m.shape == (500, N_Q)
        assert set(m.unique().tolist()) <= {0, 1, 2}
        assert (m.sum(-1) <= 2 * N_Q).all()
        # prefix-shaped: copies never increase with depth
        assert (m[:, 1:] <= m[:, :-1]).all()
        # eq. 5-7: Σ m = ⌊L·I_s⌋ + ⌊L·I_c⌋, each capped at N_Q
        expected = torch.clamp(torch.floor(L * i_s), max=N_Q) + torch.clamp(torch.floor(L * i_c), max=N_Q)
        assert torch.equal(m.sum(-1), expected.long())
        if previous is not None:
            assert (m >= previous).all(), f"more quantizers gave fewer copies at L={L}"
        previous = m


def test_hard_mask_per_example_quantizers():
    i_s, i_c = _importances(1, (4,))
    L = torch.tensor([1, 4, 8, 16])
    m = hard_mask(i_s, i_c, L)
    for b in range(4):
        assert torch.equal(m[b], hard_mask(i_s[b], i_c[b], int(L[b])))


def test_soft_step_against_formula():
    tau = 3.0
    for i in np.linspace(-1, 9, 41):
        for j in range(1, 9):
            direct = math.log(math.cosh(tau * (i - j)) / math.cosh(tau * (-i + j + 1))) / (2 * tau) + 0.5
            got = soft_step(torch.tensor(i, dtype=torch.float64), torch.tensor(float(j), dtype=torch.float64), tau)
            assert got.item() == pytest.approx(direct, abs=1e-12)
    # very sharp: a ramp from j to j+1, no overflow
    i = torch.tensor([0.0, 2.0, 2.5, 3.0, 7.0], dtype=torch.float64)
    got = soft_step(i, torch.tensor(2.0, dtype=torch.float64), 1e4)
    assert torch.allclose(got, torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0], dtype=torch.float64), atol=1e-4)


def test_soft_mask_forward_equals_hard_and_gradients_flow():
    i_s, i_c = _importances(2, (64,))
    i_s.requires_grad_(True)
    i_c.requires_grad_(True)
    for L in (1, 5, 8, 13):
        m = soft_mask(i_s, i_c, L, N_Q, tau=4.0)
        assert torch.equal(m.detach().long().double(), m.detach())  # integral values
        assert torch.equal(m.detach().long(), hard_mask(i_s.detach(), i_c.detach(), L, N_Q))
    m = soft_mask(i_s, i_c, 8, N_Q, tau=4.0)
    m.sum().backward()
    for grad in (i_s.grad, i_c.grad):
        assert torch.isfinite(grad).all()
        assert (grad > 0).all()  # every importance in (0, 1) sits on some ramp: d(sum m)/dI > 0
    # straight-through gradient = gradient of the soft step itself
    x = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    soft_step(8 * x[:, None], torch.arange(1, 9, dtype=torch.float64), 4.0).sum().backward()
    y = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    soft_mask(y, torch.zeros(1, dtype=torch.float64), 8, N_Q, tau=4.0).sum().backward()
    assert torch.allclose(x.grad, y.grad)


def test_architecture_and_parameter_count():
    c = AdaptiveController()
    convs = [m for m in c.extractor if isinstance(m, torch.nn.Conv1d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in convs] == \
        [(512, 256, 3), (256, 128, 3), (128, 64, 3), (64, 1, 3)]
    adapter = [m for m in c.adapter if isinstance(m, torch.nn.Conv1d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size[0]) for m in adapter] == [(2, 32, 1), (32, 2, 1)]
    # the count follows from the layers: conv weights + biases, one Snake α per channel
    expected = sum(i * o * k + o for i, o, k in [(512, 256, 3), (256, 128, 3), (128, 64, 3), (64, 1, 3),
                                                 (2, 32, 1), (32, 2, 1)]) + (256 + 128 + 64 + 32)
    count = parameter_count(c)
    print(f"controller parameters: ours {count} ({count / 1e6:.3f} M), paper 0.517 M")
    assert count == expected == 517_379
    assert abs(count - PAPER_PARAMS) / PAPER_PARAMS < 0.01


def test_forward_shapes_ranges_and_p_forms():
    c = AdaptiveController()
    z = torch.randn(3, 512, 10, generator=torch.Generator().manual_seed(0))
    i_s, i_c = c(z, torch.tensor([0.0, 0.1, 0.3]))
    assert i_s.shape == i_c.shape == (3, 10)
    assert ((i_s > 0) & (i_s < 1) & (i_c > 0) & (i_c < 1)).all()
    j_s, j_c = c(z, torch.tensor([0.0, 0.1, 0.3])[:, None].expand(3, 10))
    assert torch.equal(i_s, j_s) and torch.equal(i_c, j_c)
    with pytest.raises(ValueError, match="p must be"):
        c(z, torch.zeros(2))
    with pytest.raises(ValueError, match="z must be"):
        c(torch.zeros(1, 256, 4), torch.zeros(1))


def test_forward_is_causal():
    c = AdaptiveController()
    g = torch.Generator().manual_seed(5)
    z = torch.randn(1, 512, 16, generator=g)
    z2 = z.clone()
    z2[..., 9:] = torch.randn(1, 512, 7, generator=g)
    a = torch.stack(c(z, torch.full((1,), 0.2)))
    b = torch.stack(c(z2, torch.full((1,), 0.2)))
    assert torch.equal(a[..., :9], b[..., :9])
    assert not torch.equal(a[..., 9:], b[..., 9:])


def test_decide_streams_like_forward_on_the_sequence():
    c = AdaptiveController()
    g = torch.Generator().manual_seed(7)
    z = torch.randn(1, 512, 20, generator=g)
    p = torch.linspace(0.0, 0.4, 20)[None]
    i_s, i_c = c(z, p)
    c.reset()
    for t in range(20):
        m = c.decide(z[0, :, t].numpy(), float(p[0, t]), 6)
        assert m.dtype == np.int8 and m.shape == (8,)
        np.testing.assert_array_equal(m, hard_mask(i_s[0, t], i_c[0, t], 6).numpy())
    # reset forgets the past: the first decision again
    c.reset()
    np.testing.assert_array_equal(c.decide(z[0, :, 0], float(p[0, 0]), 6),
                                  hard_mask(i_s[0, 0], i_c[0, 0], 6).numpy())


def test_decide_rejects_bad_input():
    c = AdaptiveController()
    z = np.zeros(512, dtype=np.float32)
    with pytest.raises(ValueError, match="p_hat"):
        c.decide(z, 1.5, 8)
    with pytest.raises(ValueError, match="quantizers"):
        c.decide(z, 0.1, 17)
    with pytest.raises(ValueError, match="512"):
        c.decide(np.zeros(256), 0.1, 8)


def test_seeded_and_leaves_global_rng_alone():
    before = torch.random.get_rng_state()
    a, b, other = AdaptiveController(seed=3), AdaptiveController(seed=3), AdaptiveController(seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), other.parameters()))


def test_fixed_controller():
    f = FixedController(quantizers=5, redundant=2)
    np.testing.assert_array_equal(f.decide(None, 0.3), [2, 2, 1, 1, 1, 0, 0, 0])
    assert f.decide(None, 0.3).dtype == np.int8
    np.testing.assert_array_equal(f.decide(None, 0.0, quantizers=1), [2, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(FixedController(8, 0).decide(None, 0.0), [1] * 8)
    with pytest.raises(ValueError, match="redundant"):
        FixedController(3, 4)
    with pytest.raises(ValueError, match="quantizers"):
        FixedController(9, 0)


def test_straight_through_trains_the_network():
    c = AdaptiveController()
    z = torch.randn(2, 512, 6, generator=torch.Generator().manual_seed(9))
    i_s, i_c = c(z, torch.tensor([0.05, 0.25]))
    # eq. 20's rate term γ Σ m: its gradient must reach every layer through eq. 13
    soft_mask(i_s, i_c, torch.tensor([4, 12])[:, None]).sum().backward()
    for name, param in c.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name
