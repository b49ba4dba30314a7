"""The shared helpers: one rule each."""
import math

import numpy as np
import pytest

from environments.common import ConservationError, finite_or_none, gini, json_safe, per_usd


def test_per_usd_one_empty_rule():
    assert per_usd(10.0, 4.0) == 2.5
    assert per_usd(10.0, 0.0) is None  # nothing spent: undefined, not infinite
    assert per_usd(None, 1.0) is None
    assert per_usd(float("nan"), 1.0) is None
    assert per_usd(10.0, None) is None
    assert per_usd(-3.0, 2.0) == -1.5


def test_finite_or_none():
    assert finite_or_none(None) is None
    assert finite_or_none(float("inf")) is None
    assert finite_or_none(np.float64(2.5)) == 2.5


def test_json_safe_recursive():
    assert json_safe({1: float("nan"), "b": [np.float64(1.5), float("-inf")], "c": (np.int64(3),)}) == \
        {"1": None, "b": [1.5, None], "c": [3]}


def test_gini_known_values_and_vectorised():
    assert gini([0, 0, 0, 1]) == pytest.approx(1.0)
    assert gini([1, 3]) == pytest.approx(0.5)
    assert gini([7]) == 0.0 and gini([0, 0]) == 0.0
    assert gini(np.array([[1, 1], [0, 1]])).tolist() == pytest.approx([0.0, 1.0])
    assert not math.isnan(gini([0.0, 0.0, 0.0]))


def test_conservation_error_is_shared():
    from environments.market import env as market
    from environments.taxation import env as taxation

    assert market.ConservationError is ConservationError is taxation.ConservationError
