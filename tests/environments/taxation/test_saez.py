import numpy as np
import pytest

from environments.taxation.saez import (
    SaezBins,
    bracketize,
    estimate_elasticity,
    saez_bracket_schedule,
    saez_rates,
    saez_top_rate,
    update_elasticity,
)
from environments.taxation.schedule import flat
from environments.taxation.utility import QuasiLinearUtility, best_response_labor


def rational_panel(skills, rates, delta=3.5):
    params = QuasiLinearUtility(c=0.0005, delta=delta)
    z, tau = [], []
    for rate in rates:
        for s in skills:
            h = best_response_labor(s, flat(rate), params)
            assert h < 100  # nobody capped, else the slope is biased
            z.append(s * h)
            tau.append(rate)
    return np.array(z), np.array(tau)


@pytest.mark.parametrize("delta", [3.5, 2.0])
def test_elasticity_of_rational_quasi_linear_workers(delta):
    skills = np.linspace(5, 150, 12) if delta == 3.5 else np.linspace(0.01, 0.09, 12)
    z, tau = rational_panel(skills, [0.0, 0.1, 0.25, 0.4, 0.6], delta)
    assert estimate_elasticity(z, tau) == pytest.approx(1 / (delta - 1), abs=1e-6)


def test_elasticity_guards():
    z = np.arange(1.0, 20.0)
    assert estimate_elasticity(z[:9], np.linspace(0, 0.5, 9)) is None  # n < 10
    assert estimate_elasticity(z, np.full(z.size, 0.3)) is None  # no variation in tau
    # z <= 0 and tau >= 1 rows are dropped before the n check
    tau = np.linspace(0, 0.5, z.size)
    z_bad = z.copy()
    z_bad[:10] = 0.0
    assert estimate_elasticity(z_bad, tau) is None
    assert estimate_elasticity(np.append(z, 5.0), np.append(tau, 1.0)) == pytest.approx(estimate_elasticity(z, tau))


def test_elasticity_ema():
    assert update_elasticity(0.5, 0.4) == pytest.approx(0.98 * 0.5 + 0.02 * 0.4)
    assert update_elasticity(0.5, -2.0) == pytest.approx(0.49)  # negative estimates floor at 0
    assert update_elasticity(0.7, None) == 0.7


def test_saez_top_rate_formula():
    assert saez_top_rate(3.0, 0.5) == pytest.approx(1 / 2.5)
    assert saez_top_rate(2.0, 0.25, g_top=0.5) == pytest.approx(0.5 / 1.0)


def pareto_incomes(a, scale, n):
    u = (np.arange(n) + 0.5) / n  # evenly spaced quantiles: a deterministic Pareto sample
    return scale * (1 - u) ** (-1 / a)


def test_saez_rates_top_rate_for_pareto_tail_with_zero_top_weight():
    a, e, cutoff = 3.0, 0.5, 510.3
    z = pareto_incomes(a, 100.0, 40_000)
    bins = saez_rates(z, e, weights=lambda x: (x <= cutoff).astype(float), top_cutoff=cutoff)
    assert bins.g[-1] == 0.0
    above = z[z > cutoff]
    a_hat = above.mean() / (above.mean() - cutoff)
    assert bins.a[-1] == pytest.approx(a_hat, rel=1e-12)
    assert a_hat == pytest.approx(a, rel=0.02)  # sample tail index recovers the Pareto a
    assert bins.top_rate == pytest.approx(saez_top_rate(a_hat, e), rel=1e-12)
    assert bins.top_rate == pytest.approx(1 / (1 + a * e), abs=0.01)


def test_saez_rates_interior_pareto_parameter():
    # For a Pareto density, z f(z) / (1 - F(z)) = a at every z above the scale.
    z = pareto_incomes(3.0, 100.0, 200_000)
    bins = saez_rates(z, 0.5, weights="uniform", n_bins=50, top_cutoff=500.0)
    mids = 0.5 * (bins.edges[:-1] + bins.edges[1:])
    inside = (mids > 150) & (mids < 300)
    assert np.allclose(bins.a[:-1][inside], 3.0, rtol=0.05)
    assert np.all(np.isnan(bins.a[:-1][mids < 90]))  # empty bins below the scale


def test_uniform_weights_give_zero_rates():
    # Utilitarian weights with no income effects: G = 1 everywhere, so tau = 0.
    z = np.random.default_rng(0).uniform(0, 700, 1000)
    bins = saez_rates(z, 0.4, weights="uniform")
    assert np.allclose(bins.g, 1.0) and np.allclose(bins.rates, 0.0, atol=1e-12)


def test_inverse_income_weights_fall_with_income():
    z = np.random.default_rng(1).uniform(1, 600, 5000)
    bins = saez_rates(z, 0.4)
    # G is the mean normalised weight above z: 1 at z = 0, then falling as the poor drop out.
    assert 1.0 > bins.g[0] > bins.g[-1] > 0.0
    assert np.all(np.diff(bins.g) <= 1e-12)
    assert np.all(np.isfinite(bins.rates))


def test_empty_bins_are_interpolated():
    z = np.array([5.0, 5.0, 5.0, 95.0, 95.0, 150.0])
    bins = saez_rates(z, 0.5, n_bins=10, top_cutoff=100.0)
    real = ~np.isnan(bins.a)
    assert real.tolist() == [True] + [False] * 8 + [True, True]
    expected = np.linspace(bins.rates[0], bins.rates[9], 10)
    assert bins.rates[:10] == pytest.approx(expected)


def test_bracketize_by_hand():
    bins = SaezBins(
        edges=np.array([0.0, 1.0, 2.0]),
        g=np.zeros(3),
        a=np.ones(3),
        rates=np.array([0.1, 0.3, 0.5]),
    )
    assert bracketize(bins, (0.0, 2.0)).tolist() == pytest.approx([0.2, 0.5])
    assert bracketize(bins, (0.0, 1.0, 2.0)).tolist() == pytest.approx([0.1, 0.3, 0.5])
    assert bracketize(bins, (0.0, 0.5, 2.0)).tolist() == pytest.approx([0.1, (0.05 + 0.3) / 1.5, 0.5])


def test_saez_bracket_schedule_clips():
    z = pareto_incomes(3.0, 20.0, 5000)
    cut = (0.0, 50.0, 200.0)
    s = saez_bracket_schedule(z, 0.4, cut, rate_max=0.6)
    raw = bracketize(saez_rates(z, 0.4, top_cutoff=200.0), cut)
    assert s.cutoffs == cut
    assert s.rates == pytest.approx(tuple(np.clip(raw, 0, 0.6)))
    assert max(s.rates) <= 0.6
