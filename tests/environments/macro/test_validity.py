"""Stylised facts of the scripted economy, on fewer seeds and years than benchmarks/macro_facts.py.

Not timed. The composite rule's Phillips correlation comes out POSITIVE, as EconAgent reports
for its rule-based baseline (economics.md §4): with this rule a household works less when its
savings are high relative to its pay, and high savings also mean high spending, so the years of
high unemployment are the years of excess demand and rising wages. The issue's target (a negative
Phillips curve) is therefore not met by the scripted composite rule; this test pins the sign that
the model produces, so a change to the rules that flips it is noticed.
"""
from __future__ import annotations

import numpy as np
import pytest

import sim
from environments.macro import metrics as mm

SEEDS, YEARS, N = range(6), 10, 40


@pytest.fixture(scope="module")
def outcomes():
    return [sim.run(["env=macro", "llm=scripted", "run.dir=null", f"env.n_households={N}", f"env.months={12 * YEARS}",
                     "env.survey=false", f"seed={s}"]).summary["outcome"] for s in SEEDS]


def test_phillips_correlation_of_the_composite_rule_is_positive(outcomes):
    m, lo, hi = mm.corr_mean_interval([o["phillips_corr"] for o in outcomes])
    assert lo > 0, (m, lo, hi)


def test_okun_law_holds_as_an_identity(outcomes):
    # all-or-nothing hours: real GDP is proportional to employment, so the correlation is -1
    assert all(o["okun_corr"] < -0.99 for o in outcomes)


def test_inflation_and_unemployment_stay_in_plausible_bands(outcomes):
    infl = np.array([y["inflation"] for o in outcomes for y in o["annual"][1:]])
    unemp = np.array([y["unemployment"] for o in outcomes for y in o["annual"]])
    assert -0.02 < infl.mean() < 0.05 and np.all(np.abs(infl) < 0.15)
    assert 0.005 < unemp.mean() < 0.08 and np.all(unemp < 0.15)


def test_coin_and_goods_conserved_every_month(outcomes):
    # a breach raises ConservationError in the phase that caused it; the flag says none did
    assert all(o["conservation_ok"] for o in outcomes)


def test_spending_share_is_higher_for_the_poor():
    r = sim.run(["env=macro", "llm=scripted", "run.dir=null", "env.n_households=50", "env.months=36",
                 "env.survey=false", "seed=1"])
    q1, q5 = r.metrics["spend_share_q1"].mean(), r.metrics["spend_share_q5"].mean()
    assert q1 > q5
