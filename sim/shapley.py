"""Shapley attribution of spend and outcome to agents or phases (small populations).

The game. Players are agents (ids) or phases. The characteristic function of a coalition S
is measured by running the same seeds with the configured deliberation policy applied only
to S (``deliberation.agents=S`` or ``deliberation.phases=S``); every other decision makes
the endpoint's single call, as a run without deliberation does. So

    v(S) = (mean spend per game, mean success per game) when only S deliberates,

v(empty) is the single-call baseline and v(N) the full policy. A player's Shapley value
phi_i = sum over S not containing i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S)) is its
average marginal effect over every order in which players could adopt the policy: phi_spend
is the extra spend attributable to i (interactions such as a shorter game when i deliberates
are shared fairly), phi_outcome the extra success. Both sum to v(N) - v(empty) (efficiency);
a player whose deliberation changes nothing gets 0 (null player), interchangeable players
get equal values (symmetry), and with common random numbers a null player's 0 is exact.

Exact for n <= MAX_EXACT players (2^n coalitions, each ``len(seeds)`` games). Above that the
values are a permutation-sampling estimate (Castro, Gomez and Tejada 2009): the mean marginal
contribution over ``samples`` seeded random orders, with its standard error.
"""
from __future__ import annotations

import math
from itertools import combinations
from typing import Callable, Hashable, Sequence

import numpy as np

MAX_EXACT = 10  # 2^10 = 1024 coalitions: beyond this the exact sum costs too many games


def shapley(players: Sequence[Hashable], value: Callable[[frozenset], Sequence[float] | float],
            exact_max: int = MAX_EXACT, samples: int = 200, seed: int = 0) -> dict:
    """Shapley values of ``value`` (a coalition -> number or vector) over ``players``.

    Returns {"phi": {player: array}, "se": {player: array or None}, "method": "exact" | "sampled",
    "coalitions": how many coalitions were evaluated}.
    """
    players = list(players)
    if len(set(players)) != len(players):
        raise ValueError("players: each at most once")
    n = len(players)
    cache: dict[frozenset, np.ndarray] = {}

    def v(s: frozenset) -> np.ndarray:
        if s not in cache:
            cache[s] = np.atleast_1d(np.asarray(value(s), dtype=float))
        return cache[s]

    if n <= exact_max:
        phi = {p: 0.0 for p in players}
        for p in players:
            rest = [q for q in players if q != p]
            for k in range(n):
                w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
                for s in combinations(rest, k):
                    s = frozenset(s)
                    phi[p] = phi[p] + w * (v(s | {p}) - v(s))
        return {"phi": phi, "se": {p: None for p in players}, "method": "exact", "coalitions": len(cache)}
    rng = np.random.default_rng(seed)
    contrib: dict = {p: [] for p in players}
    for _ in range(samples):
        s: frozenset = frozenset()
        for i in rng.permutation(n):
            p = players[int(i)]
            contrib[p].append(v(s | {p}) - v(s))
            s = s | {p}
    phi = {p: np.mean(contrib[p], axis=0) for p in players}
    se = {p: np.std(contrib[p], axis=0, ddof=1) / math.sqrt(samples) if samples > 1 else None for p in players}
    return {"phi": phi, "se": se, "method": "sampled", "coalitions": len(cache)}


def players_of(base: list[str], by: str = "agents", seeds: Sequence[int] = range(20)) -> list[str]:
    """The agents (or phases) that made a non-scripted call in any game of the full policy on ``seeds``.

    Scripted agents ignore deliberation and a phase without model calls has nothing to
    deliberate: both are null players (exactly 0), so leaving them out saves half the
    coalitions per player left out and changes no one else's value.
    """
    from sim.config import compose, to_dict
    from sim.runner import _run_memory

    col = {"agents": "agent", "phases": "phase"}.get(by)
    if col is None:
        raise ValueError(f"by={by!r}: agents or phases")
    cfg = to_dict(compose([*base, "run.dir=null", "run.checkpoint=false"]))
    found: set[str] = set()
    for seed in seeds:
        led = _run_memory({**cfg, "seed": int(seed)}).ledger
        if led.height:
            rows = led.filter(led["provider"] != "scripted")
            found |= {x for x in rows[col].to_list() if x}
    return sorted(found)


def attribute(base: list[str], players: Sequence[str], by: str = "agents", seeds: Sequence[int] = range(20),
              exact_max: int = MAX_EXACT, samples: int = 200):
    """Shapley attribution of spend (USD per game) and success to ``players`` (agent ids or phases).

    ``base`` are run overrides that choose a deliberation policy (e.g. ``deliberation=best_of_n``);
    the coalition is set with ``deliberation.<by>=[...]``. Returns a polars frame, one row per
    player: phi_spend, phi_outcome (and their standard errors when sampled), and the method.
    """
    import polars as pl

    from environments import registry
    from sim.config import compose, to_dict
    from sim.runner import _run_memory

    if by not in ("agents", "phases"):
        raise ValueError(f"by={by!r}: agents or phases")
    seeds = [int(s) for s in seeds]

    def value(s: frozenset) -> tuple[float, float]:
        members = ",".join(sorted(s))
        cfg = to_dict(compose([*base, f"deliberation.{by}=[{members}]", "run.dir=null", "run.checkpoint=false"]))
        if (cfg.get("deliberation") or {}).get("policy", "single") == "single":
            raise ValueError("attribute: choose a deliberation policy in the overrides (deliberation=best_of_n ...)")
        cls = registry.env_class(cfg["env"]["name"])
        spend, success = [], []
        for seed in seeds:
            res = _run_memory({**cfg, "seed": seed})
            spend.append(float(res.summary["llm"]["usd"]))
            w = cls.success_value(res.summary["outcome"])
            success.append(math.nan if w is None else float(w))
        return float(np.mean(spend)), float(np.nanmean(success)) if not all(map(math.isnan, success)) else math.nan

    got = shapley(players, value, exact_max, samples)
    rows = []
    for p in players:
        phi, se = got["phi"][p], got["se"][p]
        rows.append({"player": p, "by": by, "phi_spend": float(phi[0]), "phi_outcome": float(phi[1]),
                     "se_spend": None if se is None else float(se[0]),
                     "se_outcome": None if se is None else float(se[1]),
                     "method": got["method"], "games_per_coalition": len(seeds)})
    return pl.DataFrame(rows, schema_overrides={"se_spend": pl.Float64, "se_outcome": pl.Float64})
