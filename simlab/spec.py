"""What a spec model (the mapping a scenario writes for a system, loss model, link or
estimator) builds on: strict pydantic models and the numeric ranges simlab's own specs use.
A plugin's spec subclasses `Strict` and names itself with a ``Literal`` discriminator field
(``kind`` for systems and estimators, ``model`` for loss and link models)."""
from __future__ import annotations

import typing

from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

from simlab.scenario_bounds import (MAX_DELAY_S, MAX_DURATION_S, Delay, Instant, Prob, _ge as at_least,
                                    _gt as above, _in as in_range)


class Strict(BaseModel):
    """Unknown keys refused (with a did-you-mean), no type coercion, immutable, finite numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class Replayed(Strict):
    """A record replayed in order (a loss trace, a fate trace): ``loop: true`` starts over at its
    end; ``loop: false`` plays it once and needs ``after_end``, which a subclass declares as
    ``Optional[Literal[...]] = None`` with the choices of what the packets after the end meet. A
    record shorter than the run never leaves the rest of it unsaid."""

    loop: bool = True

    @model_validator(mode="after")
    def _end_said(self):
        end = getattr(self, "after_end", None)
        if not self.loop and end is None:
            ann = type(self).model_fields["after_end"].annotation
            choices = [c for a in typing.get_args(ann) for c in typing.get_args(a)]
            raise ValueError(f"loop: false needs after_end: {' or '.join(choices)} (what the packets after "
                             f"its end meet)")
        if self.loop and end is not None:
            raise ValueError("after_end: only with loop: false (a looped record has no end)")
        return self

    @model_serializer(mode="wrap")
    def _without_unset_end(self, handler):
        # after_end exists only with loop: false; leaving it out otherwise keeps the resolved
        # scenario (and so batch run keys) of a looped record as they were before the key existed.
        data = handler(self)
        if getattr(self, "after_end", None) is None:
            data.pop("after_end", None)
        return data


__all__ = ["Strict", "Replayed", "Prob", "Delay", "Instant", "in_range", "at_least", "above", "MAX_DELAY_S", "MAX_DURATION_S"]
