"""Macro metrics on tiny hand-made arrays."""
from __future__ import annotations

import math

import numpy as np
import pytest

from environments.macro import metrics as mm


def test_quintiles_and_means_by_quintile():
    w = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0, 10.0])
    q = mm.wealth_quintiles(w)
    assert q.tolist() == [2, 0, 4, 1, 3, 0, 3, 1, 2, 4]
    assert mm.by_quintile(w, q).tolist() == pytest.approx([1.5, 3.5, 5.5, 7.5, 9.5])
    # fewer households than quintiles: empty ones are NaN
    few = mm.by_quintile(np.array([1.0, 2.0]), mm.wealth_quintiles(np.array([1.0, 2.0])))
    assert np.isnan(few).sum() == 3


def test_spending_share_handles_no_cash():
    assert mm.spending_share(np.array([5.0, 0.0]), np.array([10.0, 0.0])).tolist() == [0.5, 0.0]


def test_phillips_and_okun_signs_on_known_series():
    u = [0.05, 0.03, 0.07, 0.02, 0.06]
    assert mm.phillips([0.01, 0.03, -0.01, 0.04, 0.0], u) < -0.9
    y = [100.0 * (1 - x) for x in u]  # output proportional to employment: Okun's identity
    assert mm.okun(u, y) == pytest.approx(-1.0, abs=1e-3)
    assert math.isnan(mm.phillips([0.01, 0.02], [0.05, 0.04]))  # too few years


def test_survey_statistics():
    assert mm.dispersion(np.array([0.01, 0.03])) == pytest.approx(0.01)
    assert mm.mean_abs_error(np.array([0.01, 0.05]), 0.02) == pytest.approx(0.02)
    assert math.isnan(mm.mean_abs_error(np.array([0.01]), math.nan))


def test_correlation_intervals_stay_in_bounds():
    m, lo, hi = mm.corr_mean_interval([0.9, 0.95, 0.99])
    assert -1 < lo < m < hi < 1
    lo, hi = mm.pooled_corr_interval(-0.5, 100)
    assert lo < -0.5 < hi < 0
