import math

import numpy as np
import pytest

from environments.taxation.schedule import TaxSchedule, bracket_tax_vec, flat
from environments.taxation.utility import (
    IsoelasticUtility,
    QuasiLinearUtility,
    best_response_labor,
    best_response_labor_vec,
    bounded_rational_labor,
    isoelastic_utility,
    quasi_linear_labor,
    quasi_linear_utility,
)

QL = QuasiLinearUtility()


def test_isoelastic_values_and_log_limit():
    assert isoelastic_utility(1.0, 0.0) == pytest.approx(0.0)
    assert isoelastic_utility(16.0, 2.0, eta=0.5, labor_cost=0.25) == pytest.approx((4 - 1) / 0.5 - 0.5)
    assert isoelastic_utility(math.e**2, 1.0, eta=1.0, labor_cost=0.3) == pytest.approx(2 - 0.3)
    # continuous through eta = 1
    assert isoelastic_utility(7.0, 0.0, eta=1 - 1e-7) == pytest.approx(math.log(7.0), abs=1e-5)
    assert isoelastic_utility(0.0, 0.0, eta=1.0) == -math.inf
    with pytest.raises(ValueError):
        isoelastic_utility(-1.0, 0.0)


def test_quasi_linear_value():
    assert quasi_linear_utility(100.0, 10.0) == pytest.approx(100 - 0.0005 * 10**3.5)


@pytest.mark.parametrize("skill", [3.0, 40.0, 150.0])
@pytest.mark.parametrize("rate", [0.0, 0.3, 0.75])
def test_best_response_matches_closed_form_under_flat_tax(skill, rate):
    expected = ((1 - rate) * skill / (0.0005 * 3.5)) ** (1 / 2.5)
    assert expected < 100
    assert quasi_linear_labor(skill, rate) == pytest.approx(expected)
    assert best_response_labor(skill, flat(rate), QL) == pytest.approx(expected, rel=1e-12)


def test_high_skill_hits_cap():
    assert best_response_labor(1000.0, flat(0.0), QL, hours_cap=100) == 100.0
    assert quasi_linear_labor(1000.0, 0.0, hours_cap=100) == 100.0


def _brute_force(skill, schedule, params, cap, lump=0.0, n=200_001):
    h = np.linspace(0, cap, n)
    z = skill * h
    post = z - bracket_tax_vec(z, schedule) + lump
    if isinstance(params, QuasiLinearUtility):
        u = quasi_linear_utility(post, h, params.c, params.delta)
    else:
        u = isoelastic_utility(post, h, params.eta, params.labor_cost)
    return h, u


@pytest.mark.parametrize(
    "params, skill, schedule, lump",
    [
        (QL, 60.0, TaxSchedule((0, 2000, 4000), (0.1, 0.6, 0.2)), 0.0),  # non-convex: rate falls
        (QL, 120.0, TaxSchedule((0, 3000), (0.0, 0.9)), 0.0),  # optimum at the kink
        (IsoelasticUtility(), 2.0, TaxSchedule((0, 50, 120), (0.1, 0.5, 0.2)), 5.0),
        (IsoelasticUtility(eta=1.0, labor_cost=0.02), 1.5, TaxSchedule((0, 30, 90), (0.2, 0.4, 0.6)), 3.0),
    ],
)
def test_best_response_beats_fine_grid(params, skill, schedule, lump):
    best = best_response_labor(skill, schedule, params, 100, lump)
    h, u = _brute_force(skill, schedule, params, 100, lump)
    z = skill * best
    u_best = (
        quasi_linear_utility(z - bracket_tax_vec(np.array([z]), schedule)[0] + lump, best)
        if isinstance(params, QuasiLinearUtility)
        else isoelastic_utility(z - bracket_tax_vec(np.array([z]), schedule)[0] + lump, best, params.eta, params.labor_cost)
    )
    assert u_best >= u.max() - 1e-9
    assert best == pytest.approx(h[np.argmax(u)], abs=1e-2)


def test_kink_optimum_exact():
    # Untaxed the worker wants (120/(c d))^0.4 ~ 86 h; at 90% only (12/(c d))^0.4 ~ 34 h. With the
    # kink at 6000/120 = 50 h in between, the best response sits exactly on the kink.
    assert quasi_linear_labor(120.0, 0.0) > 50 > quasi_linear_labor(120.0, 0.9)
    assert best_response_labor(120.0, TaxSchedule((0, 6000), (0.0, 0.9)), QL) == pytest.approx(50.0, abs=1e-12)


def test_menu_and_vector_versions():
    sched = flat(0.2)
    menu = list(range(0, 101, 10))
    h = best_response_labor(50.0, sched, QL, hours_options=menu)
    assert h in menu
    cont = best_response_labor(50.0, sched, QL)
    assert abs(h - cont) <= 10
    skills = np.array([0.0, 5.0, 50.0, 500.0])
    vec = best_response_labor_vec(skills, sched, QL)
    assert vec.tolist() == pytest.approx([best_response_labor(s, sched, QL) for s in skills])
    assert vec[0] == 0.0


def test_bounded_rational_labor():
    sched = flat(0.3)
    skills = np.array([10.0, 80.0, 2000.0])
    best = best_response_labor_vec(skills, sched, QL)
    zero = bounded_rational_labor(skills, sched, QL, 0.0, np.random.default_rng(1))
    assert zero.tolist() == pytest.approx(best.tolist())
    a = bounded_rational_labor(skills, sched, QL, 15.0, np.random.default_rng(7))
    b = bounded_rational_labor(skills, sched, QL, 15.0, np.random.default_rng(7))
    assert a.tolist() == b.tolist() and not np.allclose(a, best)
    assert np.all((a >= 0) & (a <= 100))
    menu = [0, 50, 100]
    m = bounded_rational_labor(skills, sched, QL, 30.0, np.random.default_rng(3), hours_options=menu)
    assert set(m.tolist()) <= {0.0, 50.0, 100.0}
    assert isinstance(bounded_rational_labor(10.0, sched, QL, 1.0, np.random.default_rng(0)), float)
