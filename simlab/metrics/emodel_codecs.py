"""Codecs' E-model factors: the equipment impairment factor Ie and the packet-loss robustness
factor Bpl (ITU-T G.113 (11/2007) Appendix I, provisional planning values for narrowband codecs).

A system entry names its codec's factors with the ``emodel`` trait (`simlab.registry.SystemEntry`),
e.g. ``emodel=lambda spec: G113["G.711 PLC"]``. Table I.1 gives Ie alone; Table I.3 gives Ie and
Bpl for random packet loss with the codec's packet size and loss concealment: where G.113 gives no
Bpl, R is known only without loss. Nothing is published for Opus, AAC, LargeSC or the synthetic
system (nor is simlab's E-model the wideband one of G.107.1): they have no trait, and the
``emodel`` metric says so in ``emodel_status`` instead of making numbers up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Impairment:
    """Ie and Bpl (NaN: not published) of a codec setting, and where they come from."""

    ie: float
    bpl: float = math.nan
    source: str = ""


def _t13(ie: float, bpl: float, what: str) -> Impairment:
    return Impairment(ie, bpl, f"G.113 Table I.3: {what}")


def _t11(ie: float, what: str) -> Impairment:
    return Impairment(ie, math.nan, f"G.113 Table I.1: {what} (no Bpl published)")


G113: dict[str, Impairment] = {
    # Table I.3: Ie and Bpl under random packet loss.
    "G.711": _t13(0, 4.3, "G.711, 10 ms packets, no PLC"),
    "G.711 PLC": _t13(0, 25.1, "G.711, 10 ms packets, PLC of G.711 Appendix I"),
    "G.729A+VAD": _t13(11, 19.0, "G.729A + VAD, 20 ms packets (2 frames)"),
    "G.723.1+VAD 6.3": _t13(15, 16.1, "G.723.1 + VAD at 6.3 kbit/s, 30 ms packets"),
    "GSM-EFR": _t13(5, 10.0, "GSM-EFR 12.2 kbit/s, 20 ms packets"),
    # Table I.1: Ie alone.
    "G.726 40": _t11(2, "G.726 ADPCM 40 kbit/s"),
    "G.726 32": _t11(7, "G.726 ADPCM 32 kbit/s"),
    "G.726 24": _t11(25, "G.726 ADPCM 24 kbit/s"),
    "G.726 16": _t11(50, "G.726 ADPCM 16 kbit/s"),
    "G.728 16": _t11(7, "G.728 LD-CELP 16 kbit/s"),
    "G.729": _t11(10, "G.729 CS-ACELP 8 kbit/s"),
    "G.723.1 6.3": _t11(15, "G.723.1 MP-MLQ 6.3 kbit/s"),
    "G.723.1 5.3": _t11(19, "G.723.1 ACELP 5.3 kbit/s"),
    "GSM-FR": _t11(20, "GSM 06.10 full rate"),
    "GSM-HR": _t11(23, "GSM 06.20 half rate"),
}
