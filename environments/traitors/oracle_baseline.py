"""Exact faithful win probability when every faithful is an oracle tier of accuracy q.

Voting model (docs/compute-economics.md): each alive faithful votes, with probability q,
for a uniformly chosen alive traitor, otherwise for a uniformly chosen alive faithful other
than itself; the traitors vote as a bloc for one uniformly chosen alive faithful; plurality,
ties broken uniformly; the night's murder takes a uniformly chosen alive faithful.

b(f, t, q) = P(the banished player is a traitor), exact by summing over the faithful's
votes (a distribution over vote-count vectors, built one voter at a time). Then

    W(f, t) = b * [t == 1 ? 1 : W(f - 1, t - 1)] + (1 - b) * W(f - 2, t),  W = 0 when t >= f,

which with b = t / (f + t) is the random-play recursion in ``baselines.p_faithful_win_random``.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def p_banish_traitor(f: int, t: int, q: float) -> float:
    """P(the plurality banishes a traitor) with f faithful (accuracy q) and a t-traitor bloc."""
    if t == 0:
        return 0.0
    if f <= 0:
        return 1.0
    # candidates 0..f-1 are faithful, f..f+t-1 traitors; by symmetry the bloc votes for faithful 0
    n = f + t
    dist: dict[tuple[int, ...], float] = {tuple([0] * n): 1.0}
    for voter in range(f):
        others = [c for c in range(f) if c != voter]
        moves: list[tuple[int, float]] = [(c, q / t) for c in range(f, n)]
        if others:
            moves += [(c, (1 - q) / len(others)) for c in others]
        else:  # a lone faithful has no wrong answer: the oracle gives a right one
            moves = [(c, 1.0 / t) for c in range(f, n)]
        nxt: dict[tuple[int, ...], float] = {}
        for counts, p in dist.items():
            for c, pc in moves:
                if pc == 0.0:
                    continue
                k = counts[:c] + (counts[c] + 1,) + counts[c + 1:]
                nxt[k] = nxt.get(k, 0.0) + p * pc
        dist = nxt
    total = 0.0
    for counts, p in dist.items():
        votes = list(counts)
        votes[0] += t  # the bloc
        top = max(votes)
        leaders = [c for c, v in enumerate(votes) if v == top]
        total += p * sum(c >= f for c in leaders) / len(leaders)
    return total


def win_probability(f: int, t: int, b) -> float:
    """W(f, t) for any banishment law ``b(f, t)`` = P(the banished player is a traitor)."""
    memo: dict[tuple[int, int], float] = {}

    def w(f: int, t: int) -> float:
        if t == 0:
            return 1.0
        if t >= f:
            return 0.0
        if (f, t) not in memo:
            bt = b(f, t)
            memo[f, t] = bt * (1.0 if t == 1 else w(f - 1, t - 1)) + (1 - bt) * w(f - 2, t)
        return memo[f, t]

    return w(f, t)


def p_faithful_win_oracle(n_players: int, n_traitors: int, q: float) -> float:
    """Exact P(faithful win) for N players, T traitors voting as a bloc, faithful of accuracy q."""
    if n_traitors < 1 or n_players < 2 * n_traitors + 1:
        raise ValueError(f"bad game size N={n_players}, T={n_traitors}")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"accuracy q={q}: must lie in [0, 1]")
    return win_probability(n_players - n_traitors, n_traitors, lambda f, t: p_banish_traitor(f, t, float(q)))
