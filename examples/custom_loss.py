"""A loss model of your own, defined, registered and run from one script.

The model: every k-th packet a link carries is erased (the k-th, the 2k-th, ...), nothing else.
It is deterministic, so the loss it produces is known exactly: of N packets, N // k are lost.
Registering it makes ``loss: {model: every_kth, k: 4}`` part of the scenario format in this
process (validation, did-you-mean messages and `simlab.scenario.json_schema()` included).

    python examples/custom_loss.py            # k = 4
    python examples/custom_loss.py --k 10

Nothing is written to disk. See docs/api.md; for a loss model that installs as a package (an
entry point, so that ``simlab run`` and batch workers know it too), see examples/plugin/.
"""
from __future__ import annotations

import argparse
import sys
from typing import Annotated, Literal

import numpy as np

import simlab
from channels.base import LossModel
from simlab.errors import UserError
from simlab.registry import ChannelEntry
from simlab.spec import Strict, at_least

class EveryKth(LossModel):
    """Erases decision number k, 2k, 3k, ... (counting from 1). `LossModel` asks `_fill` for
    decisions in blocks; the count carries over from block to block, so the pattern does not
    depend on the block size. (A model that decides by send time instead, such as a periodic
    fade, subclasses `channels.base.TimedLossModel` and implements ``lost_at(t)``.)"""

    def __init__(self, k: int):
        super().__init__()
        self.k = k
        self._n = 0  # decisions made so far

    def _fill(self, n: int) -> np.ndarray:
        numbers = self._n + 1 + np.arange(n)  # 1-based numbers of the next n packets
        self._n += n
        return numbers % self.k == 0

    @property
    def mean_loss(self) -> float:
        return 1.0 / self.k


class EveryKthSpec(Strict):
    """What a scenario writes: ``loss: {model: every_kth, k: 4}``. `Strict` refuses unknown keys
    and values of the wrong type; ``at_least(1)`` puts the bound in the JSON Schema too."""

    model: Literal["every_kth"]
    k: Annotated[int, at_least(1)] = 10


def build(spec: EveryKthSpec, rng: np.random.Generator, resolve) -> EveryKth:
    """The factory simlab calls for each link (and each schedule phase) that uses the model.
    ``rng``: a generator of its own (unused: the model is deterministic); ``resolve(path)``:
    a scenario path made absolute (unused: it reads no file)."""
    return EveryKth(spec.k)


ENTRY = ChannelEntry("every_kth", EveryKthSpec, build, nominal_loss=lambda spec: 1.0 / spec.k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=4, help="erase every k-th forward packet (default 4)")
    ap.add_argument("--duration", type=float, default=60.0, help="call length in seconds (default 60)")
    args = ap.parse_args()

    simlab.registry.register(ENTRY)  # from here on, scenarios may say `model: every_kth`

    # A scenario as a mapping (a path or a YAML string works the same way): the synthetic system
    # (tokens from the seed, no audio, no models), 160 ms packets, our model on the forward link.
    try:
        sc = simlab.load_scenario({
            "name": "every-kth",
            "seed": 1,
            "duration_s": args.duration,
            "system": {"kind": "synthetic", "quantizers": 8, "redundant": 0},
            "packetization": {"frames_per_packet": 2},
            "network": {
                "headers": "ipv4",
                "forward": {"bandwidth_bps": 64000, "delay_s": 0.02,
                            "loss": {"model": "every_kth", "k": args.k}},
                "reverse": {"delay_s": 0.02},
            },
        })
    except UserError as exc:  # one line naming the key path, e.g. network.forward.loss.k: 0 is not >= 1
        sys.exit(f"error: {exc}")
    res = simlab.run(sc)  # out=None: nothing written, the tables come back in memory

    s = res.summary
    forward = res.packets[res.packets.kind != "feedback"]
    nominal = ENTRY.nominal_loss(sc.network.forward.loss)
    print(f"loss model:      every_kth, k = {args.k}")
    print(f"forward packets: {s['packets_sent']} sent, {s['packets_lost']} lost "
          f"(packets table: {len(forward)} rows, {int(forward.lost.sum())} lost)")
    print(f"nominal loss:    {nominal:.6f}")
    print(f"measured loss:   {s['loss_rate']:.6f}")
    print(f"lost seqs:       {forward.seq[forward.lost == 1].head(5).tolist()} ...")


if __name__ == "__main__":
    main()
