"""LargeSC as a simulated speech system: Mimi tokens, the adaptive controller's mask (in-band
unequal error protection) and LM concealment of the tokens that were sent but lost.

Sender: Mimi encodes the frame (tokens x_n, latent z_n); the controller maps (z_n, p̂) to a mask
m_n ∈ {0,1,2}^8 (0 not sent, 1 once, 2 twice). Masks are prefix-shaped, so the receiver learns
them from two 4-bit counts (tokens sent, tokens doubled): 8 side bits per frame.

Receiver: tokens that arrived are used as they are. Tokens sent but lost are filled by the
concealer: the LM (Moshi's layout, one step per frame, acoustic tokens one step behind, so the
receiver looks one frame ahead), or repeat / drop for the ablations. Tokens never sent are not
invented: the decoder leaves them out of the codebook sum.

Concealer time, decided honestly: the LM is stepped on *every* frame, lost tokens or not, since
its temporal context must advance; that step occupies the receiver's device and frame n's
acoustic tokens come out of step n+1, so it is timed as "concealer" on every frame (as T_LM =
E[N_received · T_token] in the paper, which counts received tokens too). Repeat and drop cost
nothing worth timing when nothing was lost: they are timed only when something sent was lost.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from simlab.actors.base import Decoded, Encoded, Received, Timer, Window
from simlab.actors.mimi import MimiCodec
from simlab.models.mimi_config import FRAME_SAMPLES, N_Q, SAMPLE_RATE

TOKEN_BITS = 11
SIDE_BITS = 8  # two 4-bit counts: tokens sent, tokens sent twice
MISSING = -1


class LargeSCSystem:
    """The LargeSC system on one set of loaded `Models` (see `simlab.models.profiles`)."""

    name = "largesc"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES
    stages = ("encoder", "controller", "concealer", "decoder")

    def __init__(self, models, quantizers: int = 8, controller: str = "learned", redundant: int = 0,
                 concealer: str = "lm", greedy: bool = True, seed: int = 0, min_confidence: float = 0.0):
        from simlab.actors.concealer import DropConcealer, LMConcealer, RepeatConcealer
        from simlab.actors.controller import ControllerStream, FixedController

        if controller not in ("learned", "fixed"):
            raise ValueError(f"largesc: controller={controller!r} must be 'learned' or 'fixed'")
        if concealer not in ("lm", "repeat", "drop"):
            raise ValueError(f"largesc: concealer={concealer!r} must be 'lm', 'repeat' or 'drop'")
        upper = N_Q if controller == "fixed" else 2 * N_Q
        if not isinstance(quantizers, (int, np.integer)) or not 1 <= quantizers <= upper:
            raise ValueError(f"largesc: quantizers={quantizers!r} must be an int in [1, {upper}] "
                             f"for the {controller} controller")
        if controller == "learned" and redundant:
            raise ValueError("largesc: redundant is set by the learned controller; use controller='fixed'")
        self.models = models
        self.quantizers = int(quantizers)
        self.controller_kind, self.concealer_kind = controller, concealer
        self.redundant, self.greedy, self.seed = int(redundant), bool(greedy), int(seed)
        self.min_confidence = float(min_confidence)
        self.codec = MimiCodec(models.mimi)
        # the learned controller's latent history is this stream's own: flows may share the network
        self.controller = (ControllerStream(models.controller) if controller == "learned"
                           else FixedController(self.quantizers, self.redundant, N_Q))
        if concealer == "lm":
            generator = None if greedy else torch.Generator(device=models.lm.device).manual_seed(seed)
            self.concealer = LMConcealer(models.lm, device=models.lm.device, greedy=greedy, generator=generator,
                                         min_confidence=min_confidence)
        else:
            self.concealer = RepeatConcealer(N_Q) if concealer == "repeat" else DropConcealer(N_Q)
        self.lookahead_frames = self.concealer.lookahead_frames
        # the learned controller may double any token at any time; a fixed one only its first R
        self.sends_second_copies = controller == "learned" or min(self.redundant, self.quantizers) > 0
        self.reset()

    def sibling(self, seed: int) -> "LargeSCSystem | None":
        """Another stream of the same configuration on these loaded models (a further flow of the
        run), seeded with ``seed``; None when the models have parts drawn from the seed (each flow's
        differ then, so it loads its own)."""
        if self.models.random_parts:
            return None
        return LargeSCSystem(self.models, self.quantizers, self.controller_kind, self.redundant,
                             self.concealer_kind, self.greedy, seed, self.min_confidence)

    def expect_frames(self, n_frames: int) -> None:
        """The call lasts ``n_frames`` frames (before it starts): the LM's KV caches need hold no
        more steps than that (+2: the release of the last frame runs one step beyond it)."""
        if self.concealer_kind == "lm":
            self.concealer.limit_context(n_frames + 2)

    def reset(self) -> None:
        """Start a new stream on both sides."""
        self.codec.reset()
        self.controller.reset()
        self.concealer.reset()
        self._steps = LMSteps()

    # -- sender ----------------------------------------------------------------------------
    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: Timer) -> Encoded:
        if audio is None:
            raise ValueError("largesc: transmit needs the frame's audio")
        tokens, z = timer.run("encoder", self.codec.encode, audio)
        mask = np.asarray(timer.run("controller", self.controller.decide, z, p_hat, self.quantizers,
                                    free=self.controller_kind == "fixed"), dtype=np.int8)
        if mask.shape != (N_Q,) or np.any(np.diff(mask) > 0) or mask.min() < 0 or mask.max() > 2:
            # The two 4-bit counts of the side information can only describe prefix masks.
            raise RuntimeError(f"largesc: controller gave mask {mask.tolist()}, not a non-increasing prefix mask")
        return Encoded(frame, unit_bits=np.full(N_Q, TOKEN_BITS), copies=mask, side_bits=SIDE_BITS,
                       payload=tokens, info={"mask": "".join(map(str, mask.tolist())), "quantizers": self.quantizers})

    # -- receiver --------------------------------------------------------------------------
    def receive(self, frame: int, window: Window, timer: Timer) -> Decoded:
        rx = window.get(frame)
        sent, arrived, received = _view(rx)
        lost = sent & ~arrived
        if self.concealer_kind == "lm":
            filled = self._lm_fill(frame, window, timer)
        else:
            row = np.where(arrived, received, MISSING)
            conceal = self.concealer.conceal
            filled = timer.run("concealer", conceal, row, free=True) if lost.any() else conceal(row)
        # Received tokens as they came; lost ones as concealed; never-sent ones left out.
        tokens = np.where(arrived, received, np.where(lost, filled, MISSING)).astype(np.int64)
        concealed = lost & (filled != MISSING)
        truth = np.asarray(rx.payload) if rx is not None else None
        hit = concealed & (tokens == truth) if truth is not None else np.zeros(N_Q, bool)
        audio = timer.run("decoder", self.codec.decode, tokens)
        return Decoded(audio, concealed=int(concealed.sum()),
                       info={"concealed_mask": _bits(concealed), "conceal_hit_mask": _bits(hit)})

    def _lm_fill(self, frame: int, window: Window, timer: Timer) -> np.ndarray:
        """Frame ``frame`` as the LM completes it (`LMSteps`), the steps timed as the concealer."""
        return self._steps.fill(frame, lambda ks: timer.run("concealer", self._lm_steps, window, ks))

    def _lm_steps(self, window: Window, ks: range) -> None:
        """LM steps ``ks``: step k forces what arrived of x_{k,0} and of x_{k-1,1..} (as the window
        shows them now) and predicts the rest."""
        for k in ks:
            semantic = _view(window.get(k))[2][0]
            acoustic_prev = (_view(window.get(k - 1))[2][1:] if k > self._steps.first
                             else np.full(N_Q - 1, MISSING, dtype=np.int64))
            sem, acoustic = self.concealer.step(int(semantic), acoustic_prev)
            self._steps.done(k, np.int64(sem), np.asarray(acoustic, dtype=np.int64))

    def describe(self) -> dict:
        from simlab.actors.controller import parameter_count

        d = self.models.describe()
        d.update({
            "system": self.name, "quantizers": self.quantizers, "controller": self.controller_kind,
            "controller_trained": self.controller_kind == "fixed" or "controller" not in self.models.random_parts,
            "redundant": self.redundant if self.controller_kind == "fixed" else None,
            "concealer": self.concealer_kind, "greedy": self.greedy, "seed": self.seed,
            "min_confidence": self.min_confidence,
            "lookahead_frames": self.lookahead_frames,
            "params_controller": parameter_count(self.models.controller),
        })
        if self.controller_kind == "learned" and "controller" in self.models.random_parts:
            d["warnings"] = d["warnings"] + ["largesc: the learned controller is UNTRAINED (random): "
                                             "its masks are not the paper's"]
        return d


class LMSteps:
    """Which LM steps have run for a stream (one call, or a batch of calls stepped together) and
    what they predicted: frame n is complete once step n (x̂_{n,0}) and step n+1 (x̂_{n,1..}) have run.
    ``first`` is the frame of step 0 (the first frame released)."""

    def __init__(self) -> None:
        self.first: int | None = None
        self._next: int | None = None  # the next step to run (None: no frame released yet)
        self._semantic: dict[int, np.ndarray] = {}  # x̂_{k,0} from step k
        self._acoustic: dict[int, np.ndarray] = {}  # x̂_{k,1..} from step k+1

    def fill(self, frame: int, run: Callable[[range], None]) -> np.ndarray:
        """Frame ``frame``'s tokens [..., n_q] as the LM completes them; ``run(ks)`` runs the steps not
        run yet up to frame + 1 (normally just frame + 1; at the first frame, frame too), calling `done`."""
        if self._next is None:
            self.first = self._next = frame  # the stream starts here
        if frame < self._next and frame not in self._semantic:
            raise ValueError(f"largesc: frame {frame} released out of order (next LM step is for frame "
                             f"{self._next})")
        if self._next <= frame + 1:
            run(range(self._next, frame + 2))
            self._next = frame + 2
        out = np.concatenate([np.asarray(self._semantic[frame])[..., None], self._acoustic[frame]], axis=-1)
        for k in [k for k in self._semantic if k <= frame]:  # frames skipped or released
            self._semantic.pop(k)
            self._acoustic.pop(k, None)
        return out.astype(np.int64)

    def done(self, k: int, semantic: np.ndarray, acoustic_prev: np.ndarray) -> None:
        """Step k's predictions: x̂_{k,0} and (after the first step) x̂_{k-1,1..}."""
        self._semantic[k] = semantic
        if k > self.first:
            self._acoustic[k - 1] = acoustic_prev


def _view(rx: Received | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sent, arrived, tokens) of one frame; with nothing known every token counts as sent and
    lost (the receiver cannot tell what was sent). ``tokens`` is -1 where not arrived."""
    if rx is None:
        return np.ones(N_Q, bool), np.zeros(N_Q, bool), np.full(N_Q, MISSING, dtype=np.int64)
    arrived = np.asarray(rx.arrived, dtype=bool)
    return np.asarray(rx.sent, dtype=bool), arrived, rx.masked(MISSING).astype(np.int64)


def _bits(flags: np.ndarray) -> str:
    return "".join("1" if f else "0" for f in flags)


def bench_actors(frames: int = 20, warmup: int = 3, devices: tuple[str, ...] | None = None,
                 seed: int = 0) -> list[dict]:
    """Wall time per 80 ms frame of each LargeSC actor, one row per (actor, config, device):
    Mimi encode and decode (full-size architecture with random weights, with torch's own
    ConvTranspose1d and with `GemmConvTranspose1d`; and the small one), the controller's
    decision, and one LM concealment step (small LM; medium LM, dim 1024 / 8 layers).
    Frames come from the shipped clip; the median over ``frames`` calls after ``warmup``.
    ``devices``: default CPU, plus CUDA when present."""
    import copy
    import time

    from simlab.actors.concealer import LMConcealer
    from simlab.actors.controller import AdaptiveController
    from simlab.audio import SHIPPED_CLIP, read_audio
    from simlab.models import lm_config
    from simlab.models.mimi_config import build_mimi, randomize_codebooks, small_mimi_kwargs

    if devices is None:
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    clip = read_audio(SHIPPED_CLIP)
    n = frames + warmup
    if len(clip) < n * FRAME_SAMPLES:
        raise ValueError(f"bench_actors: the shipped clip holds fewer than {n} frames")
    audio = [clip[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] for i in range(n)]
    rng = np.random.default_rng(seed)
    rows: list[dict] = []

    def timed(device: str, fn, args_list) -> float:
        times = []
        for i, args in enumerate(args_list):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn(*args)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        return 1000.0 * float(np.median(times))

    def row(actor: str, config: str, device: str, ms: float, params: int) -> None:
        rows.append({"actor": actor, "config": config, "device": device, "threads": torch.get_num_threads(),
                     "ms_per_frame": round(ms, 3), "frames": frames, "params": params})

    for device in devices:
        for config, kwargs in (("full", None), ("small", small_mimi_kwargs())):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                mimi = build_mimi(kwargs, device)
            randomize_codebooks(mimi, torch.Generator().manual_seed(seed))
            params = sum(p.numel() for p in mimi.parameters())
            variants = ((config + ", torch convtr", False), (config, True)) if config == "full" else ((config, True),)
            for label, fast in variants:
                codec = MimiCodec(copy.deepcopy(mimi), fast_cpu=fast)
                encoded = [codec.encode(a) for a in audio]
                codec.reset()
                if fast:  # the encoder has no transposed convolution: one encode row is enough
                    row("mimi.encode", label, device, timed(device, codec.encode, [(a,) for a in audio]), params)
                row("mimi.decode", label, device, timed(device, codec.decode, [(t,) for t, _ in encoded]), params)
            del mimi
        controller = AdaptiveController(seed=seed).to(device).eval()
        latents = rng.normal(0, 0.05, (n, 512)).astype(np.float32)
        row("controller.decide", "paper", device,
            timed(device, controller.decide, [(z, 0.1, 8) for z in latents]),
            sum(p.numel() for p in controller.parameters()))
        medium = dict(lm_config.small_lm_kwargs(), dim=1024, num_layers=8, num_heads=16)
        for config, kwargs in (("small", lm_config.small_lm_kwargs()), ("medium (dim 1024, 8 layers)", medium)):
            lm = lm_config.build_lm(kwargs, device=device, seed=seed)
            concealer = LMConcealer(lm, device=device)
            tokens = rng.integers(0, 2048, (n, N_Q))
            steps = [(int(t[0]), np.where(rng.random(N_Q - 1) < 0.5, t[1:], MISSING)) for t in tokens]
            row("concealer.step", config, device, timed(device, concealer.step, steps),
                sum(p.numel() for p in lm.parameters()))
            del lm, concealer
    return rows
