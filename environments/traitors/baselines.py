"""Exact random baseline and scripted (no-LLM) vote policies for the Traitors game.

The baseline answers "how often would the faithful win if nobody could read anybody?";
every LLM result is reported as a lift over it. The scripted policies give cheap,
seeded opponents and a calibrated Bayesian reference for belief metrics.

Policies share one shape: ``policy(voter, targets, rng, **context) -> target``, where
``rng`` is a ``numpy.random.Generator`` or a ``random.Random``. Given the same inputs
and rng state they return the same target.
"""
from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any, Hashable

import numpy as np

Rng = np.random.Generator | random.Random


# ----- exact random baseline ---------------------------------------------------------


@lru_cache(maxsize=None)
def _p_faithful(f: int, t: int) -> Fraction:
    # What the recursion models: one round of a game where nobody has information.
    # The banishment hits a player uniformly at random among the f + t alive players
    # (plurality of uniformly random votes is uniform by symmetry). With prob. t/(f+t)
    # it is a traitor: if that was the last one the faithful win at once, otherwise
    # the night murder removes one faithful -> (f-1, t-1). With prob. f/(f+t) it is a
    # faithful, and the murder removes another -> (f-2, t). Traitors win as soon as
    # they are at least as many as the faithful (t >= f), faithful when t == 0.
    if t == 0:
        return Fraction(1)
    if t >= f:
        return Fraction(0)
    hit_traitor = Fraction(t, f + t) * (Fraction(1) if t == 1 else _p_faithful(f - 1, t - 1))
    hit_faithful = Fraction(f, f + t) * _p_faithful(f - 2, t)
    return hit_traitor + hit_faithful


def p_faithful_win_random(n_players: int, n_traitors: int) -> Fraction:
    """Exact P(faithful win) when banishments and murders are uniformly random.

    P(f,t) = t/(f+t) * [t=1 ? 1 : P(f-1,t-1)] + f/(f+t) * P(f-2,t), P(f,0)=1,
    P(f,t)=0 for t >= f, with f = n_players - n_traitors. N=10, T=3 gives 11/160.
    """
    if n_traitors < 0 or n_players < n_traitors:
        raise ValueError(f"bad game size N={n_players}, T={n_traitors}")
    f0, t0 = n_players - n_traitors, n_traitors
    # the states the game can reach, smallest first: each step then recurses one level only
    # (a 1,000-player table would otherwise pass Python's recursion limit)
    for f in range(f0 + 1):
        for t in range(max(0, t0 - (f0 - f)), t0 + 1):
            if (f0 - f - (t0 - t)) % 2 == 0:
                _p_faithful(f, t)
    return _p_faithful(f0, t0)


# ----- helpers -----------------------------------------------------------------------


def _pick(rng: Rng, items: Sequence[Any]) -> Any:
    """Uniform choice that works for numpy Generators and random.Random alike."""
    if not items:
        raise ValueError("no valid targets")
    if isinstance(rng, np.random.Generator):
        return items[int(rng.integers(len(items)))]
    return items[rng.randrange(len(items))]


def _argmax_random(scores: Mapping[str, float], targets: Sequence[str], rng: Rng) -> str:
    """Target with the highest score; ties broken uniformly with ``rng``."""
    best = max(scores[t] for t in targets)
    top = [t for t in targets if math.isclose(scores[t], best, rel_tol=0, abs_tol=1e-12)]
    return top[0] if len(top) == 1 else _pick(rng, top)


def plurality(votes: Iterable[str], rng: Rng) -> str | None:
    """Most-voted target, ties broken uniformly with ``rng``; None with no votes."""
    counts = Counter(votes)
    if not counts:
        return None
    order = sorted(counts)  # fixed order so the tie-break depends only on the rng
    return _argmax_random({k: float(counts[k]) for k in order}, order, rng)


# ----- vote policies -----------------------------------------------------------------


def random_vote(voter: str, targets: Sequence[str], rng: Rng, **_: Any) -> str:
    """Uniform over the valid targets: the no-information baseline voter."""
    return _pick(rng, list(targets))


def majority_follower(
    voter: str,
    targets: Sequence[str],
    rng: Rng,
    seen_votes: Mapping[str, str] | Iterable[str] | None = None,
    suspicion: Mapping[str, float] | None = None,
    **_: Any,
) -> str:
    """Join the current plurality of the votes seen so far, else the most suspected.

    Models the bandwagon voter (open sequential voting). Votes on invalid targets are
    ignored; with nothing to follow it votes at random.
    """
    targets = list(targets)
    if seen_votes:
        seen = seen_votes.values() if isinstance(seen_votes, Mapping) else seen_votes
        counts = Counter(t for t in seen if t in targets)
        if counts:
            return _argmax_random({t: float(counts.get(t, 0)) for t in targets}, targets, rng)
    if suspicion:
        known = [t for t in targets if t in suspicion]
        if known:
            return _argmax_random({t: float(suspicion[t]) for t in known}, known, rng)
    return random_vote(voter, targets, rng)


class BayesSuspicion:
    """A faithful who reads noisy private tells and updates log-odds by Bayes' rule.

    Each round it sees, for every other alive player, a binary tell with
    P(tell | traitor) = q_hi and P(tell | faithful) = q_lo. It is the ideal observer of
    that signal, so its beliefs are a calibrated reference for the belief metrics.
    """

    def __init__(self, me: str, players: Iterable[str], n_traitors: int,
                 q_hi: float = 0.6, q_lo: float = 0.4) -> None:
        if not (0 < q_lo < 1 and 0 < q_hi < 1):
            raise ValueError("tell probabilities must lie in (0, 1)")
        self.me = me
        self.others = [p for p in players if p != me]
        self.t_left = n_traitors  # traitors among the others (a faithful's view)
        self.q_hi, self.q_lo = q_hi, q_lo
        p0 = n_traitors / len(self.others) if self.others else 0.0
        prior = _logit(p0)
        self.log_odds: dict[str, float] = {p: prior for p in self.others}
        self._memo = None

    # beliefs() is a 100-step bisection; it only changes when log_odds or t_left do
    _memo: dict[str, float] | None = None  # class default: snapshots written before the memo load too

    def observe(self, tells: Mapping[str, bool]) -> None:
        """Bayes update from one round of tells {pid: tell seen}."""
        yes = math.log(self.q_hi / self.q_lo)
        no = math.log((1 - self.q_hi) / (1 - self.q_lo))
        self._memo = None
        for pid, tell in tells.items():
            if pid in self.log_odds:
                self.log_odds[pid] += yes if tell else no

    def draw_tells(self, roles: Mapping[str, str], rng: Rng) -> dict[str, bool]:
        """Sample this round's tells from the true roles (for scripted games)."""
        out: dict[str, bool] = {}
        for pid in sorted(self.log_odds):
            q = self.q_hi if roles.get(pid) == "traitor" else self.q_lo
            u = float(rng.random())
            out[pid] = u < q
        return out

    def eliminate(self, pid: str, role: str | None = None) -> None:
        """Drop a player who left the game; a revealed traitor lowers the count left."""
        self._memo = None
        if self.log_odds.pop(pid, None) is not None and role == "traitor":
            self.t_left = max(0, self.t_left - 1)

    def beliefs(self) -> dict[str, float]:
        """{pid: P(traitor)}, shifted in log-odds so the probabilities sum to t_left.

        A common log-odds shift keeps the ranking and every value inside (0, 1) while
        making the expected traitor count consistent with what the faithful know.
        """
        if self._memo is None:
            self._memo = self._beliefs()
        return dict(self._memo)

    def _beliefs(self) -> dict[str, float]:
        pids = sorted(self.log_odds)
        if not pids:
            return {}
        if self.t_left <= 0:
            return {p: 0.0 for p in pids}
        if self.t_left >= len(pids):
            return {p: 1.0 for p in pids}
        lo_ = np.array([self.log_odds[p] for p in pids])

        def total(c: float) -> float:
            return float(np.sum(1.0 / (1.0 + np.exp(-(lo_ + c)))))

        a, b = -50.0 - lo_.max(), 50.0 - lo_.min()
        for _ in range(100):  # bisection: total() is increasing in the shift
            mid = (a + b) / 2
            if mid == a or mid == b:  # a and b are adjacent floats: further steps change nothing
                break
            if total(mid) < self.t_left:
                a = mid
            else:
                b = mid
        c = (a + b) / 2
        return {p: float(1.0 / (1.0 + math.exp(-(self.log_odds[p] + c)))) for p in pids}

    def vote(self, targets: Sequence[str], rng: Rng) -> str:
        """Banish vote: the valid target with the highest posterior."""
        b = self.beliefs()
        known = [t for t in targets if t in b]
        if not known:
            return random_vote(self.me, list(targets), rng)
        return _argmax_random(b, known, rng)


def beliefs_many(models: Sequence[BayesSuspicion]) -> list[dict[str, float]]:
    """``[m.beliefs() for m in models]``, the bisections of all models run as one array.

    The same floats as one at a time (tests/environments/traitors/test_batch.py): each row
    is summed by the same reduction and stops at the same step; rows whose answer needs no
    search, or is memoised already, take the scalar path.
    """
    out: list[dict[str, float] | None] = [None] * len(models)
    rows: dict[int, list[int]] = {}
    for i, m in enumerate(models):
        if m._memo is not None or not m.log_odds or m.t_left <= 0 or m.t_left >= len(m.log_odds):
            out[i] = m.beliefs()
        else:
            rows.setdefault(len(m.log_odds), []).append(i)
    for k, idx in rows.items():  # one array per row length
        pids = [sorted(models[i].log_odds) for i in idx]
        lo_ = np.array([[models[i].log_odds[p] for p in ps] for i, ps in zip(idx, pids)])
        t_left = np.array([models[i].t_left for i in idx], dtype=float)
        a, b = -50.0 - lo_.max(axis=1), 50.0 - lo_.min(axis=1)
        live = np.ones(len(idx), dtype=bool)
        for _ in range(100):
            mid = (a + b) / 2
            live &= (mid != a) & (mid != b)  # adjacent floats: that row is done
            if not live.any():
                break
            below = np.sum(1.0 / (1.0 + np.exp(-(lo_ + mid[:, None]))), axis=1) < t_left
            a = np.where(live & below, mid, a)
            b = np.where(live & ~below, mid, b)
        c = (a + b) / 2
        for r, (i, ps) in enumerate(zip(idx, pids)):
            m, cr = models[i], float(c[r])
            m._memo = {p: float(1.0 / (1.0 + math.exp(-(m.log_odds[p] + cr)))) for p in ps}
            out[i] = dict(m._memo)
    return out  # type: ignore[return-value]


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


def bayes_suspicion(voter: str, targets: Sequence[str], rng: Rng, *,
                    model: BayesSuspicion, **_: Any) -> str:
    """Policy-shaped wrapper around ``BayesSuspicion.vote``."""
    return model.vote(targets, rng)


def traitor_bloc_vote(
    voter: str,
    targets: Sequence[str],
    rng: Rng,
    *,
    traitors: Iterable[str],
    memo: MutableMapping[Hashable, str] | None = None,
    key: Hashable = "bloc",
    suspicion: Mapping[str, float] | None = None,
    rule: str = "random",
) -> str:
    """Every traitor votes the same faithful target.

    The first traitor to vote picks the target and stores it in ``memo`` under ``key``
    (e.g. ("banish", round)); the rest reuse it, so the bloc agrees without relying on
    identical rng states. ``rule``: "random" (uniform over faithful targets with the
    team's rng), "min_suspicion" or "max_suspicion" over the public ``suspicion`` map
    (ties broken by the rng). Falls back to any valid target if no faithful is left.
    """
    team = set(traitors)
    candidates = sorted(t for t in targets if t not in team) or sorted(targets)
    if memo is not None and memo.get(key) in candidates:
        return memo[key]
    if rule == "random" or not suspicion:
        choice = _pick(rng, candidates)
    elif rule in ("min_suspicion", "max_suspicion"):
        sign = -1.0 if rule == "min_suspicion" else 1.0
        choice = _argmax_random({c: sign * float(suspicion.get(c, 0.0)) for c in candidates},
                                candidates, rng)
    else:
        raise ValueError(f"unknown bloc rule {rule!r}")
    if memo is not None:
        memo[key] = choice
    return choice


def murder_choice(voter: str, targets: Sequence[str], rng: Rng, *,
                  memo: MutableMapping[Hashable, str] | None = None,
                  key: Hashable = "murder", **_: Any) -> str:
    """Night vote: a uniformly random alive faithful (``targets``), shared via ``memo``."""
    cands = list(targets)
    if memo is not None and memo.get(key) in cands:
        return memo[key]
    choice = _pick(rng, cands)
    if memo is not None:
        memo[key] = choice
    return choice
