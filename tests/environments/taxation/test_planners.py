import itertools
import time

import numpy as np
import pytest

from environments.taxation.planners import (
    equilibrium_outcomes,
    fixed_planner,
    grid_search,
    saez_planner_step,
)
from environments.taxation.saez import saez_bracket_schedule
from environments.taxation.schedule import flat, marginal_rate_vec, us_federal_2018
from environments.taxation.utility import IsoelasticUtility, QuasiLinearUtility, best_response_labor_vec

C, DELTA = 0.0005, 3.5


def naive_tax(z, cutoffs, rates):
    total = 0.0
    for b, rate in enumerate(rates):
        top = cutoffs[b + 1] if b + 1 < len(cutoffs) else float("inf")
        total += rate * min(top - cutoffs[b], max(0.0, z - cutoffs[b]))
    return total


def naive_welfare(skills, cutoffs, rates, menu, swf):
    hours, incomes, taxes = [], [], []
    for s in skills:
        best_u, best_h = None, None
        for h in menu:  # quasi-linear: the lump sum does not change the choice
            u = s * h - naive_tax(s * h, cutoffs, rates) - C * h**DELTA
            if best_u is None or u > best_u:
                best_u, best_h = u, h
        hours.append(best_h)
        incomes.append(s * best_h)
        taxes.append(naive_tax(s * best_h, cutoffs, rates))
    lump = sum(taxes) / len(skills)
    utils = [z - t + lump - C * h**DELTA for z, t, h in zip(incomes, taxes, hours)]
    if swf == "utilitarian":
        return sum(utils) / len(utils)
    if swf == "llm_economist":
        return sum(u / max(z, 1.0) for u, z in zip(utils, incomes))
    weights = [1 / max(z, 1.0) for z in incomes]
    return sum(w * u for w, u in zip(weights, utils)) / sum(weights)


@pytest.mark.parametrize("swf", ["utilitarian", "llm_economist", "inverse_income"])
def test_grid_search_matches_naive_loop(swf):
    skills = np.array([2.0, 9.0, 25.0, 60.0, 140.0, 400.0])
    cutoffs = (0.0, 500.0, 3000.0)
    grid = [0.0, 0.3, 0.6, 1.0]
    menu = list(range(0, 101, 10))
    result = grid_search(skills, cutoffs, grid, swf, QuasiLinearUtility(C, DELTA), hours_options=menu)
    naive = {r: naive_welfare(skills, cutoffs, r, menu, swf) for r in itertools.product(grid, repeat=3)}
    assert result.welfare_all.tolist() == pytest.approx([naive[tuple(r)] for r in result.rates.tolist()], rel=1e-9)
    best = max(naive, key=naive.get)
    assert result.schedule.rates == best
    assert result.welfare == pytest.approx(naive[best], rel=1e-12)
    if swf == "utilitarian":  # no income effects: any tax only destroys surplus
        assert result.schedule.rates == (0.0, 0.0, 0.0)


def test_continuous_best_response_beats_any_menu_and_welfare_is_close():
    skills = np.array([3.0, 30.0, 90.0, 200.0])
    cutoffs = (0.0, 1000.0, 5000.0)
    grid = [0.0, 0.5, 1.0]
    params = QuasiLinearUtility(C, DELTA)
    rates = np.array(list(itertools.product(grid, repeat=3)))
    cont = equilibrium_outcomes(skills, cutoffs, rates, params)
    fine = equilibrium_outcomes(skills, cutoffs, rates, params, hours_options=np.linspace(0, 100, 20001))
    private = lambda o: o.pre_tax_income - o.tax_paid - C * o.hours**DELTA  # noqa: E731
    # each worker's own payoff (the lump sum is not theirs to choose) is at least the menu's
    assert np.all(private(cont) >= private(fine) - 1e-9)
    assert cont.hours == pytest.approx(fine.hours, abs=5e-3)
    a = grid_search(skills, cutoffs, grid, "llm_economist", params)
    b = grid_search(skills, cutoffs, grid, "llm_economist", params, hours_options=np.linspace(0, 100, 20001))
    assert a.welfare_all == pytest.approx(b.welfare_all, rel=2e-3)  # SWF is first-order in hours


def test_grid_search_speed_three_brackets_eleven_levels_hundred_workers():
    skills = np.random.default_rng(0).uniform(1.24, 159.1, 100)
    t0 = time.perf_counter()
    result = grid_search(skills, (0.0, 90.0, 159.1), np.linspace(0, 1, 11), "llm_economist", QuasiLinearUtility())
    assert time.perf_counter() - t0 < 5.0
    assert result.rates.shape == (1331, 3)
    assert result.welfare == pytest.approx(result.welfare_all.max())


def test_isoelastic_equilibrium_is_budget_balanced_fixed_point():
    skills = np.array([1.0, 1.5, 2.2, 3.0, 6.0])
    cutoffs = (0.0, 40.0, 120.0)
    params = IsoelasticUtility(eta=0.5, labor_cost=0.1)
    rates = np.array([[0.1, 0.3, 0.6], [0.0, 0.0, 0.0], [0.7, 0.7, 0.7]])  # convex schedules
    out = equilibrium_outcomes(skills, cutoffs, rates, params)
    assert out.lump_sum == pytest.approx(out.tax_paid.mean(axis=1))
    assert out.post_tax_income.sum(axis=1) == pytest.approx(out.pre_tax_income.sum(axis=1))
    assert out.lump_sum[1] == 0.0
    for k, r in enumerate(rates):
        again = best_response_labor_vec(skills, flat(0.0, cutoffs).with_rates(r), params, 100, out.lump_sum[k])
        assert again == pytest.approx(out.hours[k], abs=1e-6)
    # income effect: with a 70% flat tax the rebate makes people work less than at zero rebate
    no_rebate = best_response_labor_vec(skills, flat(0.7, cutoffs), params, 100, 0.0)
    assert np.all(out.hours[2] <= no_rebate + 1e-9) and np.any(out.hours[2] < no_rebate - 1e-3)


def test_fixed_planner_ignores_history():
    s = us_federal_2018()
    plan = fixed_planner(s)
    assert plan([]) is s and plan([(np.ones(3), np.zeros(3))]) is s


def test_saez_planner_warmup_then_estimate():
    cutoffs = (0.0, 2000.0, 5000.0)
    rng = np.random.default_rng(5)
    warm = saez_planner_step([], cutoffs, 0.5, rng=rng, rate_max=0.8)
    assert warm.warming_up and warm.elasticity == 0.5
    assert all(0.0 <= r <= 0.8 for r in warm.schedule.rates)
    with pytest.raises(ValueError, match="rng"):
        saez_planner_step([], cutoffs)

    # rational quasi-linear workers facing several flat rates: estimated elasticity is 0.4
    skills = np.linspace(5, 150, 50)
    history = []
    for rate in [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]:
        h = best_response_labor_vec(skills, flat(rate, cutoffs), QuasiLinearUtility())
        z = skills * h
        history.append((z, marginal_rate_vec(z, flat(rate, cutoffs))))
    step = saez_planner_step(history, cutoffs, 0.5, buffer_size=250)
    assert not step.warming_up
    assert step.elasticity == pytest.approx(0.98 * 0.5 + 0.02 * 0.4, abs=1e-8)
    last = np.concatenate([z for z, _ in history])[-250:]
    assert step.schedule == saez_bracket_schedule(last, step.elasticity, cutoffs)
    fixed = saez_planner_step(history, cutoffs, 0.5, buffer_size=250, fixed_elasticity=1.0)
    assert fixed.elasticity == 1.0
