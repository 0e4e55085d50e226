"""The one small interface between the simulation and every speech system.

A *system* (synthetic, largesc, opus, aac) turns one source frame into an `Encoded` on the
sending side and one `Window` of receptions back into audio on the receiving side. Its
compute stages (encoder, controller, concealer, decoder) run through a `Timer`, which says
how much simulated time each call takes: measured wall time, or a latency profile.

The simulation knows nothing of what a payload means; a system knows nothing of SimPy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

#: Which term of eq. (22) each stage's time belongs to.
STAGE_COMPONENT = {"encoder": "coder", "decoder": "coder", "controller": "ra", "concealer": "lm"}
STAGES = tuple(STAGE_COMPONENT)


@dataclass(frozen=True)
class BuildContext:
    """What a system's factory gets besides its spec: a generator of its own (spawned from the
    scenario's seed), the torch device its models run on (``cpu`` for systems without torch),
    an integer seed for libraries that take one, and torch's intra-op threads."""

    rng: np.random.Generator
    device: str = "cpu"
    seed: int = 0
    threads: int = 1


@dataclass
class Encoded:
    """One frame as the sender's packetizer sees it.

    A frame is a row of *units*, each lost or kept as a whole: 8 tokens for a token codec,
    one opaque byte string for Opus or AAC. ``copies[i]`` is 0 (not sent), 1 or 2.
    ``side_bits`` is the side information the receiver needs to parse this frame's units
    (for tokens: the mask); it is paid in every packet that carries units of the frame.
    """

    frame: int
    unit_bits: np.ndarray  # int, bits of each unit
    copies: np.ndarray  # int8 in {0, 1, 2}
    side_bits: int
    payload: Any  # opaque to the simulation; handed back to the receiver
    info: dict = field(default_factory=dict)  # extra frames.csv columns (e.g. the mask)


@dataclass
class Received:
    """What reached the receiver in time of one frame: ``arrived[i]`` if any copy of unit i
    arrived before the frame was released. A system must use ``payload`` only where
    ``arrived`` is true (``Received.masked`` does that for integer token rows)."""

    frame: int
    sent: np.ndarray  # bool per unit: at least one copy was sent
    arrived: np.ndarray  # bool per unit
    payload: Any

    def masked(self, missing: int = -1) -> np.ndarray:
        """Integer payload with every unit that did not arrive replaced by ``missing``."""
        return np.where(self.arrived, np.asarray(self.payload), missing)


@dataclass(frozen=True)
class FixedFrame:
    """What an optional ``System.fixed_frame()`` returns: every frame of a system that never
    listens (its ``transmit`` ignores the audio and p-hat, its ``receive`` conceals nothing, has no
    audio and no columns of its own, and each side only `Timer.charge`s its stages). Such calls can
    run on the block engine (`simlab.block_run`)."""

    copies: np.ndarray
    unit_bits: np.ndarray
    side_bits: int
    info: dict
    tx_stages: tuple
    rx_stages: tuple


class Window(Protocol):
    """The receiver's view when frame n is released: frames up to n + lookahead_frames."""

    def get(self, frame: int) -> Received | None:  # None: nothing of that frame is known
        ...


class DictWindow:
    """A `Window` over a dict of frame -> Received: drives a system outside the simulation
    (calibration, tests)."""

    def __init__(self, frames: dict[int, Received] | None = None):
        self.frames = frames if frames is not None else {}

    def get(self, frame: int) -> Received | None:
        return self.frames.get(frame)


@dataclass
class Decoded:
    """One released frame: its audio (None for systems without audio), how many of its
    units the system filled in by concealment, and extra frames.csv columns."""

    audio: np.ndarray | None
    concealed: int = 0
    info: dict = field(default_factory=dict)


class System(Protocol):
    name: str
    sample_rate: int
    frame_samples: int
    lookahead_frames: int  # later frames the receiver waits for before it decodes frame n
    # Optional: False when no unit is ever sent twice (no m = 2), so the receiver need not wait
    # for copies in the next packet (`redundancy: next`); True when absent.
    # sends_second_copies: bool
    stages: tuple[str, ...]
    # Optional: samples the decoded stream lags the input (codec look-ahead); 0 when absent. The
    # simulation adds it to the latency and advances received.wav by it.
    # algorithmic_delay_samples: int
    # Optional: expect_frames(n) is called once before the call starts with its length in frames
    # (LargeSC sizes its LM's KV caches by it).
    # Optional: fixed_frame() -> FixedFrame, for a system whose frames are all the same and never
    # depend on what the receiver reports (synthetic): its calls may run on the block engine.

    def transmit(self, frame: int, audio: np.ndarray | None, p_hat: float, timer: "Timer") -> Encoded:
        ...

    def receive(self, frame: int, window: Window, timer: "Timer") -> Decoded:
        ...

    def describe(self) -> dict:
        ...


class FrameCodec:
    """What the waveform codecs (AAC, Codec2, LC3, FFmpeg's) share: one unit per frame, sent
    once, only an encoder and a decoder stage, no frame of look-ahead at the receiver."""

    stages = ("encoder", "decoder")
    lookahead_frames = 0
    sends_second_copies = False  # one copy of each frame (copies=[1]): no wait for second copies


class Timer:
    """Runs a stage and records the simulated time it takes.

    ``mode='measured'``: the call's wall time (CUDA synchronised when ``cuda`` is true).
    ``mode='profile'``: the stage's per-call latency from ``profile`` (seconds); deterministic,
    and lets a CPU machine simulate a device it does not have. A stage missing from a profile
    is an error; ``profile=None`` means compute takes no simulated time.
    """

    def __init__(self, mode: str = "profile", profile: Mapping[str, float] | None = None,
                 cuda: bool = False, clock: Callable[[], float] | None = None):
        if mode not in ("measured", "profile"):
            raise ValueError(f"timing mode {mode!r} is not 'measured' or 'profile'")
        self.mode = mode
        self.profile = dict(profile) if profile is not None else None
        self.cuda = cuda
        if clock is None:
            import time

            clock = time.perf_counter
        self._clock = clock
        self.durations: dict[str, float] = {}
        self.free_stages: set[str] = set()  # stages some call ran as `free`

    def run(self, stage: str, fn: Callable, *args, free: bool = False, **kwargs):
        """``fn(*args, **kwargs)``, its time recorded under ``stage``. ``free``: this call is
        a trivial stand-in for the stage's model (a drop or repeat concealer, a fixed
        controller): a profile, which times the model, charges it nothing, and `simlab
        calibrate` does not file its measured time under the model's stage."""
        if free:
            self.free_stages.add(stage)
        if self.mode == "measured":
            self._sync()
            t0 = self._clock()
            result = fn(*args, **kwargs)
            self._sync()
            spent = self._clock() - t0
        else:
            result = fn(*args, **kwargs)
            spent = 0.0 if free else self.cost(stage)
        d = self.durations
        d[stage] = d.get(stage, 0.0) + spent
        return result

    def charge(self, stage: str) -> None:
        """Record a stage whose work is too small to run through `run` (nothing to measure): it
        costs its profile time, or nothing when measured."""
        if self.mode == "profile" and self.profile is not None:
            d = self.durations
            d[stage] = d.get(stage, 0.0) + self.cost(stage)

    def cost(self, stage: str) -> float:
        if self.profile is None:
            return 0.0
        try:
            return float(self.profile[stage])
        except KeyError:
            raise KeyError(f"latency profile has no entry for stage {stage!r}") from None

    def take(self) -> dict[str, float]:
        """The durations recorded since the last take, by stage; resets them."""
        out, self.durations = self.durations, {}
        return out

    def _sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
