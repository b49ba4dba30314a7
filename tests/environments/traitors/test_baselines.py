import math
import random
from fractions import Fraction

import numpy as np
import pytest

from environments.traitors.baselines import (
    BayesSuspicion,
    bayes_suspicion,
    majority_follower,
    murder_choice,
    p_faithful_win_random,
    plurality,
    random_vote,
    traitor_bloc_vote,
)

# ----- exact baseline ----------------------------------------------------------------


def test_reference_value_n10_t3():
    assert p_faithful_win_random(10, 3) == Fraction(11, 160)


def test_boundaries():
    assert p_faithful_win_random(5, 0) == 1
    assert p_faithful_win_random(4, 2) == 0  # t >= f from the start
    assert p_faithful_win_random(3, 1) == Fraction(1, 3)  # one banishment decides it
    with pytest.raises(ValueError):
        p_faithful_win_random(2, 3)


def _enumerate(faithful: frozenset, traitors: frozenset) -> Fraction:
    """Exact P(faithful win) over labelled players: every banishment and murder
    outcome enumerated, no memo on counts (an independent check of the recursion)."""
    if not traitors:
        return Fraction(1)
    if len(traitors) >= len(faithful):
        return Fraction(0)
    alive = sorted(faithful | traitors)
    total = Fraction(0)
    for b in alive:  # uniform banishment
        f, t = faithful - {b}, traitors - {b}
        if not t:
            total += Fraction(1, len(alive))
            continue
        if len(t) >= len(f):
            continue
        for m in sorted(f):  # uniform murder of a faithful
            total += Fraction(1, len(alive) * len(f)) * _enumerate(f - {m}, t)
    return total


@pytest.mark.parametrize("n,t", [(3, 1), (4, 1), (5, 1), (6, 2), (7, 2), (7, 3)])
def test_recursion_matches_brute_force(n, t):
    players = [f"p{k}" for k in range(1, n + 1)]
    assert p_faithful_win_random(n, t) == _enumerate(frozenset(players[t:]), frozenset(players[:t]))


def _play_random_game(n: int, t: int, rng: np.random.Generator) -> bool:
    """Everybody votes uniformly at random, plurality with random tie-break."""
    players = [f"p{k}" for k in range(1, n + 1)]
    traitors = set(rng.choice(players, size=t, replace=False).tolist())
    alive = list(players)
    while True:
        votes = [random_vote(v, [x for x in alive if x != v], rng) for v in alive]
        alive.remove(plurality(votes, rng))
        t_alive = sum(p in traitors for p in alive)
        if t_alive == 0:
            return True
        if t_alive >= len(alive) - t_alive:
            return False
        memo: dict = {}
        faithful = [p for p in alive if p not in traitors]
        victims = [murder_choice(tr, faithful, rng, memo=memo) for tr in alive if tr in traitors]
        assert len(set(victims)) == 1
        alive.remove(victims[0])
        if sum(p in traitors for p in alive) >= len(alive) - sum(p in traitors for p in alive):
            return False


def test_monte_carlo_with_random_voters_agrees():
    rng = np.random.default_rng(7)
    n, t, games = 7, 2, 3000
    wins = sum(_play_random_game(n, t, rng) for _ in range(games))
    exact = float(p_faithful_win_random(n, t))
    se = math.sqrt(exact * (1 - exact) / games)
    assert abs(wins / games - exact) < 4 * se


# ----- vote policies -----------------------------------------------------------------


@pytest.mark.parametrize("make", [lambda: np.random.default_rng(3), lambda: random.Random(3)])
def test_random_vote_is_deterministic_and_valid(make):
    targets = ["p2", "p3", "p4", "p5"]
    a = [random_vote("p1", targets, r) for r in [make()] for _ in range(20)]
    b = [random_vote("p1", targets, r) for r in [make()] for _ in range(20)]
    assert a == b
    assert set(a) <= set(targets) and len(set(a)) > 1


def test_majority_follower_joins_plurality_of_valid_votes():
    rng = np.random.default_rng(0)
    seen = {"p2": "p4", "p3": "p4", "p5": "p9", "p6": "p9", "p7": "p9"}  # p9 is not a valid target
    assert majority_follower("p1", ["p2", "p3", "p4"], rng, seen_votes=seen) == "p4"
    assert majority_follower("p1", ["p2", "p3"], rng, suspicion={"p2": 0.2, "p3": 0.7}) == "p3"
    picks = {majority_follower("p1", ["p2", "p3", "p4"], rng) for _ in range(30)}
    assert picks == {"p2", "p3", "p4"}  # nothing seen: random


def test_bayes_update_is_exact_log_likelihood_ratio():
    m = BayesSuspicion("p1", ["p1", "p2", "p3", "p4"], n_traitors=1, q_hi=0.8, q_lo=0.2)
    prior = math.log((1 / 3) / (2 / 3))
    m.observe({"p2": True, "p3": False})
    assert m.log_odds["p2"] == pytest.approx(prior + math.log(4))
    assert m.log_odds["p3"] == pytest.approx(prior + math.log(0.25))
    assert m.log_odds["p4"] == pytest.approx(prior)


def test_bayes_beliefs_sum_to_traitors_left_and_rank_by_tells():
    m = BayesSuspicion("p1", [f"p{k}" for k in range(1, 8)], n_traitors=2, q_hi=0.7, q_lo=0.3)
    m.observe({"p2": True, "p3": True, "p4": False})
    b = m.beliefs()
    assert sum(b.values()) == pytest.approx(2.0, abs=1e-6)
    assert b["p2"] > b["p5"] > b["p4"] and all(0 < v < 1 for v in b.values())
    m.eliminate("p2", "traitor")
    b = m.beliefs()
    assert "p2" not in b and sum(b.values()) == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(1)
    assert bayes_suspicion("p1", ["p3", "p4", "p5"], rng, model=m) == "p3"


def test_bayes_observer_finds_the_traitor_from_tells():
    rng = np.random.default_rng(5)
    roles = {"p1": "faithful", "p2": "faithful", "p3": "traitor", "p4": "faithful", "p5": "faithful"}
    m = BayesSuspicion("p1", list(roles), n_traitors=1, q_hi=0.8, q_lo=0.2)
    for _ in range(15):
        m.observe(m.draw_tells(roles, rng))
    b = m.beliefs()
    assert max(b, key=b.get) == "p3" and b["p3"] > 0.9


def test_traitor_bloc_agrees_on_one_faithful():
    traitors = ["p1", "p2"]
    alive = ["p1", "p2", "p3", "p4", "p5"]
    rng = np.random.default_rng(11)
    memo: dict = {}
    picks = [traitor_bloc_vote(v, [x for x in alive if x != v], rng, traitors=traitors,
                               memo=memo, key=("banish", 1)) for v in traitors]
    assert picks[0] == picks[1] and picks[0] not in traitors
    sus = {"p3": 0.5, "p4": 0.1, "p5": 0.9}
    assert traitor_bloc_vote("p1", alive[1:], rng, traitors=traitors, suspicion=sus,
                             rule="min_suspicion") == "p4"
    assert traitor_bloc_vote("p1", alive[1:], rng, traitors=traitors, suspicion=sus,
                             rule="max_suspicion") == "p5"


def test_murder_choice_only_faithful_and_shared():
    rng = random.Random(2)
    memo: dict = {}
    a = murder_choice("p1", ["p3", "p4"], rng, memo=memo)
    b = murder_choice("p2", ["p3", "p4"], rng, memo=memo)
    assert a == b and a in {"p3", "p4"}


def test_plurality_tie_break_uses_rng_only():
    votes = ["p2", "p3", "p3", "p2", "p4"]
    wins = {plurality(votes, np.random.default_rng(s)) for s in range(20)}
    assert wins == {"p2", "p3"}
    assert plurality([], np.random.default_rng(0)) is None


def test_large_tables_have_an_exact_baseline():
    """A 1,000-player table (scripted Monte Carlo) no longer passes the recursion limit."""
    p = p_faithful_win_random(1000, 100)
    assert 0 < p < 1 and isinstance(p, Fraction)
    assert p_faithful_win_random(10, 3) == Fraction(11, 160)
