"""What a spec model (the mapping a scenario writes for a system, loss model, link or
estimator) builds on: strict pydantic models and the numeric ranges simlab's own specs use.
A plugin's spec subclasses `Strict` and names itself with a ``Literal`` discriminator field
(``kind`` for systems and estimators, ``model`` for loss and link models)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from simlab.scenario_bounds import (MAX_DELAY_S, MAX_DURATION_S, Delay, Instant, Prob, _ge as at_least,
                                    _gt as above, _in as in_range)


class Strict(BaseModel):
    """Unknown keys refused (with a did-you-mean), no type coercion, immutable, finite numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


__all__ = ["Strict", "Prob", "Delay", "Instant", "in_range", "at_least", "above", "MAX_DELAY_S", "MAX_DURATION_S"]
