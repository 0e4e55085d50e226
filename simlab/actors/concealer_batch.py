"""`LMConcealer.step` for B streams at once: one temporal-transformer call and one depth
walk with batch dimension B (moshi's streaming runs any batch size), each row with its own
KV state, tokens and sampling generator. Used by `simlab.actors.largesc_batch`.

Same arithmetic as `LMConcealer` row by row; only float rounding can differ (a batched GEMM
may sum in another order), which can flip a near-tied argmax now and then.
"""
from __future__ import annotations

import os

os.environ.setdefault("NO_TORCH_COMPILE", "1")  # moshi compiles on first call otherwise (~20 s)

import numpy as np  # noqa: E402
import torch  # noqa: E402

from simlab.actors.concealer import MISSING, LMConcealer, streaming_state, temporal_step  # noqa: E402


class BatchLMConcealer:
    """B causal LM concealers on one LM, stepped together (step n for every row at once).

    ``generators``: None (greedy) or one torch.Generator per row (sampling, temperature 1)."""

    lookahead_frames = 1

    def __init__(self, lm, batch: int, greedy: bool = True, generators: list | None = None,
                 min_confidence: float = 0.0):
        LMConcealer(lm, device=lm.device, greedy=True)  # the same checks on the LM (layout, mode, LoRA)
        if not greedy and (generators is None or len(generators) != batch):
            raise ValueError(f"BatchLMConcealer: sampling needs one generator per row ({batch})")
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"BatchLMConcealer: min_confidence={min_confidence!r} outside [0, 1]")
        self.lm, self.batch, self.device = lm, int(batch), lm.device
        self.greedy, self.generators, self.min_confidence = greedy, generators, float(min_confidence)
        self.n_q, self.card = lm.dep_q, lm.card
        self.reset()

    def reset(self) -> None:
        """A new stream for every row; the state (KV caches) is made at the first step, sized by
        `limit_context` when that came first."""
        self._state = None
        self._steps: int | None = getattr(self, "_steps", None)
        self._n = 0
        self._semantic_prev = np.full(self.batch, MISSING, dtype=np.int64)
        self._acoustic_prev2 = np.full((self.batch, self.n_q - 1), MISSING, dtype=np.int64)

    def limit_context(self, steps: int) -> None:
        """Size the temporal transformer's KV caches for ``steps`` steps when that is fewer than
        its context (before the first step). Why: moshi attends over the whole cache, filled or
        not, and at batch B the empty part of a 3000-step cache costs more than the model
        (memory traffic B x 3000 x dim per layer and step; B x 18 MB of memory); positions never
        written are masked, so what a step attends to is the same."""
        if self._n:
            raise RuntimeError("BatchLMConcealer.limit_context: the stream has started")
        self._steps, self._state = int(steps), None

    def _make_state(self) -> dict:
        return streaming_state(self.lm, self.batch, self._steps)

    def step(self, semantic: np.ndarray, acoustic_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step n of every row: ``semantic`` [B] = x_{n,0}, ``acoustic_prev`` [B, n_q-1] =
        x_{n-1,1..} (-1 where missing). Returns (x̂_{n,0} [B], x̂_{n-1,1..} [B, n_q-1])."""
        sem = np.asarray(semantic, dtype=np.int64).reshape(self.batch)
        acoustic = np.asarray(acoustic_prev, dtype=np.int64).reshape(self.batch, self.n_q - 1)
        n = self._n
        given = np.concatenate([sem[:, None], acoustic], axis=1) if n > 0 else sem[:, None]
        if given.min() < MISSING or given.max() >= self.card:
            raise ValueError(f"BatchLMConcealer.step: a token outside [-1, {self.card - 1}]")
        missing = given == MISSING
        # each row's depth walk would stop after its deepest missing token; the batch walks to the
        # deepest of all (later depths do not change earlier ones: the depth transformer is causal)
        depth = int(np.max(np.where(missing.any(axis=1), given.shape[1] - np.argmax(missing[:, ::-1], axis=1), 0)))
        out = given.copy()
        if self._state is None:
            self._state = self._make_state()
        with torch.no_grad():
            context = self._temporal_context(n)
            if depth:
                with self.lm.depformer.streaming(self.batch):
                    prev = np.full(self.batch, MISSING, dtype=np.int64)  # the text stream, absent
                    for k in range(depth):
                        prev_t = torch.from_numpy(prev).to(self.device).view(self.batch, 1, 1)
                        logits = self.lm.forward_depformer(k, prev_t, context)[:, 0, 0]  # [B, card]
                        rows = np.flatnonzero(missing[:, k])
                        if len(rows):
                            out[rows, k] = self._predict(logits, rows)
                        prev = out[:, k].copy()
        acoustic_out = out[:, 1:].copy() if n > 0 else np.full((self.batch, self.n_q - 1), MISSING, dtype=np.int64)
        self._semantic_prev, self._acoustic_prev2 = out[:, 0].copy(), acoustic_out
        self._n = n + 1
        return out[:, 0].copy(), acoustic_out

    def _temporal_context(self, n: int) -> torch.Tensor:
        lm = self.lm
        tokens = torch.full((self.batch, lm.num_codebooks, 1), MISSING, dtype=torch.long, device=self.device)
        for c, delay in enumerate(lm.delays):
            if n <= delay:
                tokens[:, c, 0] = lm.text_initial_token_id if c == 0 else lm.initial_token_id
            elif c == 1:
                tokens[:, c, 0] = torch.from_numpy(self._semantic_prev)
            elif 2 <= c <= self.n_q:
                tokens[:, c, 0] = torch.from_numpy(self._acoustic_prev2[:, c - 2])
        return temporal_step(lm, self._state, tokens)

    def _predict(self, logits: torch.Tensor, rows: np.ndarray) -> np.ndarray:
        """Tokens for the missing positions of ``rows`` (as `LMConcealer._predict`, row by row)."""
        picked = logits[torch.from_numpy(rows).to(logits.device)]
        out = np.empty(len(rows), dtype=np.int64)
        probs = torch.softmax(picked.float(), dim=-1) if (self.min_confidence > 0 or not self.greedy) else None
        best = torch.argmax(picked, dim=-1).cpu().numpy()
        for i, r in enumerate(rows):
            if self.min_confidence > 0.0 and probs[i].max().item() < self.min_confidence:
                out[i] = MISSING
            elif self.greedy:
                out[i] = best[i]
            else:
                g = self.generators[r]
                out[i] = int(torch.multinomial(probs[i].to(g.device), 1, generator=g).item())
        return out
