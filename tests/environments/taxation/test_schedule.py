import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from environments.taxation.schedule import (
    TaxSchedule,
    apply_rate_changes,
    bracket_tax,
    bracket_tax_many,
    bracket_tax_vec,
    collect_and_redistribute,
    flat,
    free_market,
    marginal_rate,
    marginal_rate_vec,
    us_federal_2018,
)

TOY = TaxSchedule((0, 10, 30), (0.1, 0.2, 0.5))


def test_bracket_tax_by_hand():
    assert bracket_tax(0, TOY) == 0
    assert bracket_tax(5, TOY) == pytest.approx(0.5)  # 5 * 0.1
    assert bracket_tax(10, TOY) == pytest.approx(1.0)
    assert bracket_tax(25, TOY) == pytest.approx(1.0 + 15 * 0.2)
    assert bracket_tax(40, TOY) == pytest.approx(1.0 + 4.0 + 10 * 0.5)  # top bracket unbounded
    assert bracket_tax(-7, TOY) == 0.0


def test_vectorised_matches_scalar_and_many():
    z = np.array([-1.0, 0.0, 3.0, 10.0, 29.9, 30.0, 1e4])
    vec = bracket_tax_vec(z, TOY)
    assert vec.tolist() == pytest.approx([bracket_tax(x, TOY) for x in z])
    rates = np.array([TOY.rates, (0.0, 0.0, 1.0)])
    many = bracket_tax_many(np.stack([z, z]), TOY.cutoffs, rates)
    assert many[0].tolist() == pytest.approx(vec.tolist())
    assert many[1].tolist() == pytest.approx(np.maximum(z - 30, 0).tolist())


def test_marginal_rate_uses_lower_edge_and_zero_below_zero():
    assert marginal_rate(0, TOY) == 0.1
    assert marginal_rate(9.99, TOY) == 0.1
    assert marginal_rate(10, TOY) == 0.2  # a cutoff belongs to the bracket it opens
    assert marginal_rate(1e9, TOY) == 0.5
    assert marginal_rate(-3, TOY) == 0.0
    assert marginal_rate_vec(np.array([5.0, 30.0]), TOY).tolist() == [0.1, 0.5]


def test_us_federal_2018_values():
    s = us_federal_2018()
    assert s.cutoffs == (0.0, 9.7, 39.475, 84.2, 160.725, 204.1, 510.3)
    assert s.rates == (0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37)
    # 100k dollars (100 in thousands): .1*9.7 + .12*29.775 + .22*44.725 + .24*15.8
    assert bracket_tax(100, s) == pytest.approx(0.97 + 3.573 + 9.8395 + 3.792)
    dollars = us_federal_2018(divisor=1)
    assert dollars.cutoffs[-1] == 510300.0
    assert bracket_tax(100_000, dollars) == pytest.approx(1000 * bracket_tax(100, s))
    assert marginal_rate(600, s) == 0.37


def test_presets_keep_brackets():
    assert free_market().rates == (0.0,) * 7
    assert free_market().cutoffs == us_federal_2018().cutoffs
    f = flat(0.25, cutoffs=(0, 5))
    assert f.rates == (0.25, 0.25)
    assert bracket_tax(8, f) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "cutoffs, rates, msg",
    [
        ((1, 5), (0.1, 0.2), "first cutoff"),
        ((0, 5, 5), (0.1, 0.2, 0.3), "strictly increasing"),
        ((0, 5), (0.1,), "one rate per bracket"),
        ((0, 5), (0.1, 1.2), r"\[0, 1\]"),
        ((0, 5), (0.1, float("nan")), r"\[0, 1\]"),
        ((), (), "at least one"),
    ],
)
def test_validation_errors(cutoffs, rates, msg):
    with pytest.raises(ValueError, match=msg):
        TaxSchedule(cutoffs, rates)


def test_apply_rate_changes_clamps_step_and_range():
    s = TaxSchedule((0, 10, 20), (0.5, 0.95, 0.1))
    out = apply_rate_changes(s, (0.9, 1.5, 0.05), max_step=0.2)
    assert out.rates == pytest.approx((0.7, 1.0, 0.05))  # +0.4 -> +0.2; 1.15 -> 1.0; -0.05 ok
    assert apply_rate_changes(s, (0.0, 0.0, 0.0), max_step=0.1).rates == pytest.approx((0.4, 0.85, 0.0))
    with pytest.raises(ValueError):
        apply_rate_changes(s, (0.1, 0.2), max_step=0.1)


def test_collect_and_redistribute_by_hand():
    # flat 50%: incomes 8, 4, 0 owe 4, 2, 0; the second agent only holds 1 coin.
    s = flat(0.5, cutoffs=(0,))
    tax, lump, post = collect_and_redistribute(np.array([8.0, 4.0, 0.0]), np.array([10.0, 1.0, 2.0]), s)
    assert tax.tolist() == [4.0, 1.0, 0.0]
    assert lump == pytest.approx(5.0 / 3)
    assert post.tolist() == pytest.approx([6 + 5 / 3, 5 / 3, 2 + 5 / 3])
    # dyadic numbers: conservation holds exactly
    tax, lump, post = collect_and_redistribute(np.array([8.0, 4.0, 0.0, 0.0]), np.array([8.0, 4.0, 1.0, 3.0]), s)
    assert lump == 1.5 and post.sum() == 16.0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-50, 1000, allow_nan=False), st.floats(0, 1000, allow_nan=False)),
        min_size=1,
        max_size=30,
    )
)
def test_redistribution_conserves_coin(pairs):
    z = np.array([p[0] for p in pairs])
    coin = np.array([p[1] for p in pairs])
    tax, lump, post = collect_and_redistribute(z, coin, us_federal_2018())
    assert math.isclose(post.sum(), coin.sum(), rel_tol=1e-12, abs_tol=1e-9)
    assert math.isclose(tax.sum(), lump * len(z), rel_tol=1e-12, abs_tol=1e-12)
    assert np.all(tax <= coin) and np.all(tax >= 0) and np.all(post >= 0)
