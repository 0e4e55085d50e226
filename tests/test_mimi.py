"""MimiCodec: streaming encode/decode against moshi's own Mimi, erasures left out of the sum."""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("moshi")

from simlab.actors.mimi import GemmConvTranspose1d, MimiCodec, use_gemm_conv_transpose  # noqa: E402
from simlab.audio import SHIPPED_CLIP, read_audio  # noqa: E402
from simlab.models.mimi_config import (FRAME_SAMPLES, build_mimi, codebook_layers,  # noqa: E402
                                       randomize_codebooks, small_mimi_kwargs)

FRAMES = 6


def _mimi(kwargs, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mimi = build_mimi(kwargs)
    randomize_codebooks(mimi, torch.Generator().manual_seed(seed))
    return mimi


@pytest.fixture(scope="module")
def small():
    torch.set_num_threads(1)
    return _mimi(small_mimi_kwargs())


@pytest.fixture(scope="module")
def clip():
    x = read_audio(SHIPPED_CLIP)
    return [x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] for i in range(20, 20 + FRAMES)]


def _moshi_encode(mimi, frames):
    """moshi's own streaming encode: codes [8, T] and unquantized latents [512, T]."""
    codes, latents = [], []
    with torch.inference_mode(), mimi.streaming(1):
        for f in frames:
            x = torch.from_numpy(np.ascontiguousarray(f))[None, None]
            z = mimi.encode_to_latent(x, quantize=False)
            latents.append(z[0, :, 0].numpy())
            codes.append(mimi.quantizer.encode(z)[0, :, 0].numpy())
    return np.stack(codes, 1), np.stack(latents, 1)


def _moshi_decode(mimi, codes):
    """moshi's own streaming decode of codes [K, T], frame by frame."""
    with torch.inference_mode(), mimi.streaming(1):
        return np.concatenate([mimi.decode(torch.from_numpy(codes[:, t:t + 1])[None])[0, 0].numpy()
                               for t in range(codes.shape[1])])


def _codec_decode(codec, rows):
    codec.reset()
    return np.concatenate([codec.decode(r) for r in rows])


def test_encode_gives_8_tokens_and_512_latent_like_moshi(small, clip):
    reference = copy.deepcopy(small)
    codec = MimiCodec(small)
    out = [codec.encode(f) for f in clip]
    tokens = np.stack([t for t, _ in out], 1)
    for t, z in out:
        assert t.shape == (8,) and t.dtype == np.int64 and z.shape == (512,) and z.dtype == np.float32
        assert t.min() >= 0 and t.max() < 2048
    codes, latents = _moshi_encode(reference, clip)
    np.testing.assert_array_equal(tokens, codes)
    np.testing.assert_allclose(np.stack([z for _, z in out], 1), latents, atol=1e-6)
    assert len(np.unique(tokens[0])) > 1, "random codebooks should give frame-dependent codes"


def test_decode_all_tokens_equals_moshi_streaming_decode(small, clip):
    reference = copy.deepcopy(small)  # plain torch ConvTranspose1d, untouched by the codec
    codes, _ = _moshi_encode(reference, clip)
    codec = MimiCodec(small)
    got = _codec_decode(codec, [codes[:, t] for t in range(FRAMES)])
    want = _moshi_decode(reference, codes)
    assert got.shape == (FRAMES * FRAME_SAMPLES,) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("k", range(1, 9))
def test_first_k_codebooks_equal_moshi_decode_of_first_k(small, clip, k):
    reference = copy.deepcopy(small)
    codes, _ = _moshi_encode(reference, clip)
    rows = [np.where(np.arange(8) < k, codes[:, t], -1) for t in range(FRAMES)]
    got = _codec_decode(MimiCodec(small), rows)
    np.testing.assert_allclose(got, _moshi_decode(reference, codes[:k]), atol=1e-5, rtol=1e-4)


def test_absent_token_is_left_out_of_the_sum_not_code_zero(small, clip):
    codec = MimiCodec(small)
    codes, _ = _moshi_encode(copy.deepcopy(small), clip)
    row = codes[:, 0].copy()
    row[3] = 7  # any code other than 0
    absent, zero = row.copy(), row.copy()
    absent[3], zero[3] = -1, 0
    with torch.inference_mode():
        full, left_out, with_zero = codec.latent(row), codec.latent(absent), codec.latent(zero)
        centroid = small.quantizer.rvq_rest.output_proj(codebook_layers(small)[3].decode(torch.tensor([[7]])))
        centroid0 = small.quantizer.rvq_rest.output_proj(codebook_layers(small)[3].decode(torch.tensor([[0]])))
    torch.testing.assert_close(full - left_out, centroid, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(with_zero - left_out, centroid0, atol=1e-6, rtol=1e-5)
    assert (with_zero - left_out).abs().max() > 1e-3  # code 0 is a real centroid
    a = _codec_decode(codec, [absent])
    b = _codec_decode(codec, [zero])
    assert np.abs(a - b).max() > 1e-6


def test_no_token_at_all_decodes_the_zero_latent(small):
    codec = MimiCodec(small)
    with torch.inference_mode():
        assert torch.count_nonzero(codec.latent(np.full(8, -1))) == 0
        assert not torch.equal(codec.latent(np.r_[0, np.full(7, -1)]), codec.latent(np.full(8, -1)))


def test_codecs_sharing_one_model_keep_separate_streams(small, clip):
    a, b = MimiCodec(small), MimiCodec(small)
    alone = [a.encode(f)[0] for f in clip]
    a.reset()
    interleaved = []
    for f in clip:
        interleaved.append(a.encode(f)[0])
        b.encode(clip[0])  # another stream on the same weights
    np.testing.assert_array_equal(np.stack(alone), np.stack(interleaved))
    assert not small.is_streaming


def test_codec_rejects_bad_input(small):
    codec = MimiCodec(small)
    with pytest.raises(ValueError, match="1920"):
        codec.encode(np.zeros(1000, np.float32))
    with pytest.raises(ValueError, match="2048"):
        codec.decode(np.full(8, 2048))
    with pytest.raises(ValueError, match="shape"):
        codec.decode(np.zeros(7, np.int64))


@pytest.mark.parametrize("c_in,c_out,k,s,steps,bias", [(1024, 512, 16, 8, 2, True), (64, 32, 8, 4, 5, True),
                                                        (16, 8, 4, 2, 1, False)])
def test_gemm_conv_transpose_equals_torch(c_in, c_out, k, s, steps, bias):
    g = torch.Generator().manual_seed(1)
    conv = torch.nn.ConvTranspose1d(c_in, c_out, k, s, bias=bias)
    x = torch.randn(2, c_in, steps, generator=g)
    with torch.inference_mode():
        want = conv(x)
        assert use_gemm_conv_transpose(conv) == 1 and isinstance(conv, GemmConvTranspose1d)
        got = conv(x)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert set(conv.state_dict()) == ({"weight", "bias"} if bias else {"weight"})


@pytest.mark.slow
def test_full_size_mimi_matches_moshi():
    """The full-size architecture (random weights): all 8 tokens and the semantic token alone."""
    mimi = _mimi(None)
    x = read_audio(SHIPPED_CLIP)
    frames = [x[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] for i in range(20, 24)]
    reference = copy.deepcopy(mimi)
    codes, _ = _moshi_encode(reference, frames)
    codec = MimiCodec(mimi)
    assert np.array_equal(np.stack([codec.encode(f)[0] for f in frames], 1), codes)
    for k in (1, 8):
        rows = [np.where(np.arange(8) < k, codes[:, t], -1) for t in range(codes.shape[1])]
        np.testing.assert_allclose(_codec_decode(codec, rows), _moshi_decode(reference, codes[:k]),
                                   atol=1e-5, rtol=1e-4)


def test_latent_error_is_one_for_frames_left_out_and_zero_for_exact_concealment(small):
    from simlab.train.simulate import latent_error

    codec = MimiCodec(small)
    rng = np.random.default_rng(3)
    tokens = rng.integers(0, small.cardinality, size=(5, 8))
    lost = np.zeros((5, 8), bool)
    lost[1], lost[3, 4:] = True, True  # frame 1 lost whole, frame 3 its last 4 tokens
    left_out = np.where(lost, -1, tokens)
    err, ref = latent_error(codec, tokens, left_out, lost)
    with torch.inference_mode():
        z = [codec.latent(tokens[n]).float() for n in (1, 3)]
        z3_part = codec.latent(left_out[3]).float()
    assert ref == pytest.approx(float((z[0] ** 2).sum() + (z[1] ** 2).sum()), rel=1e-5)
    assert err == pytest.approx(float((z[0] ** 2).sum() + ((z[1] - z3_part) ** 2).sum()), rel=1e-5)
    only_whole = np.zeros_like(lost)
    only_whole[1] = True
    assert np.divide(*latent_error(codec, tokens, np.where(only_whole, -1, tokens), only_whole)) == pytest.approx(1.0)
    assert latent_error(codec, tokens, tokens, lost)[0] == 0.0  # concealed exactly
    wrong = np.where(lost, (tokens + 1) % small.cardinality, tokens)
    assert latent_error(codec, tokens, wrong, lost)[0] > 0.0
