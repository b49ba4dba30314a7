"""The Traitors' scripted decisions for a whole phase at once (the batch path of sim/batch.py).

Each function returns exactly what the per-agent fallbacks in env.py return for the
same state, drawing from each agent's own named stream (``Streams.named`` is
``rng_for(...)`` for every agent at once): the morning tells, the secret banishment
vote under every shipped policy (random, majority, bayes; traitors random or bloc),
and the traitors' shared night target. tests/environments/traitors/test_batch.py
holds the batch and per-agent paths to identical events, ledgers and outcomes.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from environments.traitors.baselines import beliefs_many
from sim.batch import Decided
from sim.streams import Streams, random_runs

if TYPE_CHECKING:
    from environments.traitors.env import TraitorPlayer, TraitorsEnv


def tells_read(cfg) -> bool:
    """Whether any answer can read the tells: a faithful's scripted speech (``discussion_passes``),
    belief form (``belief_probe``) or vote under ``majority`` or ``bayes`` (also a model's fallback).

    Traitors' scripted answers never read them, and nothing else does, so with none of these the
    morning's tells change no event, ledger row or outcome and are not drawn.
    """
    return bool(cfg.discussion_passes or cfg.belief_probe or cfg.faithful_policy != "random")


def observe_tells(env: "TraitorsEnv") -> None:
    """Every alive player's private tells for this morning, drawn and applied at once.

    Per player: one uniform per other player it still tracks, in sorted id order, from
    ``rng_for("tells", tick, pid)`` (``BayesSuspicion.draw_tells``), then a Bayes update.
    """
    alive = env.alive()
    if not alive:
        return
    models = [env.suspicion[a.aid] for a in alive]
    t = models[0].table
    if any(m.table is not t for m in models):  # observers not on one table: one at a time
        roles = env.roles()
        for a, m in zip(alive, models):
            m.observe(m.draw_tells(roles, env.rng_for("tells", env.tick, a.aid)))
        return
    rows = np.array([m.i for m in models], dtype=np.int64)
    traitor = {a.aid for a in env.players() if a.role == "traitor"}
    q = np.where(np.array([p in traitor for p in t.pids], dtype=bool), t.q_hi, t.q_lo)
    tracked = t.tracked[rows]
    # row r's run fills its tracked columns in id order (a boolean mask assigns row by row)
    u = random_runs(env.root_seed, ("tells", env.tick), [a.aid for a in alive], tracked.sum(axis=1))
    seen = np.zeros(tracked.shape, dtype=bool)
    seen[tracked] = u < np.broadcast_to(q, tracked.shape)[tracked]
    t.k[rows] += seen
    t.m[rows] += tracked ^ seen  # tracked and not seen
    t.changed(rows)
    t.solve([m.i for a, m in zip(alive, models) if a.role != "traitor"])  # the faithful's beliefs at once


def banish_votes(env: "TraitorsEnv", voters: Sequence["TraitorPlayer"], alive_ids: Sequence[str],
                 bloc: str | None) -> list[Decided]:
    """Each voter's secret banishment vote under the configured scripted policies.

    Traitors on ``bloc`` vote the team's seeded target; ``random`` voters draw uniformly
    over the others; ``majority`` and ``bayes`` voters (nothing seen yet in a secret vote)
    take the most suspected, ties (within 1e-12) broken by their stream among the tied
    targets in seat order: ``BayesSuspicion.vote``, for a table's observers as one array.
    """
    cfg = env.cfg
    n = len(voters)
    out: list[str | None] = [None] * n
    pick: list[Sequence[str] | None] = [None] * n  # choose uniformly among these with the voter's stream
    smart: list[int] = []
    seat = {x: j for j, x in enumerate(alive_ids)}
    for i, a in enumerate(voters):
        if a.role == "traitor" and bloc and cfg.traitor_policy == "bloc" and bloc != a.aid and bloc in alive_ids:
            out[i] = bloc
        elif a.role == "traitor" or cfg.faithful_policy == "random":
            pick[i] = _Others(alive_ids, seat.get(a.aid))
        else:
            smart.append(i)
    if smart:
        _most_suspected(env, voters, alive_ids, seat, smart, out, pick)
    mask = np.array([p is not None for p in pick])
    if mask.any():
        st = Streams.named(env.root_seed, ("vote", "banish", env.tick), [a.aid for a in voters])
        ks = st.integers(np.array([len(p) for p in pick if p is not None]), m=mask)
        for i, k in zip(np.flatnonzero(mask).tolist(), ks.tolist()):
            out[i] = pick[i][k]
    return [Decided(target=t) for t in out]


class _Others(Sequence):
    """``[x for x in alive_ids if x != me]`` without building it (a 1,000-player table: 1M items a vote)."""

    def __init__(self, alive_ids: Sequence[str], me: int | None):
        self.ids, self.me = alive_ids, me

    def __len__(self) -> int:
        return len(self.ids) - (self.me is not None)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(len(self)))]
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.ids[k + 1 if self.me is not None and k >= self.me else k]


class _Tied(Sequence):
    """The tied targets of one voter, in seat order, without listing them: ``len`` and ``[k]``."""

    def __init__(self, ids: np.ndarray, row: np.ndarray, n: int):
        self.ids, self.row, self.n = ids, row, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[j] for j in range(*k.indices(self.n))]
        if not 0 <= k < self.n:
            raise IndexError(k)
        return str(self.ids[np.flatnonzero(self.row)[k]])


def _most_suspected(env, voters, alive_ids, seat_of, smart, out, pick) -> None:
    """``BayesSuspicion.vote`` over the others for the ``smart`` voters (in place: ``out``/``pick``)."""
    models = [env.suspicion[voters[i].aid] for i in smart]
    t = models[0].table
    if any(m.table is not t for m in models):  # observers not on one table: one at a time
        for i, b in zip(smart, beliefs_many(models)):
            targets = [x for x in alive_ids if x != voters[i].aid]
            known = [x for x in targets if x in b]
            if not known:
                pick[i] = targets
                continue
            best = max(b[x] for x in known)
            top = [x for x in known if math.isclose(b[x], best, rel_tol=0, abs_tol=1e-12)]
            if len(top) == 1:
                out[i] = top[0]
            else:
                pick[i] = top
        return
    rows = np.array([m.i for m in models], dtype=np.int64)
    t.solve(rows.tolist())
    seat = np.array([t.pos[x] for x in alive_ids], dtype=np.int64)  # the targets' columns, in seat order
    ids = np.array(list(alive_ids), dtype=object)
    me = np.array([t.pos.get(voters[i].aid, -1) for i in smart], dtype=np.int64)
    known = t.tracked[rows][:, seat] & (seat[None, :] != me[:, None])
    b = np.where(known, t.b[rows][:, seat], -np.inf)
    best = b.max(axis=1)
    with np.errstate(invalid="ignore"):  # a row with no known target: -inf - -inf
        top = known & (np.abs(b - best[:, None]) <= 1e-12)  # math.isclose(x, best, rel_tol=0, abs_tol=1e-12)
    n_top = top.sum(axis=1)
    for r, i in enumerate(smart):
        if n_top[r] == 1:
            out[i] = str(ids[np.argmax(top[r])])
        elif n_top[r] > 1:
            pick[i] = _Tied(ids, top[r], int(n_top[r]))
        else:  # no known target: uniform over the others
            pick[i] = _Others(alive_ids, seat_of.get(voters[i].aid))
