"""LargeSC for B calls on one compute device: one loaded set of models, and at each instant
one batched model call per stage (encoder, controller, LM step, decoder) for every call's frame
that is due then, as a serving system batches requests. Each call keeps its own streaming state
(a row of the batched Mimi and LM states), latent history and token history.

The calls run in lockstep (same frame instants on both sides; `simlab.sim.device` checks it), so
row b of each batch is call b. The first call to ask for a stage at an instant runs the batch for
all of them: its own inputs it passes in; the others' come from ``audio_of(b, n)`` and
``window_of(b, n)``, which the simulation wires to each call's source and receiver window
(final by then: every event before the instant has been processed). When a call later asks for
its own result it is checked against what the batch used (the same audio; the same tokens
received), so a result computed from inputs that changed would raise instead of passing.

Time: each frame's stage costs its batch's time (measured wall time of the batched call, or a
latency profile's per-batch entry; see `batch_costs`). The controller's network is split the way
its layers are: the extractor (all the convolutions over latents) runs batched with the
encoder's instant, the p̂-dependent head (a 2 -> 32 -> 2 kernel-1 convolution) runs per call
when that call's p̂ is known, untimed (microseconds).
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from simlab.actors.base import Decoded, Encoded, Timer
from simlab.actors.largesc import MISSING, SIDE_BITS, TOKEN_BITS, LargeSCSystem, LMSteps, _bits, _view
from simlab.actors.mimi import MimiCodec
from simlab.models.mimi_config import FRAME_SAMPLES, N_Q, SAMPLE_RATE


class LargeSCGroup:
    """B LargeSC calls (one `LargeSCMember` each) on one set of `Models`, stepped together.

    ``seeds``: each call's seed (its sampling generator when not greedy, as a call of its own
    would have). ``batch_costs``: seconds a batch of B takes per stage under a latency profile
    (None: the profile's per-frame entries)."""

    def __init__(self, models, seeds: list[int], quantizers: int = 8, controller: str = "learned",
                 redundant: int = 0, concealer: str = "lm", greedy: bool = True, min_confidence: float = 0.0,
                 batch_costs: dict[str, float] | None = None):
        from simlab.actors.concealer import DropConcealer, RepeatConcealer
        from simlab.actors.concealer_batch import BatchLMConcealer
        from simlab.actors.controller import ControllerStream, FixedController

        if len(seeds) < 1:
            raise ValueError("largesc batch: needs at least one call")
        # one call of its own checks every setting as a single call would (its states are dropped at once)
        probe = LargeSCSystem(models, quantizers, controller, redundant, concealer, greedy, seeds[0], min_confidence)
        self.models, self.B = models, len(seeds)
        self.quantizers, self.controller_kind, self.redundant = probe.quantizers, controller, probe.redundant
        self.concealer_kind, self.greedy, self.min_confidence = concealer, greedy, probe.min_confidence
        self.lookahead_frames, self.sends_second_copies = probe.lookahead_frames, probe.sends_second_copies
        del probe
        self.seeds = [int(s) for s in seeds]
        self.batch_costs = dict(batch_costs) if batch_costs else {}
        self.codec = MimiCodec(models.mimi, batch=self.B)
        self.cuda = str(models.lm.device).startswith("cuda")
        if controller == "learned":
            self.streams = [ControllerStream(models.controller) for _ in range(self.B)]
        else:
            self.fixed = FixedController(self.quantizers, self.redundant, N_Q)
        if concealer == "lm":
            gens = None if greedy else [torch.Generator(device=models.lm.device).manual_seed(s) for s in self.seeds]
            self.lm = BatchLMConcealer(models.lm, self.B, greedy, gens, min_confidence)
        else:
            kind = RepeatConcealer if concealer == "repeat" else DropConcealer
            self.row_concealers = [kind(N_Q) for _ in range(self.B)]
        self.audio_of: Callable[[int, int], np.ndarray] | None = None  # wired by simlab.sim.device
        self.window_of: Callable[[int, int], object] | None = None
        self.members = [LargeSCMember(self, b) for b in range(self.B)]
        self._tx_next = self._rx_next = 0
        self._tx: list[dict] = [{} for _ in range(self.B)]
        self._rx: list[dict] = [{} for _ in range(self.B)]
        self._steps = LMSteps()
        self.batches = {"tx": 0, "rx": 0}  # batched calls run (tests, benchmarks)

    def expect_frames(self, n_frames: int) -> None:
        """The calls last ``n_frames`` frames: the LM's KV caches need hold no more steps than that
        (+2: the release of the last frame runs one step beyond it)."""
        if self.concealer_kind == "lm":
            self.lm.limit_context(n_frames + 2)

    # -- sender ----------------------------------------------------------------------------
    def transmit(self, row: int, frame: int, audio, p_hat: float, timer: Timer) -> Encoded:
        if audio is None:
            raise ValueError("largesc: transmit needs the frame's audio")
        if frame not in self._tx[row]:
            self._encode_all(frame, row, np.asarray(audio, dtype=np.float32))
        used, tokens, i_sem, spent = self._tx[row].pop(frame)
        if not np.array_equal(used, np.asarray(audio, dtype=np.float32)):
            raise RuntimeError(f"largesc batch: call {row}'s frame {frame} audio is not what its batch encoded")
        self._charge(timer, "encoder", spent["encoder"])
        if self.controller_kind == "learned":
            mask = self._head(i_sem, float(p_hat))
            self._charge(timer, "controller", spent["controller"])
        else:
            mask = timer.run("controller", self.fixed.decide, None, p_hat, self.quantizers, free=True)
        mask = np.asarray(mask, dtype=np.int8)
        return Encoded(frame, unit_bits=np.full(N_Q, TOKEN_BITS), copies=mask, side_bits=SIDE_BITS,
                       payload=tokens, info={"mask": "".join(map(str, mask.tolist())), "quantizers": self.quantizers})

    def _encode_all(self, frame: int, row: int, audio: np.ndarray) -> None:
        if frame != self._tx_next:
            raise RuntimeError(f"largesc batch: call {row} asks to encode frame {frame}, the batch is at "
                               f"{self._tx_next} (the calls are not in lockstep)")
        frames = np.stack([audio if b == row else np.asarray(self.audio_of(b, frame), dtype=np.float32)
                           for b in range(self.B)])
        t0 = self._now()
        tokens, z = self.codec.encode_batch(frames)
        t1 = self._now()
        i_sem = [None] * self.B
        if self.controller_kind == "learned":
            net = self.models.controller
            param = next(net.parameters())
            with torch.no_grad():
                window = torch.stack([s.push(z[b].reshape(-1, 1).to(param.device, param.dtype))
                                      for b, s in enumerate(self.streams)])  # [B, 512, t]
                i_sem = net.extractor(window)  # [B, 1, t]
        t2 = self._now()
        spent = {"encoder": t1 - t0, "controller": t2 - t1}
        for b in range(self.B):
            self._tx[b][frame] = (frames[b], tokens[b].copy(), i_sem[b:b + 1] if i_sem[0] is not None else None,
                                  spent)
        self._tx_next = frame + 1
        self.batches["tx"] += 1

    def _head(self, i_sem: torch.Tensor, p: float) -> np.ndarray:
        """The controller's p̂-dependent head on one call's I_sem row [1, 1, t]: what
        `AdaptiveController.forward` does after its extractor, then the hard mask."""
        from simlab.actors.controller import _check_quantizers, hard_mask

        if not 0.0 <= p <= 1.0:
            raise ValueError(f"controller: p_hat={p!r} is outside [0, 1]")
        net = self.models.controller
        _check_quantizers(self.quantizers, net.n_q)
        with torch.no_grad():
            p_row = torch.full((1, 1, i_sem.shape[2]), p, dtype=i_sem.dtype, device=i_sem.device)
            out = torch.sigmoid(net.adapter(torch.cat([i_sem, p_row], dim=1)))
            mask = hard_mask(out[0, 0, -1], out[0, 1, -1], self.quantizers, net.n_q)
        return mask.cpu().numpy().astype(np.int8)

    # -- receiver --------------------------------------------------------------------------
    def receive(self, row: int, frame: int, window, timer: Timer) -> Decoded:
        if frame not in self._rx[row]:
            self._receive_all(frame, row, window)
        used, decoded, spent = self._rx[row].pop(frame)
        if not _same(used, _inputs(window, frame)):
            raise RuntimeError(f"largesc batch: call {row}'s frame {frame} window is not what its batch used")
        free = self.concealer_kind != "lm"
        if not free or spent["lost"]:  # as LargeSCSystem: repeat/drop are timed only when something was lost
            self._charge(timer, "concealer", spent["concealer"], free=free)
        self._charge(timer, "decoder", spent["decoder"])
        return decoded

    def _receive_all(self, frame: int, row: int, window) -> None:
        if frame != self._rx_next:
            raise RuntimeError(f"largesc batch: call {row} releases frame {frame}, the batch is at "
                               f"{self._rx_next} (the calls are not in lockstep)")
        windows = [window if b == row else self.window_of(b, frame) for b in range(self.B)]
        views = [_view(w.get(frame)) for w in windows]
        sent = np.stack([v[0] for v in views])
        arrived = np.stack([v[1] for v in views])
        received = np.stack([v[2] for v in views])
        lost = sent & ~arrived
        t0 = self._now()
        if self.concealer_kind == "lm":
            filled = self._lm_fill(frame, windows)
        else:
            filled = np.stack([c.conceal(np.where(arrived[b], received[b], MISSING))
                               for b, c in enumerate(self.row_concealers)])
        t1 = self._now()
        tokens = np.where(arrived, received, np.where(lost, filled, MISSING)).astype(np.int64)
        audio = self.codec.decode_batch(tokens)
        t2 = self._now()
        concealed = lost & (filled != MISSING)
        for b, w in enumerate(windows):
            rx = w.get(frame)
            truth = np.asarray(rx.payload) if rx is not None else None
            hit = concealed[b] & (tokens[b] == truth) if truth is not None else np.zeros(N_Q, bool)
            dec = Decoded(audio[b], concealed=int(concealed[b].sum()),
                          info={"concealed_mask": _bits(concealed[b]), "conceal_hit_mask": _bits(hit)})
            spent = {"concealer": t1 - t0, "decoder": t2 - t1, "lost": bool(lost[b].any())}
            self._rx[b][frame] = (_inputs(w, frame), dec, spent)
        self._rx_next = frame + 1
        self.batches["rx"] += 1

    def _lm_fill(self, frame: int, windows: list) -> np.ndarray:
        """`LargeSCSystem._lm_fill` for every row: frame ``frame`` as the LM completes it [B, n_q]."""
        def run(ks: range) -> None:
            for k in ks:
                semantic = np.array([_view(w.get(k))[2][0] for w in windows])
                acoustic_prev = (np.stack([_view(w.get(k - 1))[2][1:] for w in windows]) if k > self._steps.first
                                 else np.full((self.B, N_Q - 1), MISSING, dtype=np.int64))
                self._steps.done(k, *self.lm.step(semantic, acoustic_prev))

        return self._steps.fill(frame, run)

    # -- time --------------------------------------------------------------------------------
    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def _charge(self, timer: Timer, stage: str, measured_s: float, free: bool = False) -> None:
        """Record a stage's time on the caller's timer: the batch's measured time, or under a
        profile the per-batch entry (else the per-frame entry; a stand-in's is 0)."""
        if free:
            timer.free_stages.add(stage)
        if timer.mode == "measured":
            spent = measured_s
        elif free or timer.profile is None:
            spent = 0.0
        else:
            spent = self.batch_costs[stage] if stage in self.batch_costs else timer.cost(stage)
        timer.durations[stage] = timer.durations.get(stage, 0.0) + spent


class LargeSCMember:
    """One call of a `LargeSCGroup`: the `System` interface a flow's sender and receiver use."""

    name = "largesc"
    sample_rate = SAMPLE_RATE
    frame_samples = FRAME_SAMPLES
    stages = LargeSCSystem.stages

    def __init__(self, group: LargeSCGroup, row: int):
        self.group, self.row = group, row
        self.lookahead_frames = group.lookahead_frames
        self.sends_second_copies = group.sends_second_copies
        # what `LargeSCSystem.describe` reads
        self.models, self.quantizers, self.controller_kind = group.models, group.quantizers, group.controller_kind
        self.redundant, self.concealer_kind, self.greedy = group.redundant, group.concealer_kind, group.greedy
        self.min_confidence, self.seed = group.min_confidence, group.seeds[row]

    def transmit(self, frame: int, audio, p_hat: float, timer: Timer) -> Encoded:
        return self.group.transmit(self.row, frame, audio, p_hat, timer)

    def receive(self, frame: int, window, timer: Timer) -> Decoded:
        return self.group.receive(self.row, frame, window, timer)

    def describe(self) -> dict:
        d = LargeSCSystem.describe(self)  # the same record as a call of its own, plus the batch
        d["batch_calls"] = self.group.B
        return d


def _inputs(window, frame: int) -> tuple:
    """What a call's release of ``frame`` reads of its window: frame n as received (sent,
    arrived, tokens, the payload the hit mask compares with) and the tokens of frame n + 1 (the
    LM step that completes frame n)."""
    rx = window.get(frame)
    sent, arrived, tokens = _view(rx)
    truth = None if rx is None else np.asarray(rx.payload)
    return sent, arrived, tokens, truth, _view(window.get(frame + 1))[2]


def _same(a: tuple, b: tuple) -> bool:
    return all((x is None and y is None) or (x is not None and y is not None and np.array_equal(x, y))
               for x, y in zip(a, b))
