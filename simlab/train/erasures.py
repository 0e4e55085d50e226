"""Which tokens of a training batch do not arrive: erasures drawn as the channel draws them.

Per example a kind is picked (weights in the config):
- ``token``: every token lost independently with probability p (the paper's training channel);
- ``uniform``: packets lost independently (`channels.uniform.Uniform`), a packet carrying
  ``frames_per_packet`` whole frames;
- ``burst``: packets lost by a simple Gilbert channel of mean burst length ``burst``
  (`channels.gilbert_elliott.GilbertElliott.from_average`).
p is drawn uniformly from [p_min, p_max] per example. All draws come from the recipe's
numpy `Generator`.
"""
from __future__ import annotations

import numpy as np

from channels.gilbert_elliott import GilbertElliott
from channels.uniform import Uniform
from simlab.errors import UserError

KINDS = ("token", "uniform", "burst")


def check_erasure_config(spec: dict) -> None:
    """`UserError` naming the bad key of an ``erasures`` config section."""
    weights = spec.get("kinds", {})
    if not isinstance(weights, dict) or set(weights) - set(KINDS) or not weights or min(weights.values()) < 0 \
            or sum(weights.values()) <= 0:
        raise UserError(f"config erasures.kinds={weights!r}: a mapping of {', '.join(KINDS)} to weights >= 0, "
                        f"some > 0")
    if not 0.0 <= spec["p_min"] <= spec["p_max"] < 1.0:
        raise UserError(f"config erasures.p_min/p_max = {spec['p_min']}/{spec['p_max']}: need 0 <= p_min <= p_max < 1")
    if not spec["burst"] >= 1:
        raise UserError(f"config erasures.burst={spec['burst']!r}: a mean burst length >= 1 packet")
    if not isinstance(spec["frames_per_packet"], int) or spec["frames_per_packet"] < 1:
        raise UserError(f"config erasures.frames_per_packet={spec['frames_per_packet']!r}: an int >= 1")


def draw_lost(spec: dict, batch: int, n_q: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """[batch, n_q, frames] bool: True where a token is lost."""
    kinds = list(spec["kinds"])
    w = np.array([spec["kinds"][k] for k in kinds], dtype=float)
    out = np.zeros((batch, n_q, frames), dtype=bool)
    fpp = spec["frames_per_packet"]
    packets = -(-frames // fpp)
    for b in range(batch):
        kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
        p = float(rng.uniform(spec["p_min"], spec["p_max"]))
        if kind == "token":
            out[b] = rng.random((n_q, frames)) < p
            continue
        if kind == "uniform" or p == 0.0:
            channel = Uniform(p, rng)
        else:
            channel = GilbertElliott.from_average(p, max(spec["burst"], p / (1 - p) + 1e-9), rng)
        lost_packets = channel.draw(packets)
        out[b] = np.repeat(lost_packets, fpp)[:frames][None, :]
    return out
