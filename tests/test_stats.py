import math

import pytest

from sim.stats import games_needed, mean_ci, wilson_interval


def test_wilson_matches_reference_values():
    lo, hi = wilson_interval(1, 10)
    assert lo == pytest.approx(0.018, abs=1e-3) and hi == pytest.approx(0.404, abs=1e-3)
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.237, abs=1e-3) and hi == pytest.approx(0.763, abs=1e-3)


def test_wilson_edges_stay_in_unit_interval():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_wilson_narrows_with_n():
    w10 = wilson_interval(5, 10)
    w100 = wilson_interval(50, 100)
    assert (w100[1] - w100[0]) < (w10[1] - w10[0])


def test_games_needed_textbook_value():
    # 0.5 vs 0.6, two-sided 5 %, power 80 %: ((1.96*0.5 + 0.8416*sqrt(0.24)) / 0.1)^2 = 193.8
    assert games_needed(0.6, 0.5) == 194


def test_games_needed_shrinks_with_effect_size_and_rejects_no_effect():
    assert games_needed(0.3, 0.07) < games_needed(0.15, 0.07)
    assert games_needed(0.6, 0.5, power=0.9) > games_needed(0.6, 0.5)
    with pytest.raises(ValueError):
        games_needed(0.5, 0.5)


def test_mean_ci_t_interval():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    # sd 1, se 1/sqrt(3), t(0.975, 2) = 4.3027
    assert m == 2.0
    assert lo == pytest.approx(2 - 4.3027 / math.sqrt(3), abs=1e-3)
    assert hi == pytest.approx(2 + 4.3027 / math.sqrt(3), abs=1e-3)


def test_mean_ci_degenerate_inputs():
    m, lo, hi = mean_ci([4.0])
    assert m == 4.0 and math.isnan(lo) and math.isnan(hi)
    assert mean_ci([2.0, 2.0]) == (2.0, 2.0, 2.0)
    with pytest.raises(ValueError):
        mean_ci([])


from hypothesis import given, strategies as st  # noqa: E402


@given(st.integers(0, 200).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_the_point_estimate(kn):
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo - 1e-12 <= k / n <= hi + 1e-12
