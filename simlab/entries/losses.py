"""simlab's loss models (implemented in `channels/`): uniform, Gilbert-Elliott and trace."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import model_serializer, model_validator

from simlab.registry import ChannelEntry
from simlab.spec import Replayed, Instant, Prob, Strict, at_least, in_range


class UniformLoss(Strict):
    model: Literal["uniform"]
    p: Prob = 0.0


class GilbertElliottLoss(Strict):
    """Either the chain (p, r, loss_good, loss_bad) or an average loss and a mean burst length:
    ``burst`` in packets (a chain that steps per packet) or ``burst_s`` in seconds (a chain in
    continuous time: a packet sent while it is Bad is lost, so every packet rate meets the same
    channel; channels.gilbert_elliott_time)."""

    model: Literal["gilbert_elliott"]
    p: Optional[Prob] = None
    r: Optional[Prob] = None
    loss_good: Prob = 0.0
    loss_bad: Prob = 1.0
    loss: Optional[Annotated[float, in_range(0, 0.999)]] = None
    burst: Optional[Annotated[float, at_least(1)]] = None
    burst_s: Optional[Instant] = None

    @model_validator(mode="after")
    def _one_form(self):
        if self.burst_s is not None:
            if self.loss is None:
                raise ValueError("burst_s needs loss (the average loss)")
            if self.burst is not None:
                raise ValueError("give burst (packets) or burst_s (seconds), not both")
            if self.p is not None or self.r is not None:
                raise ValueError("give loss and burst_s, or p and r, not both")
            if self.loss_good != 0 or self.loss_bad != 1:  # (the defaults: a resolved scenario writes them)
                raise ValueError("loss_good and loss_bad go with p and r: with burst_s a packet is lost iff the "
                                 "chain is Bad when it is sent")
        elif self.loss is not None or self.burst is not None:
            if self.loss is None or self.burst is None:
                raise ValueError("give both loss and burst (or burst_s), or p and r")
            if self.p is not None or self.r is not None:
                raise ValueError("give loss and burst, or p and r, not both")
        elif self.p is None or self.r is None:
            raise ValueError("give p and r (transition probabilities), or loss and burst")
        elif self.p + self.r == 0:
            raise ValueError("p and r are both 0: the chain never moves")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_burst_s(self, handler):
        # burst_s only where given: the resolved scenario (and so batch run keys) of the per-packet
        # forms stay as they were before the key existed.
        data = handler(self)
        if self.burst_s is None:
            data.pop("burst_s", None)
        return data


class TraceLoss(Replayed):
    """A recorded 0/1 per packet (1 = lost), replayed in order. ``loop: true`` (the default) starts
    over at its end. ``loop: false`` plays it once and needs ``after_end``, what the packets after
    its end meet: ``lossless`` (none lost) or ``lossy`` (all lost, a link that went down). A trace
    shorter than the run never leaves the rest of it lossless without the scenario saying so."""

    model: Literal["trace"]
    file: str
    after_end: Optional[Literal["lossless", "lossy"]] = None


def _uniform(spec: UniformLoss, rng, resolve):
    from channels.uniform import Uniform

    return Uniform(spec.p, rng)


def _gilbert_elliott(spec: GilbertElliottLoss, rng, resolve):
    from channels.gilbert_elliott import GilbertElliott

    if spec.burst_s is not None:
        from channels.gilbert_elliott_time import TimedGilbertElliott

        return TimedGilbertElliott(spec.loss, spec.burst_s, rng)
    if spec.loss is not None:
        return GilbertElliott.from_average(spec.loss, spec.burst, rng)
    return GilbertElliott(spec.p, spec.r, rng, spec.loss_good, spec.loss_bad)


def _ge_nominal(spec: GilbertElliottLoss) -> float:
    if spec.loss is not None:
        return float(spec.loss)
    bad = spec.p / (spec.p + spec.r)
    return spec.loss_good * (1 - bad) + spec.loss_bad * bad


def _trace(spec: TraceLoss, rng, resolve):
    from channels.trace import Trace

    return Trace.from_file(resolve(spec.file), spec.loop, spec.after_end == "lossy")


UNIFORM = ChannelEntry("uniform", UniformLoss, _uniform, nominal_loss=lambda spec: float(spec.p))
GILBERT_ELLIOTT = ChannelEntry("gilbert_elliott", GilbertElliottLoss, _gilbert_elliott, nominal_loss=_ge_nominal,
                               carries_state=True)
TRACE = ChannelEntry("trace", TraceLoss, _trace, files=lambda spec: [spec.file])
