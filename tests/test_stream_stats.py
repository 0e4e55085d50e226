"""StreamStats: quantiles within their relative precision of numpy's, in memory that holds only
the bins used (an idle flow's statistics cost nothing)."""
import math

import numpy as np

from simlab.report.quantiles import StreamStats


def _dense(x, lo=1e-6, rel=1e-3, n_bins=None):
    """The bin counts written out directly, as the statistics define them."""
    step = math.log1p(rel)
    idx = np.where(x <= lo, 0, np.floor(np.log(np.maximum(x, lo) / lo) / step) + 1).astype(int)
    return np.bincount(np.minimum(idx, n_bins - 1), minlength=n_bins)


def test_quantiles_within_precision_and_bins_match_the_definition():
    rng = np.random.default_rng(3)
    x = rng.lognormal(np.log(0.2), 0.5, 20_000)
    s = StreamStats()
    for block in np.array_split(x, 7):  # blocks that widen the stored range both ways
        s.add_many(block)
    assert np.array_equal(s.bins, _dense(x, n_bins=s.n_bins))
    for q in (0.01, 0.5, 0.95, 0.99):
        exact = np.quantile(x, q, method="inverted_cdf")
        assert exact <= s.quantile(q) <= exact * (1 + 1e-3) * (1 + 1e-9)
    assert s.quantile(1.0) == x.max()
    assert math.isclose(s.mean, x.mean(), rel_tol=1e-12)
    assert len(s._bins) < s.n_bins / 4  # only the range used is stored


def test_merge_equals_one_stream_and_idle_stats_hold_no_bins():
    rng = np.random.default_rng(4)
    a, b = rng.uniform(0.01, 0.05, 500), rng.uniform(1.0, 3.0, 500)  # disjoint ranges, a gap between
    one, left, right, idle = StreamStats(), StreamStats(), StreamStats(), StreamStats()
    one.add_many(np.concatenate([a, b]))
    left.add_many(a)
    right.add_many(b)
    left.merge(right)
    left.merge(idle)
    assert np.array_equal(left.bins, one.bins) and left.n == one.n == 1000
    assert all(left.quantile(q) == one.quantile(q) for q in (0.1, 0.5, 0.9))
    assert idle._bins.nbytes == 0 and math.isnan(idle.quantile(0.5))
    idle.add_many(np.array([np.nan, 1e-9, 1e9]))  # NaN skipped, the ends clamped into the end bins
    assert idle.n == 2 and idle.bins[0] == 1 and idle.bins[-1] == 1
