"""LoRA through peft on moshi's LMModel: adapters on the right layers, a safetensors round
trip that reproduces the in-memory merged model exactly, and streaming after merging."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from simlab.actors.concealer import LMConcealer
from simlab.errors import UserError
from simlab.models.lm_config import build_lm, small_lm_kwargs
from simlab.models.lora import add_lora, default_target_modules, load_lora, save_lora

CARD = 64
KWARGS = small_lm_kwargs(n_q=8, card=CARD)


def _codes(seed: int, frames: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    audio = torch.randint(0, CARD, (1, 8, frames), generator=g)
    return torch.cat([torch.full((1, 1, frames), -1), audio], 1)  # text stream absent


def _perturbed_lora(seed: int = 0):
    """A fresh adapter with random (seeded) weights: B starts at zero, which would make any
    round trip trivially equal to the base model."""
    model = add_lora(build_lm(KWARGS, seed=0), rank=4, alpha=8)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(0.05 * torch.randn(param.shape, generator=g))
    return model


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_default_targets_and_trainable_parameters():
    lm = build_lm(KWARGS, seed=0)
    targets = default_target_modules(lm)
    assert "text_linear" not in targets
    assert "linears.0" in targets and "depformer_in.7" in targets
    assert "transformer.layers.0.self_attn.in_projs.0" in targets
    assert "depformer.layers.1.gating.7.linear_out" in targets
    assert all(isinstance(lm.get_submodule(t), torch.nn.Linear) for t in targets)
    model = add_lora(lm, rank=8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    # one A (r × in) and one B (out × r) per adapted linear
    expected = sum(8 * (lm.get_submodule(t).base_layer.in_features + lm.get_submodule(t).base_layer.out_features)
                   for t in targets)
    assert sum(p.numel() for n, p in model.named_parameters() if p.requires_grad) == expected


def test_save_load_round_trip_equals_in_memory_merge(tmp_path):
    model = _perturbed_lora()
    save_lora(model, tmp_path)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    merged = model.merge_and_unload().eval()
    loaded = load_lora(build_lm(KWARGS, seed=0), tmp_path)
    base = build_lm(KWARGS, seed=0)
    codes = _codes(1)
    with torch.no_grad():
        want, got, plain = merged(codes).logits, loaded(codes).logits, base(codes).logits
    valid = ~torch.isnan(want)
    assert torch.equal(torch.isnan(got), ~valid)
    assert torch.equal(got[valid], want[valid])
    assert (plain[valid] - want[valid]).abs().max() > 1e-2  # the adapter does change the model
    assert type(loaded).__name__ == "LMModel" and not loaded.training


def test_streaming_after_merging(tmp_path):
    save_lora(_perturbed_lora(seed=2), tmp_path)
    lm = load_lora(build_lm(KWARGS, seed=0), tmp_path)
    codes = _codes(3)
    with torch.no_grad():
        reference = lm(codes).logits[0]
    concealer = LMConcealer(lm, record_logits=True)
    audio = codes[0, 1:].T.numpy()
    for n in range(audio.shape[0]):
        concealer.step(int(audio[n, 0]), audio[n - 1, 1:] if n > 0 else np.full(7, -1))
        torch.testing.assert_close(concealer.last_logits[0], reference[0, n], atol=1e-4, rtol=0)
        if n > 0:
            torch.testing.assert_close(concealer.last_logits[1:], reference[1:, n - 1], atol=1e-4, rtol=0)


def test_unmerged_adapter_cannot_stream():
    model = _perturbed_lora()
    with pytest.raises(RuntimeError, match="unmerged LoRA"):
        LMConcealer(model.base_model.model)
    assert not model.base_model.model.is_streaming


def test_load_lora_bad_folders(tmp_path):
    with pytest.raises(UserError, match="missing adapter_config.json"):
        load_lora(build_lm(KWARGS, seed=0), tmp_path / "nowhere")
    save_lora(_perturbed_lora(), tmp_path)
    (tmp_path / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(UserError, match=str(tmp_path)):
        load_lora(build_lm(KWARGS, seed=0), tmp_path)
