"""Recipe `train codec`: the small Mimi (moshi's `MimiModel`) trained on real speech.

What it optimises:
- a variance-preserving initialisation of the convolutions (`variance_preserving_init`);
- Mimi's optimiser settings (AdamW, lr 8e-4, betas (0.5, 0.9)) and its quantization rate:
  each example skips quantization with probability ``no_quantization_rate`` (0.5);
- reconstruction that listeners care about: multi-resolution STFT + log-mel L1 + a small
  waveform L1 (`simlab.train.losses`); no adversarial term (not affordable on 2 CPU cores);
- the codebooks by moshi's own training-mode quantizer: k-means initialisation, EMA centroid
  updates, dead-code replacement, plus its commitment penalty on the encoder;
- variable bitrate by quantizer dropout: with probability ``full_rate`` a batch uses all 8
  codebooks, otherwise K drawn uniformly from 1..7, and only the first K are decoded, so any
  first-K prefix decodes (the semantic codebook 0 always included, as at K=1).
Codebook 0 has no semantic teacher here (Mimi distils WavLM into it; no WavLM is available):
it is simply the first codebook of its own split quantizer.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from simlab.models.checkpoint import save_state_dict
from simlab.models.mimi_config import FRAME_SAMPLES, N_Q, SAMPLE_RATE, build_mimi, drop_codebook_cache
from simlab.train import config as cfg
from simlab.train.data import load_corpus, random_crops
from simlab.train.losses import MelLoss, MultiResolutionSTFTLoss
from simlab.train.state import (StepPlan, load_state, lr_schedule, make_optimizer, prepare, save_state,
                                seeded_torch, train_loop)

WEIGHTS_FILE = "mimi.safetensors"


def codec_forward(mimi, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mimi's forward pass (`MimiModel.forward`) decoding only the first ``k`` codebooks.

    ``x`` [B, 1, samples] -> (reconstruction [B, 1, samples], commitment penalty). In
    training mode the quantizer updates its codebooks (EMA) for the codebooks it uses.
    """
    length = x.shape[-1]
    emb = mimi.encoder(x)
    if mimi.encoder_transformer is not None:
        (emb,) = mimi.encoder_transformer(emb)
    emb = mimi._to_framerate(emb)
    zq, penalty = quantize_first_k(mimi.quantizer, emb, k, mimi.frame_rate)
    emb = mimi._to_encoder_framerate(zq)
    if mimi.decoder_transformer is not None:
        (emb,) = mimi.decoder_transformer(emb)
    return mimi.decoder(emb)[..., :length], penalty


def quantize_first_k(quantizer, emb: torch.Tensor, k: int, frame_rate: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`SplitResidualVectorQuantizer.forward` restricted to codebooks 0..k-1 (semantic first),
    with its penalty renormalised by the codebooks used, as moshi does under dropout."""
    n_sem = quantizer.n_q_semantic
    first = quantizer.rvq_first(emb, frame_rate)
    if k <= n_sem:
        return first.x, first.penalty
    rest_q = quantizer.rvq_rest
    full = rest_q.n_q
    rest_q.n_q = k - n_sem
    try:
        rest = rest_q(emb, frame_rate)
    finally:
        rest_q.n_q = full
    penalty = (first.penalty * n_sem + rest.penalty * (k - n_sem)) / k
    return first.x + rest.x, penalty


def variance_preserving_init(mimi, output_gain: float = 0.02) -> None:
    """Re-initialise the convolutions of the SEANet encoder/decoder and the frame-rate
    down/upsampling: normal weights with variance 2 / fan-in (He init; for a transposed
    convolution, fan-in per output sample = in/groups · kernel / stride), zero biases, and the
    decoder's last convolution scaled by ``output_gain`` so the first outputs are speech-sized.

    Why: with torch's default init the small codec attenuates the difference between two
    inputs about 10^4-fold from waveform to waveform, so its output depends on the biases
    only, and training settles on an input-independent average spectrum (observed: the
    latent collapsed and every input decoded to the same noise). Transformers keep moshi's init.
    """
    import torch.nn as nn

    last = None
    for part in (mimi.encoder, mimi.decoder, mimi.downsample, mimi.upsample):
        for sub in part.modules():
            if isinstance(sub, (nn.Conv1d, nn.ConvTranspose1d)):
                fan = sub.in_channels // sub.groups * sub.kernel_size[0]
                if isinstance(sub, nn.ConvTranspose1d):
                    fan = fan / sub.stride[0]
                with torch.no_grad():
                    sub.weight.normal_(0.0, (2.0 / fan) ** 0.5)
                    if sub.bias is not None:
                        sub.bias.zero_()
                if part is mimi.decoder:
                    last = sub
    with torch.no_grad():
        last.weight.mul_(output_gain)


def start_from(mimi, path: str | Path, device: str) -> None:
    """Load earlier weights (e.g. the shipped ``simlab/models/small/mimi.safetensors``) to
    continue training them with a fresh optimizer: codebooks and their EMA statistics
    included, so k-means initialisation is not redone."""
    from simlab.errors import UserError
    from simlab.models.checkpoint import load_state_dict

    state = load_state_dict(Path(path).expanduser(), device)
    try:
        mimi.load_state_dict(state)
    except RuntimeError as exc:
        raise UserError(f"config init={path}: not weights of the small Mimi ({str(exc).splitlines()[0][:160]})") from None
    drop_codebook_cache(mimi)


def _codebooks(mimi) -> list:
    q = mimi.quantizer
    return [layer._codebook for layer in list(q.rvq_first.vq.layers) + list(q.rvq_rest.vq.layers)]


def get_unused_checks(mimi) -> list[int]:
    """moshi's per-codebook countdown to the next dead-code check (plain attributes, not in
    the state dict): saved with a checkpoint so that a resumed run replaces codes when an
    uninterrupted one would."""
    return [int(cb._next_unused_check) for cb in _codebooks(mimi)]


def set_unused_checks(mimi, values: list[int]) -> None:
    for cb, value in zip(_codebooks(mimi), values):
        cb._next_unused_check = int(value)


def check(config: dict) -> None:
    cfg.check_training(config)
    for key, low, high, integer in (("batch", 1, 4096, True),
                                    ("segment_frames", 2, 10**4, True), ("lr", 1e-7, 1.0, False),
                                    ("full_rate", 0.0, 1.0, False),
                                    ("no_quantization_rate", 0.0, 1.0, False), ("max_minutes", 0.01, 10**5, False)):
        cfg.check_range(config, key, low, high, integer)
    betas = config["betas"]
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        from simlab.errors import UserError

        raise UserError(f"config betas={betas!r}: [beta1, beta2], each in [0, 1)")


def train_codec(config: dict, resume: bool = False) -> Path:
    """Run the recipe; returns the path of the trained weights (``<out_dir>/mimi.safetensors``)."""
    check(config)
    device, out_dir, rng = prepare(config)
    corpus = load_corpus(config["data"], config["max_minutes"], np.random.default_rng(config["seed"]))
    samples = config["segment_frames"] * FRAME_SAMPLES
    torch.backends.cudnn.benchmark = device.startswith("cuda")  # fixed crop shapes: autotune once
    with seeded_torch(config["seed"], device):
        from simlab.models.mimi_config import small_mimi_kwargs

        mimi = build_mimi(small_mimi_kwargs(), device)
        if config["variance_preserving_init"]:
            variance_preserving_init(mimi)
        if config["init"]:
            start_from(mimi, config["init"], device)
        mimi.train()
        w = config["loss_weights"]
        stft = MultiResolutionSTFTLoss(config["stft_resolutions"]).to(device)
        mel = MelLoss(SAMPLE_RATE, **config["mel"]).to(device)
        # Mimi's recipe: half the batches skip quantization (per example, moshi's own
        # `no_quantization_rate`), so the encoder learns an informative latent before the
        # codebooks can carry it; without it this small codec collapsed to an input-independent
        # latent and a constant-spectrum output.
        for rvq in (mimi.quantizer.rvq_first, mimi.quantizer.rvq_rest):
            rvq.no_quantization_rate = config["no_quantization_rate"]
        opt = make_optimizer(mimi.parameters(), config["lr"], config["weight_decay"], config["betas"])
        plan = StepPlan.from_config(config)
        start = 0
        if resume:
            start, extra = load_state(out_dir, {"mimi": mimi}, opt, rng, plan)
            drop_codebook_cache(mimi)
            set_unused_checks(mimi, extra["unused_checks"])
        sched = lr_schedule(opt, config["warmup"], plan, start)

        def step(i: int) -> dict[str, float]:
            k = N_Q if rng.random() < config["full_rate"] else int(rng.integers(1, N_Q))
            x = torch.from_numpy(random_crops(corpus, config["batch"], samples, rng)).to(device)
            y, penalty = codec_forward(mimi, x[:, None], k)
            y = y[:, 0]
            l_stft, l_mel = stft(y, x), mel(y, x)
            l_wave = (y - x).abs().mean()
            loss = w["stft"] * l_stft + w["mel"] * l_mel + w["wave"] * l_wave + w["commit"] * penalty
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(mimi.parameters(), config["grad_clip"])
            opt.step()
            sched.step()
            return {"loss": loss.item(), "mel": l_mel.item(), "stft": l_stft.item(), "k": k,
                    "commit": penalty.item()}

        t0 = time.perf_counter()
        train_loop(plan, start, step,
                   lambda s: save_state(out_dir, s, {"mimi": mimi}, opt, rng,
                                        {"unused_checks": get_unused_checks(mimi)}, plan),
                   config["checkpoint_every"], "train codec", out_dir / "log.jsonl")
        mimi.eval()
        for rvq in (mimi.quantizer.rvq_first, mimi.quantizer.rvq_rest):
            rvq.no_quantization_rate = 0.0
        drop_codebook_cache(mimi)
        path = out_dir / WEIGHTS_FILE
        save_state_dict(mimi.state_dict(), path)
        (out_dir / "time.txt").write_text(f"{time.perf_counter() - t0:.1f} s for steps {start}..{plan.steps}\n")
    return path
