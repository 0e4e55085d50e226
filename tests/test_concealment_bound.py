"""experiments/concealment_bound.py: the linear latent predictor it measures concealment against."""
import importlib.util

import numpy as np
import pytest

from helpers import ROOT

spec = importlib.util.spec_from_file_location("concealment_bound", ROOT / "experiments" / "concealment_bound.py")
bound = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bound)


def test_predictor_reaches_the_ar1_bound():
    """On z_t = ρ z_{t-1} + e_t (unit-variance stationary) the best linear predictor's NMSE is 1 − ρ²,
    leaving out is 1 and repeating 2(1 − ρ)."""
    rng = np.random.default_rng(0)
    rho, dim = 0.8, 16
    streams = []
    for _ in range(20):
        z = np.zeros((dim, 400))
        z[:, 0] = rng.normal(size=dim)
        for t in range(1, 400):
            z[:, t] = rho * z[:, t - 1] + np.sqrt(1 - rho ** 2) * rng.normal(size=dim)
        streams.append(z)
    w = bound.fit_predictor(streams[4:], order=2)
    x, y = bound.lagged(streams[:4], order=2)
    assert bound.nmse(y, x @ w) == pytest.approx(1 - rho ** 2, abs=0.03)
    assert bound.nmse(y, x[:, :dim]) == pytest.approx(2 * (1 - rho), abs=0.05)
    assert bound.nmse(y, 0 * y) == 1.0


def test_without_speech_it_stops_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr(bound, "speech_available", lambda sub: False)
    assert bound.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("concealment_bound: real speech not found") and "\n" not in err
