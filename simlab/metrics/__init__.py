"""Speech-quality metrics, offline: ViSQOL, PLCMOS, DNSMOS, log-F0 RMSE, WER, token accuracy.

``compute_metrics`` scores a whole clip, ``window_metrics`` a sliding window over it,
``bench_metrics`` times each metric. See docs/metrics.md.
"""
from simlab.metrics.align import align, estimate_lag
from simlab.metrics.asr import RECOGNIZERS, Recognizer, register_recognizer
from simlab.metrics.bench import bench_metrics
from simlab.metrics.compute import compute_metrics, window_metrics
from simlab.metrics.registry import METRICS, SPECS
from simlab.metrics.tokens import token_accuracy
from simlab.metrics.wer import word_error_rate

__all__ = ["METRICS", "SPECS", "RECOGNIZERS", "Recognizer", "align", "bench_metrics",
           "compute_metrics", "estimate_lag", "register_recognizer", "token_accuracy",
           "window_metrics", "word_error_rate"]
