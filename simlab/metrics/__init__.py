"""Speech-quality metrics, offline: ViSQOL, PLCMOS, DNSMOS, log-F0 RMSE, WER, token accuracy.

``compute_metrics`` scores a whole clip, ``window_metrics`` a sliding window over it,
``bench_metrics`` times each metric. See docs/metrics.md. Names are imported on first use, so
that a metric module (imported by the registry) does not pull scipy and the rest in.
"""
from importlib import import_module

# ``align`` is also a submodule's name: bound eagerly so the function, not the module, is found.
from simlab.metrics.align import align, estimate_lag

_WHERE = {"Recognizer": "asr", "register_recognizer": "asr",
          "bench_metrics": "bench", "compute_metrics": "compute", "window_metrics": "compute",
          "metric_names": "registry", "specs": "registry", "token_accuracy": "tokens",
          "word_error_rate": "wer"}

__all__ = sorted([*_WHERE, "align", "estimate_lag"])


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'simlab.metrics' has no attribute {name!r}")
    return getattr(import_module(f"simlab.metrics.{_WHERE[name]}"), name)
