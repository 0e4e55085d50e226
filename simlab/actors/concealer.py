"""Token concealment at the receiver: fill tokens that were sent but lost.

`LMConcealer` is LargeSC's: Moshi's RQ-Transformer (`moshi.models.lm.LMModel`) run causally,
one step per frame, in Moshi's own input layout (paper eq. 16): step n sees the semantic
token of frame n and the acoustic tokens of frame n−1 (acoustic streams are delayed one
step). The temporal transformer gives the context from everything before step n; the depth
transformer then walks the codebooks in order, keeping each received token and predicting
each missing one from the ones before it (eq. 17). Nothing after step n is ever used.

`RepeatConcealer` and `DropConcealer` are the frame-level baselines of the ablation.
"""
from __future__ import annotations

import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi compiles on first call otherwise (~20 s)

import numpy as np  # noqa: E402
import torch  # noqa: E402

MISSING = -1


class LMConcealer:
    """Causal LM concealment with moshi's `LMModel`, one `step` per frame.

    The audio stream concealed is the LM's first ``dep_q`` audio codebooks (streams 1..dep_q,
    the ones its depth transformer predicts); the text stream and any further streams (the
    user's voice in the full Moshi) are fed as absent (-1), at every step, as in training.

    Several concealers may share one LM: each keeps its own streaming state (KV caches) and
    attaches it only for the duration of a step.

    ``min_confidence``: a missing token whose best prediction has probability below this stays
    missing (the decoder leaves it out, as `DropConcealer` does). 0 (the paper's concealer)
    fills every missing token. Why: a guess the LM itself rates unlikely is almost always
    wrong, and a wrong codebook entry adds noise where leaving it out only loses detail.

    ``greedy``: a missing token is the most likely one; otherwise it is drawn from the LM's
    distribution (temperature 1) with ``generator`` (required then; on the LM's device).

    A step always runs the temporal transformer (the context must move on), but the depth
    transformer only up to the deepest missing token: with nothing missing it does not run,
    and the result is the same. ``record_logits=True`` runs every depth and leaves that step's
    logits in ``last_logits`` [dep_q, card] (float32, CPU): row 0 for frame n's semantic
    token, row k for frame n−1's token k (NaN at step 0, where frame −1 does not exist).
    """

    lookahead_frames = 1

    def __init__(self, lm, device: str | torch.device = "cpu", greedy: bool = True,
                 generator: torch.Generator | None = None, record_logits: bool = False,
                 min_confidence: float = 0.0):
        delays = list(lm.delays)
        dep_q = lm.dep_q
        if dep_q < 2 or delays[0] != 0 or delays[1] != 0 or any(d != 1 for d in delays[2:dep_q + 1]):
            raise ValueError(
                f"LMConcealer: the LM must have Moshi's layout (delays [0, 0, 1, ...] over the text "
                f"and the first dep_q={dep_q} audio streams), got delays {delays}")
        if torch.device(device).type != lm.device.type:
            raise ValueError(f"LMConcealer: device {device!r} but the LM is on {lm.device}")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"LMConcealer: min_confidence={min_confidence!r} outside [0, 1]")
        if not greedy and generator is None:
            raise ValueError("LMConcealer: greedy=False needs a torch.Generator to sample from")
        if lm.training:
            raise ValueError("LMConcealer: the LM is in training mode; call lm.eval() first")
        self.lm = lm
        self.device = lm.device
        self.greedy = greedy
        self.generator = generator
        self.min_confidence = float(min_confidence)
        self.record_logits = record_logits
        self.n_q = dep_q
        self.card = lm.card
        self.last_logits: torch.Tensor | None = None
        self.reset()

    def reset(self) -> None:
        """Start a new stream: empty temporal context, step 0 next."""
        if self.lm.is_streaming:
            raise RuntimeError("LMConcealer: the LM is already streaming elsewhere")
        # Create this concealer's own streaming state (KV caches), then detach it from the LM
        # so that other users of the same LM are not disturbed between steps. moshi's states
        # do nothing on exit, so closing the context keeps them intact.
        unmerged = [n for n, m in self.lm.named_modules() if type(m).__module__.startswith("peft.")]
        if unmerged:
            raise RuntimeError(f"LMConcealer: the LM holds unmerged LoRA layers ({unmerged[0]}, ...); "
                               "merge them first (merge_and_unload, as load_lora does)")
        self._state = streaming_state(self.lm, 1, getattr(self, "_steps", None))
        self._n = 0
        self._semantic_prev: int = MISSING  # x̂_{n-1,0}
        self._acoustic_prev2 = np.full(self.n_q - 1, MISSING, dtype=np.int64)  # x̂_{n-2,1..}
        self.last_logits = None

    def limit_context(self, steps: int) -> None:
        """Size the temporal transformer's KV caches for a stream of ``steps`` steps when that is
        fewer than its context (before the first step; `reset` keeps the size). Why: moshi attends
        over the whole cache, filled or not: a 60 s call (752 steps) paid for 3000. Positions never
        written are masked, so what a step attends to is the same (tested: same tokens)."""
        if self._n:
            raise RuntimeError("LMConcealer.limit_context: the stream has started")
        self._steps = int(steps)
        self._state = streaming_state(self.lm, 1, self._steps)

    def step(self, semantic: int, acoustic_prev: np.ndarray) -> tuple[int, np.ndarray]:
        """LM step n: ``semantic`` = x_{n,0} (-1 if missing), ``acoustic_prev`` = x_{n-1,1..n_q-1}
        (-1 where missing; ignored at step 0, where frame −1 does not exist).

        Returns (x̂_{n,0}, x̂_{n-1,1..}) with every received token unchanged; at step 0 the
        acoustic part is all -1. Frame n−1 is complete after this step.
        """
        sem = int(semantic)
        acoustic = np.asarray(acoustic_prev, dtype=np.int64).reshape(-1)
        if acoustic.shape != (self.n_q - 1,):
            raise ValueError(f"LMConcealer.step: acoustic_prev must hold {self.n_q - 1} tokens, "
                             f"got shape {np.shape(acoustic_prev)}")
        for value in (sem, *acoustic.tolist()):
            if not MISSING <= value < self.card:
                raise ValueError(f"LMConcealer.step: token {value} outside [-1, {self.card - 1}]")
        n = self._n
        given = [sem] + (acoustic.tolist() if n > 0 else [])  # depth order, frame −1 skipped
        # The depth transformer only has to run up to the last missing depth (its state
        # lives within one step); `record_logits` runs it over every depth.
        missing = [k for k, token in enumerate(given) if token == MISSING]
        depth = len(given) if self.record_logits else (missing[-1] + 1 if missing else 0)
        logits_rows = torch.full((self.n_q, self.card), float("nan"))
        out = list(given)
        with torch.no_grad():
            context = self._temporal_context(n)  # always: it carries the context forward
            if depth:
                with self.lm.depformer.streaming(1):
                    prev = MISSING  # the text stream, absent
                    for k in range(depth):
                        logits = self.lm.forward_depformer(k, self._tensor(prev), context)
                        logits_rows[k] = logits[0, 0, 0].float().cpu()
                        if out[k] == MISSING:
                            out[k] = self._predict(logits[0, 0, 0])
                        prev = out[k]
        self.last_logits = logits_rows if self.record_logits else None
        acoustic_out = np.asarray(out[1:], dtype=np.int64) if n > 0 else \
            np.full(self.n_q - 1, MISSING, dtype=np.int64)
        self._semantic_prev, self._acoustic_prev2 = out[0], acoustic_out
        self._n = n + 1
        return out[0], acoustic_out

    def _temporal_context(self, n: int) -> torch.Tensor:
        """Run the temporal transformer on step n−1's tokens (Moshi's initial tokens where a
        stream's delay reaches before the start) and return its output [1, 1, dim]."""
        lm = self.lm
        tokens = torch.full((1, lm.num_codebooks, 1), MISSING, dtype=torch.long, device=self.device)
        for c, delay in enumerate(lm.delays):
            if n <= delay:
                tokens[0, c, 0] = lm.text_initial_token_id if c == 0 else lm.initial_token_id
            elif c == 1:
                tokens[0, c, 0] = self._semantic_prev
            elif 2 <= c <= self.n_q:
                tokens[0, c, 0] = int(self._acoustic_prev2[c - 2])
        return temporal_step(lm, self._state, tokens)

    def _tensor(self, token: int) -> torch.Tensor:
        return torch.tensor([[[token]]], dtype=torch.long, device=self.device)

    def _predict(self, logits: torch.Tensor) -> int:
        """The token for one missing position, or MISSING when the LM's top probability is
        below ``min_confidence``."""
        if self.min_confidence > 0.0 and torch.softmax(logits.float(), dim=-1).max().item() < self.min_confidence:
            return MISSING
        if self.greedy:
            return int(torch.argmax(logits).item())
        probs = torch.softmax(logits.float(), dim=-1).to(self.generator.device)
        return int(torch.multinomial(probs, 1, generator=self.generator).item())


def streaming_state(lm, batch: int, steps: int | None = None) -> dict:
    """A new streaming state (KV caches) of ``lm`` for ``batch`` rows, detached from the LM so that
    other users of the same LM are not disturbed between steps (moshi's states do nothing on exit:
    closing the context keeps them intact). ``steps``: the stream's length; moshi sizes a cache by
    its attention's ``context`` when the state is made, so that is lowered to ``steps`` for that
    moment only (the attention's mask keeps reading the real context afterwards)."""
    lowered = [m for m in lm.transformer.modules()
               if steps is not None and isinstance(getattr(m, "context", None), int) and m.context > steps]
    saved = [m.context for m in lowered]
    try:
        for m in lowered:
            m.context = steps
        with torch.no_grad():
            try:
                stack = lm.streaming(batch)
            except Exception:
                lm._stop_streaming()  # moshi leaves a half-started state behind otherwise
                raise
            state = lm.get_streaming_state()
            stack.close()
    finally:
        for m, c in zip(lowered, saved):
            m.context = c
    return state


def temporal_step(lm, state: dict, tokens: torch.Tensor) -> torch.Tensor:
    """One step of the temporal transformer on ``tokens`` [B, streams, 1] with ``state`` attached to
    ``lm`` for the step only (other users of the LM keep theirs); its output [B, 1, dim]."""
    lm.set_streaming_state(state)
    try:
        context, _ = lm.forward_text(tokens)
    finally:
        lm.set_streaming_state(dict.fromkeys(state))
    return context


class RepeatConcealer:
    """Fills each missing token with the previous frame's (concealed) token at that depth;
    stays missing (-1) while there is no previous frame."""

    lookahead_frames = 0

    def __init__(self, n_q: int = 8):
        self.n_q = n_q
        self.reset()

    def reset(self) -> None:
        self._last = np.full(self.n_q, MISSING, dtype=np.int64)

    def conceal(self, tokens: np.ndarray) -> np.ndarray:
        row = _check_row(tokens, self.n_q)
        out = np.where(row == MISSING, self._last, row)
        self._last = out.copy()
        return out


class DropConcealer:
    """Leaves missing tokens missing: the decoder leaves them out of the codebook sum."""

    lookahead_frames = 0

    def __init__(self, n_q: int = 8):
        self.n_q = n_q

    def reset(self) -> None:
        """Nothing to forget."""

    def conceal(self, tokens: np.ndarray) -> np.ndarray:
        return _check_row(tokens, self.n_q).copy()


def _check_row(tokens: np.ndarray, n_q: int) -> np.ndarray:
    row = np.asarray(tokens)
    if row.shape != (n_q,) or not np.issubdtype(row.dtype, np.integer):
        raise ValueError(f"concealer: tokens must be {n_q} integers, got {row.dtype} {row.shape}")
    if (row < MISSING).any():
        raise ValueError(f"concealer: tokens below -1 in {row.tolist()}")
    return row.astype(np.int64)
