"""Checkpoints and model profiles: safe loading, round trips, moshiko's code path, errors."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("moshi")

from simlab.actors.controller import AdaptiveController  # noqa: E402
from simlab.actors.mimi import MimiCodec  # noqa: E402
from simlab.audio import SHIPPED_CLIP, read_audio  # noqa: E402
from simlab.errors import UserError  # noqa: E402
from simlab.models import lm_config, profiles  # noqa: E402
from simlab.models.checkpoint import load_state_dict, save_state_dict  # noqa: E402
from simlab.models.lora import add_lora, save_lora  # noqa: E402
from simlab.models.mimi_config import build_mimi, randomize_codebooks, small_mimi_kwargs  # noqa: E402
from simlab.models.profiles import load_profile, resolve_device  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# -- checkpoint -------------------------------------------------------------------------------
def test_safetensors_round_trip(tmp_path):
    state = {"a": torch.arange(6.0).view(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    save_state_dict(state, tmp_path / "w.safetensors")
    back = load_state_dict(tmp_path / "w.safetensors")
    assert set(back) == {"a", "b"} and all(torch.equal(back[k], state[k]) for k in state)


def test_plain_tensor_pt_file_is_accepted(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "w.pt")
    assert torch.equal(load_state_dict(tmp_path / "w.pt")["w"], torch.ones(3))


class _Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


@pytest.mark.parametrize("name,content", [
    ("w.pkl", pickle.dumps({"w": 1})),
    ("w.npy", b"\x93NUMPY"),
    ("w.safetensors", b"not a safetensors header at all"),
])
def test_non_safetensors_and_corrupt_files_are_refused(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError, match=name):
        load_state_dict(tmp_path / name)


def test_pickled_object_in_pt_file_is_refused(tmp_path, capsys):
    torch.save({"w": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UserError, match="evil.pt"):
        load_state_dict(tmp_path / "evil.pt")
    assert "pickled code ran" not in capsys.readouterr().out


def test_missing_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_state_dict(tmp_path / "none.safetensors")


# -- the models a round trip is checked on ----------------------------------------------------
def _codes(n_codebooks: int, steps: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, 2048, (1, n_codebooks, steps), generator=g)
    codes[:, 0] = torch.randint(0, 32, (1, steps), generator=g)  # the text stream of the small LM
    return codes


def _lm_logits(lm, codes):
    with torch.no_grad():
        return lm(codes).logits.float()


def _mimi_out(mimi, frames):
    codec = MimiCodec(mimi)
    tokens = [codec.encode(f)[0] for f in frames]
    return np.stack(tokens), np.concatenate([codec.decode(t) for t in tokens])


@pytest.fixture(scope="module")
def frames():
    x = read_audio(SHIPPED_CLIP)
    return [x[i * 1920:(i + 1) * 1920] for i in range(30, 33)]


@pytest.fixture(scope="module")
def originals():
    """A small Mimi, LM + LoRA adapter (non-zero) and controller, with their outputs."""
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(3)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        mimi = build_mimi(small_mimi_kwargs())
    randomize_codebooks(mimi, g)
    lm = lm_config.build_lm(lm_config.small_lm_kwargs(), seed=3)
    base_state = copy.deepcopy(lm.state_dict())
    peft_model = add_lora(lm, rank=4)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    controller = AdaptiveController(seed=5)
    with torch.no_grad():
        for p in controller.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    return {"mimi": mimi, "lm_base_state": base_state, "peft": peft_model, "controller": controller}


def _write_folder(tmp_path, originals, mimi_name="mimi.safetensors", lm_name="lm.safetensors"):
    save_state_dict(originals["mimi"].state_dict(), tmp_path / mimi_name)
    save_state_dict(originals["lm_base_state"], tmp_path / lm_name)
    save_lora(originals["peft"], tmp_path / "lora")
    save_state_dict(originals["controller"].state_dict(), tmp_path / "controller.safetensors")


def test_folder_profile_round_trip_gives_identical_outputs(tmp_path, originals, frames):
    _write_folder(tmp_path, originals)
    (tmp_path / "profile.yaml").write_text(
        "name: tiny\nmimi: {checkpoint: mimi.safetensors, kwargs: small}\n"
        "lm: {checkpoint: lm.safetensors, kwargs: small, lora: lora}\n"
        "controller: {checkpoint: controller.safetensors}\n")
    models = load_profile(str(tmp_path), device="cpu")
    assert models.trained and not models.warnings and models.profile.name == "tiny"
    # Mimi: same tokens and audio.
    want_tokens, want_audio = _mimi_out(copy.deepcopy(originals["mimi"]), frames)
    got_tokens, got_audio = _mimi_out(models.mimi, frames)
    np.testing.assert_array_equal(got_tokens, want_tokens)
    np.testing.assert_array_equal(got_audio, want_audio)
    # LM + LoRA: the loaded, merged LM gives the adapted model's logits.
    codes = _codes(models.lm.num_codebooks)
    with torch.no_grad():
        want = originals["peft"](codes).logits.float()
    got = _lm_logits(models.lm, codes)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4, equal_nan=True)
    base = lm_config.build_lm(lm_config.small_lm_kwargs(), seed=None)
    base.load_state_dict(originals["lm_base_state"])
    assert (_lm_logits(base, codes) - want).nan_to_num().abs().max() > 1e-4, "the adapter must matter"
    # Controller: identical importances.
    z, p = torch.randn(1, 512, 6, generator=torch.Generator().manual_seed(0)), torch.tensor([0.2])
    with torch.no_grad():
        for a, b in zip(models.controller(z, p), originals["controller"](z, p)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    described = models.describe()
    assert described["trained"] and described["params_controller"] == sum(
        q.numel() for q in originals["controller"].parameters())


def test_moshiko_local_folder_uses_the_explicit_kwargs(tmp_path, originals, frames, monkeypatch):
    monkeypatch.setattr(profiles, "MOSHIKO_MIMI_KWARGS", small_mimi_kwargs())
    monkeypatch.setattr(lm_config, "MOSHIKO_LM_KWARGS", lm_config.small_lm_kwargs())
    _write_folder(tmp_path, originals, mimi_name=profiles.MOSHIKO_MIMI_FILE, lm_name=profiles.MOSHIKO_LM_FILE)
    for name in (f"moshiko:{tmp_path}", str(tmp_path)):
        models = load_profile(name, device="cpu")
        assert models.profile.name == "moshiko" and models.profile.lm_dtype == "bfloat16"
        assert models.random_parts == ["controller"] and not models.trained
        assert any("UNTRAINED" in w for w in models.warnings)
        want_tokens, want_audio = _mimi_out(copy.deepcopy(originals["mimi"]), frames)
        got_tokens, got_audio = _mimi_out(models.mimi, frames)
        np.testing.assert_array_equal(got_tokens, want_tokens)
        np.testing.assert_array_equal(got_audio, want_audio)
        base = lm_config.build_lm(lm_config.small_lm_kwargs(), seed=None)
        base.load_state_dict(originals["lm_base_state"])
        codes = _codes(models.lm.num_codebooks)
        assert next(models.lm.parameters()).dtype == torch.bfloat16
        torch.testing.assert_close(_lm_logits(models.lm, codes), _lm_logits(base.to(torch.bfloat16), codes),
                                   atol=0, rtol=0, equal_nan=True)


def test_moshiko_without_weights_fails_clearly(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no 23 s of retries
    # A repo no cache holds: the real 15 GB weights must never be loaded by a test.
    monkeypatch.setattr(profiles, "MOSHIKO_REPO", "simlab-tests/no-such-repo")
    with pytest.raises(UserError, match="moshiko: cannot get tokenizer.*no-such-repo"):
        load_profile("moshiko", device="cpu")
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / profiles.MOSHIKO_LM_FILE).write_bytes(b"")
    with pytest.raises(UserError, match="missing tokenizer"):
        load_profile(f"moshiko:{tmp_path / 'm'}", device="cpu")


def test_small_profile_is_random_reproducible_and_loudly_untrained(monkeypatch, tmp_path):
    from simlab.models import profiles

    monkeypatch.setattr(profiles, "SMALL_DIR", tmp_path)  # as before any weights were shipped
    state = torch.random.get_rng_state()
    a = load_profile("small", device="cpu", seed=1)
    assert torch.equal(torch.random.get_rng_state(), state), "global torch RNG must be left alone"
    b = load_profile("small", device="cpu", seed=1)
    c = load_profile("small", device="cpu", seed=2)
    assert not a.trained and a.describe()["trained"] is False
    assert any("UNTRAINED" in w and "no result from it is a quality result" in w.lower() for w in a.warnings)
    for part in ("mimi", "lm", "controller"):
        sa, sb, sc = (getattr(m, part).state_dict() for m in (a, b, c))
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
        assert any(not torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


@pytest.mark.parametrize("yaml_text,match", [
    ("mimi: {checkpoint: x.safetensors}\n", "mimi.checkpoint"),
    ("lm: {kwargs: huge}\n", "lm.kwargs"),
    ("colour: blue\n", "unknown key colour"),
    ("lm: {dtype: float64}\n", "lm.dtype"),
    ("trained: maybe\n", "trained"),
    ("mimi: [1, 2]\n", "mimi must be a mapping"),
])
def test_bad_profile_yaml_names_the_key(tmp_path, yaml_text, match):
    (tmp_path / "profile.yaml").write_text(yaml_text)
    with pytest.raises(UserError, match=match):
        load_profile(str(tmp_path), device="cpu")


def test_checkpoint_of_the_wrong_shape_is_a_user_error(tmp_path):
    save_state_dict({"weight": torch.zeros(2)}, tmp_path / "c.safetensors")
    (tmp_path / "profile.yaml").write_text("controller: {checkpoint: c.safetensors}\n")
    with pytest.raises(UserError, match="c.safetensors.*controller"):
        load_profile(str(tmp_path), device="cpu")


def test_unknown_profile_and_device():
    with pytest.raises(UserError, match="not 'small'"):
        load_profile("no-such-profile-or-folder")
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UserError, match="device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            resolve_device("cuda")
