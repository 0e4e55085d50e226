"""DNSMOS P.835 (Microsoft, PyPI ``speechmos``): non-intrusive MOS of speech signal (sig),
background (bak), overall (ovrl), plus the P.808 overall model (p808). Scale 1-5.

DNSMOS scores 9 s segments; a shorter signal is repeated up to 9 s by the library.
"""
from __future__ import annotations

import numpy as np

from simlab.metrics.base import METRIC_RATE, MetricInput, need

COLUMNS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")


def dnsmos(inp: MetricInput) -> dict[str, float]:
    """The four DNSMOS columns of the received signal (the reference is not used)."""
    need("onnxruntime", "onnxruntime")
    need("librosa", "librosa")
    run = need("speechmos.dnsmos", "speechmos").run
    r = run(inp.received.astype(np.float32), METRIC_RATE)
    return {"dnsmos_ovrl": float(r["ovrl_mos"]), "dnsmos_sig": float(r["sig_mos"]),
            "dnsmos_bak": float(r["bak_mos"]), "dnsmos_p808": float(r["p808_mos"])}
