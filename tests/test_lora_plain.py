"""load_lora merges a plain adapter without peft (faster start-up), bit for bit as peft does,
and hands anything else to peft."""
from __future__ import annotations

import json

import torch

from simlab.models import lm_config, profiles
from simlab.models.checkpoint import load_state_dict
from simlab.models.lm_config import build_lm
from simlab.models.lora import _merge_plain, load_lora, save_lora
from test_lora import KWARGS, _perturbed_lora



def _adapter(folder, seed: int = 0):
    model = _perturbed_lora(seed)
    save_lora(model, folder)
    return model.merge_and_unload()


def _assert_same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # frozen as peft leaves it: weights that require grad take other kernels (last-bit changes)
    assert [p.requires_grad for p in a.parameters()] == [p.requires_grad for p in b.parameters()]


def test_plain_merge_equals_peft_merge(tmp_path):
    want = _adapter(tmp_path)
    lm = build_lm(KWARGS, seed=0)
    assert _merge_plain(lm, tmp_path)
    _assert_same(lm, want)
    assert not any(type(m).__module__.startswith("peft.") for m in lm.modules())


def test_shipped_adapter_merges_as_peft_does():
    from peft import PeftModel

    prof = profiles.get_profile("small")

    def base():
        lm = lm_config.build_lm(prof.lm_kwargs, device="meta", dtype=torch.float32, seed=None)
        state = {k: v.float() if v.dtype.is_floating_point else v
                 for k, v in load_state_dict(prof.lm_checkpoint).items()}
        lm.load_state_dict(state, strict=True, assign=True)
        return lm

    mine = base()
    assert _merge_plain(mine, prof.lora_adapter)
    _assert_same(mine, PeftModel.from_pretrained(base(), str(prof.lora_adapter)).merge_and_unload())


def test_other_adapters_go_through_peft(tmp_path):
    want = _adapter(tmp_path, seed=1)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    for key, value in (("use_rslora", True), ("rank_pattern", {"linears.0": 2}), ("use_dora", True)):
        (tmp_path / "adapter_config.json").write_text(json.dumps({**config, key: value}))
        lm = build_lm(KWARGS, seed=0)
        assert not _merge_plain(lm, tmp_path)
        _assert_same(lm, build_lm(KWARGS, seed=0))  # untouched
    (tmp_path / "adapter_config.json").write_text(json.dumps(config))
    half = build_lm(KWARGS, seed=0).to(torch.bfloat16)
    assert not _merge_plain(half, tmp_path)  # another dtype: peft's own casts apply
    _assert_same(load_lora(build_lm(KWARGS, seed=0), tmp_path), want)
