"""Shapley attribution: the axioms on games with known values, and spend attributed through the engine."""
from __future__ import annotations

import pytest

from sim.shapley import attribute, shapley


def phis(got):
    return {p: float(v[0]) for p, v in got["phi"].items()}


def test_additive_game_gives_each_player_its_own_weight():
    w = {"a": 1.0, "b": 2.5, "c": -0.5, "d": 4.0}
    got = shapley(list(w), lambda s: sum(w[p] for p in s))
    assert got["method"] == "exact" and got["coalitions"] == 16
    assert phis(got) == pytest.approx(w)


def test_symmetry_null_player_and_efficiency():
    # v depends on how many of a, b, c are in S (a majority game); z changes nothing
    v = lambda s: float(len(s & {"a", "b", "c"}) >= 2)  # noqa: E731
    got = phis(shapley(["a", "b", "c", "z"], v))
    assert got["a"] == got["b"] == got["c"] == pytest.approx(1 / 3)  # symmetry
    assert got["z"] == 0  # null player
    assert sum(got.values()) == pytest.approx(v(frozenset("abcz")) - v(frozenset()))  # efficiency


def test_vector_values_and_a_glove_game():
    # glove game: L holds a left glove, R1 and R2 right ones; a pair is worth 1. Shapley: L 2/3, R 1/6 each
    v = lambda s: (float("L" in s and bool(s & {"R1", "R2"})), float(len(s)))  # noqa: E731
    got = shapley(["L", "R1", "R2"], v)["phi"]
    assert got["L"][0] == pytest.approx(2 / 3) and got["R1"][0] == pytest.approx(1 / 6)
    assert all(x[1] == pytest.approx(1.0) for x in got.values())  # |S| is additive: 1 each


def test_many_players_use_a_sampling_estimate_within_its_error():
    players = [f"p{i}" for i in range(14)]
    got = shapley(players, lambda s: float(len(s)) ** 2, samples=300, seed=1)  # exact value: 14 for each
    assert got["method"] == "sampled"
    for p in players:
        assert abs(got["phi"][p][0] - 14) <= 4 * got["se"][p][0] + 1e-9
    with pytest.raises(ValueError, match="each at most once"):
        shapley(["a", "a"], len)


TAX = ["env=taxation", "env.hours_step=100", "env.n_workers=3", "env.ticks=2", "llm=oracle", "llm.model=small",
       "agent.reflection.enabled=false", "deliberation=best_of_n", "deliberation.n=3"]


def test_spend_of_best_of_three_is_attributed_to_each_worker_exactly():
    # each deliberating worker makes 2 extra small-tier calls (1e-4 USD each) per tick, whoever else deliberates
    df = attribute(TAX, ["w001", "w002", "w003"], "agents", seeds=range(2))
    assert df["method"].unique().to_list() == ["exact"]
    assert df["phi_spend"].to_list() == pytest.approx([2 * 2 * 1e-4] * 3)
    ph = attribute(TAX, ["labor", "nope"], "phases", seeds=range(2))
    by = {r["player"]: r for r in ph.to_dicts()}
    assert by["nope"]["phi_spend"] == 0 and by["nope"]["phi_outcome"] == 0  # null player, exactly (same seeds)
    assert by["labor"]["phi_spend"] == pytest.approx(3 * 2 * 2 * 1e-4)
    with pytest.raises(ValueError, match="agents or phases"):
        attribute(TAX, ["w001"], "roles")
