"""The macro rules and scripted baselines on hand-made arrays."""
from __future__ import annotations

import math

import numpy as np
import pytest

from environments.macro import baselines as bl
from environments.macro import rules
from environments.macro.actions import Decision, Forecast, decision, forecast


def test_snap_floors_to_the_002_grid_within_0_1():
    assert rules.snap(np.array([0.0, 0.019, 0.02, 0.0599, 0.999, 1.7, -0.3])).tolist() == pytest.approx(
        [0.0, 0.0, 0.02, 0.04, 0.98, 1.0, 0.0])


def test_serve_caps_by_inventory_in_the_given_order():
    demand = np.array([3.0, 5.0, 4.0])
    got = rules.serve(demand, 6.0, np.array([2, 0, 1]))  # household 2 first, then 0, then 1
    assert got.tolist() == [2.0, 0.0, 4.0]
    assert rules.serve(demand, 100.0, np.array([0, 1, 2])).tolist() == demand.tolist()
    assert rules.serve(demand, 0.0, np.array([0, 1, 2])).tolist() == [0.0, 0.0, 0.0]


def test_imbalance_and_adjust():
    assert rules.imbalance(150.0, 100.0) == pytest.approx(50 / 150)
    assert rules.imbalance(50.0, 100.0) == pytest.approx(-0.5)
    assert rules.imbalance(0.0, 0.0) == 0.0
    # excess supply with a full draw: price falls by phi x alpha
    assert rules.adjust(100.0, -0.5, 0.1, 1.0) == pytest.approx(95.0)
    assert rules.adjust(np.array([10.0, 20.0]), 1.0, 0.05, np.array([0.0, 1.0])).tolist() == pytest.approx([10.0, 21.0])


def test_taylor_rule_and_its_floor():
    assert rules.taylor_rate(0.02, 0.04) == pytest.approx(0.03)
    assert rules.taylor_rate(0.06, 0.04) == pytest.approx(0.05)
    assert rules.taylor_rate(-0.10, 0.12) == 0.0  # floored
    assert rules.taylor_rate(math.nan, 0.2) == pytest.approx(0.03)  # no inflation yet: r_n + pi*


def test_annual_change_is_mean_over_mean():
    s = [1.0] * 12 + [1.1] * 12
    assert math.isnan(rules.annual_change(s, 1))
    assert rules.annual_change(s, 2) == pytest.approx(0.1)


def test_ranked_pareto_wages_are_seeded_and_bounded():
    a = rules.ranked_pareto_wages(50, np.random.default_rng(1))
    b = rules.ranked_pareto_wages(50, np.random.default_rng(1))
    assert a.tolist() == b.tolist()
    assert a.min() >= 1.0 and a.max() <= 950.0
    assert not np.all(np.diff(a) >= 0), "shuffled, not in rank order"


def test_composite_rule_matches_econagent_forms():
    # work: (z / (s (1 + r)))^gamma; no savings -> always work
    w = bl.composite_work(np.array([100.0, 100.0, 100.0]), np.array([0.0, 1000.0, 50.0]), 0.0, 0.1)
    assert w.tolist() == pytest.approx([1.0, rules.snap(0.1 ** 0.1), 1.0])
    # consume: (P / resources)^beta
    c = bl.composite_consumption(10.0, np.array([10.0, 10000.0, 0.0]), 0.1)
    assert c.tolist() == pytest.approx([1.0, rules.snap(0.001 ** 0.1), 1.0])


def test_buffer_stock_spends_more_above_target():
    yp = np.array([100.0, 100.0, 100.0])
    share = bl.buffer_stock_consumption(np.array([300.0, 600.0, 50.0]), yp, target_months=2.0, speed=0.5)
    # at target (m = 3 y_p) it spends y_p; above it more; below, less than y_p but never more than m
    assert share[0] == pytest.approx(rules.snap(100 / 300))
    assert share[1] * 600 > 100 and share[2] * 50 <= 50


def test_adaptive_and_anchored_expectations():
    assert bl.adaptive(np.array([0.02]), 0.10, 0.25).tolist() == pytest.approx([0.04])
    assert bl.anchored(0.10, 0.02, 0.5, 3).tolist() == pytest.approx([0.06] * 3)


def test_actions_are_bounded_menus():
    d = decision(0.58, 1.0)
    assert (d.work_pct, d.consume_pct) == (58, 100)
    with pytest.raises(Exception):
        Decision(work_pct=57, consume_pct=10)  # off the 2% grid
    f = forecast(0.55, -0.2)  # clipped to the menus
    assert (f.inflation_pct, f.unemployment_pct) == (30, 0)
    with pytest.raises(Exception):
        Forecast(inflation_pct=31, unemployment_pct=5)
