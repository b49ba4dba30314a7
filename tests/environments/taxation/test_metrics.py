import math

import numpy as np
import pytest

from environments.taxation.metrics import (
    effective_tax_rate_by_decile,
    equality,
    equality_times_productivity,
    gini,
    inverse_income_welfare,
    labor_distribution,
    llm_economist_swf,
    period_metrics,
    productivity,
    resolve_swf,
    revenue,
    share_at_cap,
    utilitarian_welfare,
)


def pairwise_gini(x):
    x = np.asarray(x, dtype=float)
    n = len(x)
    return np.abs(x[:, None] - x[None, :]).sum() / (2 * n * x.sum()) / ((n - 1) / n)


def test_gini_known_vectors():
    assert gini([1, 1, 1, 1]) == 0.0
    assert gini([0, 0, 0, 1]) == pytest.approx(1.0)
    assert gini([0, 0, 0, 0]) == 0.0
    assert gini([1, 3]) == pytest.approx(pairwise_gini([1, 3]))  # = 0.5
    assert gini([1, 3]) == pytest.approx(0.5)
    x = np.array([3.0, 0.5, 7.0, 2.0, 2.0, 11.0])
    assert gini(x) == pytest.approx(pairwise_gini(x))
    assert equality(x) == pytest.approx(1 - pairwise_gini(x))


def test_gini_ai_economist_switch_at_30():
    small = np.arange(1.0, 11.0)
    assert gini(small, "ai_economist") == pytest.approx(gini(small))  # n < 30: same formula
    one_holder = np.zeros(30)
    one_holder[0] = 5.0
    assert gini(one_holder) == pytest.approx(1.0)
    assert gini(one_holder, "ai_economist") == pytest.approx(1 - 2 / 31)  # their fast formula
    x = np.random.default_rng(0).exponential(size=50)
    assert gini(x, "ai_economist") == pytest.approx(gini(x) * 49 / 51)


def test_gini_along_last_axis():
    stack = np.array([[1, 1, 1, 1], [0, 0, 0, 1]], dtype=float)
    assert gini(stack).tolist() == pytest.approx([0.0, 1.0])


def test_welfare_functions_by_hand():
    u = np.array([2.0, 4.0, 6.0])
    z = np.array([0.5, 2.0, 4.0])  # first income floors at 1
    assert utilitarian_welfare(u) == pytest.approx(4.0)
    w = np.array([1.0, 0.5, 0.25]) / 1.75
    assert inverse_income_welfare(u, z) == pytest.approx(float(w @ u))
    assert llm_economist_swf(u, z) == pytest.approx(2 / 1 + 4 / 2 + 6 / 4)
    assert productivity(z) == pytest.approx(6.5 / 3)
    assert revenue(np.array([1.0, 2.5])) == 3.5
    coin = np.array([0.0, 0.0, 0.0, 4.0])
    assert equality_times_productivity(coin) == pytest.approx(0.0)
    assert equality_times_productivity(coin, gini_weight=0.0) == pytest.approx(1.0)
    assert equality_times_productivity(np.full(4, 3.0)) == pytest.approx(3.0)
    assert resolve_swf("llm_economist")(u, z, z) == pytest.approx(5.5)
    with pytest.raises(ValueError):
        resolve_swf("nope")


def test_effective_tax_rate_by_decile():
    z = np.arange(1.0, 21.0)  # 20 workers: two per decile
    t = 0.1 * z
    t[-2:] = 0.5 * z[-2:]
    etr = effective_tax_rate_by_decile(z, t)
    assert etr[:9] == pytest.approx([0.1] * 9)
    assert etr[9] == pytest.approx(0.5)
    few = effective_tax_rate_by_decile(np.array([10.0, 20.0]), np.array([1.0, 5.0]))
    assert few[0] == pytest.approx(0.1) and few[5] == pytest.approx(0.25)
    assert np.isnan(few[1])


def test_labor_and_cap_and_cost():
    h = np.array([0.0, 50.0, 100.0, 100.0])
    d = labor_distribution(h)
    assert d["hours_mean"] == 62.5 and d["hours_q50"] == 75.0
    assert d["hours_sd"] == pytest.approx(np.std(h))
    assert share_at_cap(h, 100.0) == 0.5


def test_period_metrics_bundle():
    z = np.array([10.0, 30.0])
    tax = np.array([1.0, 9.0])
    h = np.array([10.0, 100.0])
    u = np.array([5.0, 7.0])
    m = period_metrics(z, h, u, tax, compute_cost_usd=2.0)
    assert m["productivity"] == 20.0
    assert m["revenue"] == 10.0 and m["lump_sum"] == 5.0
    # post-tax incomes 14 and 26
    assert m["gini"] == pytest.approx(gini([14.0, 26.0]))
    assert m["gini_pre_tax"] == pytest.approx(0.5)
    assert m["eq_times_prod"] == pytest.approx((1 - gini([14.0, 26.0])) * 20.0)
    assert m["share_at_cap"] == 0.5
    assert m["welfare_per_dollar"] == pytest.approx(3.0)
    assert m["etr_decile_01"] == pytest.approx(0.1) and m["etr_decile_06"] == pytest.approx(0.3)
    assert all(isinstance(v, float) for v in m.values())
