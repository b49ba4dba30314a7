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
from itertools import repeat
from typing import TYPE_CHECKING, Sequence

import numpy as np

from environments.traitors.baselines import beliefs_many
from sim.batch import Decided, decide_bulk
from sim.events import quote
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
    traitors = {a.aid for a in env.players() if a.role == "traitor"}
    traitor = np.array([p in traitors for p in t.pids], dtype=bool)
    n, width = t.tracked.shape
    t.count(rows)
    if len(rows) > 1 and not (rows[1:] > rows[:-1]).all():  # observers out of table order: rows copied out
        tracked = t.tracked[rows]
        u = random_runs(env.root_seed, ("tells", env.tick), [a.aid for a in alive], tracked.sum(axis=1))
        q = np.where(traitor, t.q_hi, t.q_lo)
        seen = np.zeros(tracked.shape, dtype=bool)
        seen[tracked] = u < np.broadcast_to(q, tracked.shape)[tracked]
        t.k[rows] += seen
        t.m[rows] += tracked ^ seen  # tracked and not seen
    else:
        # the observers' rows in table order: row r's run fills its tracked columns in id order (a boolean
        # mask assigns row by row), and rows of players who are gone stay as they are (no tell)
        tracked = t.tracked
        if len(rows) < n:
            tracked = np.logical_and(t.tracked, _row_mask(n, rows)[:, None], out=t.scratch("tells", bool))
        counts = np.count_nonzero(tracked, axis=1)[rows]
        u = random_runs(env.root_seed, ("tells", env.tick), [a.aid for a in alive], counts,
                        out=t.scratch("u", float).reshape(-1))
        # u < q of the entry's column (q_hi on a traitor's column, q_lo on the others'): the draws laid
        # out on the table and compared column-wise, then kept on the tracked entries (the others hold
        # whatever the scratch array held: compared, never kept)
        grid = t.scratch("grid", float)
        grid[tracked] = u
        seen = t.scratch("seen", bool)
        with np.errstate(invalid="ignore"):
            np.less(grid, np.where(traitor, t.q_hi, t.q_lo), out=seen)
        seen &= tracked
        t.k += seen
        t.m += np.logical_xor(tracked, seen, out=seen)  # tracked and not seen
    t.n_obs[rows] += 1  # a tell on every tracked player of these rows
    t.changed(rows)
    # the faithful's beliefs are solved as one array when the first is read (a vote settled by the
    # counts alone never reads them: ``SuspicionTable.top_by_count``)
    t.wanted[[m.i for a, m in zip(alive, models) if a.role != "traitor"]] = True


def _row_mask(n: int, rows: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[rows] = True
    return m


def banish_votes(env: "TraitorsEnv", voters: Sequence["TraitorPlayer"], alive_ids: Sequence[str],
                 bloc: str | None) -> list[Decided]:
    """Each voter's secret banishment vote under the configured scripted policies (``banish_targets``)."""
    return [Decided(target=t) for t in banish_targets(env, voters, alive_ids, bloc)]


def banish_targets(env: "TraitorsEnv", voters: Sequence["TraitorPlayer"], alive_ids: Sequence[str],
                   bloc: str | None) -> list[str]:
    """Each voter's secret banishment target under the configured scripted policies.

    Traitors on ``bloc`` vote the team's seeded target; ``random`` voters draw uniformly
    over the others; ``majority`` and ``bayes`` voters (nothing seen yet in a secret vote)
    take the most suspected, ties (within 1e-12) broken by their stream among the tied
    targets in seat order: ``BayesSuspicion.vote``, for a table's observers as one array.
    A uniform draw over the others is ``k`` from ``integers(len(others))``, the seat ``k``
    of the alive list skipping the voter's own (no list of the others is built).
    """
    cfg = env.cfg
    n = len(voters)
    out: list[str | None] = [None] * n
    pick: dict[int, Sequence[str]] = {}  # voter -> tied targets to choose among with the voter's stream
    tied: list[tuple[list[int], np.ndarray, np.ndarray, np.ndarray]] = []  # (voters, seats, first, how many)
    seat = {x: j for j, x in enumerate(alive_ids)}
    n_alive = len(alive_ids)
    others: list[int] = []  # voters drawing uniformly over the others
    smart: list[int] = []
    bloc_on = bool(bloc) and cfg.traitor_policy == "bloc" and bloc in seat
    faithful_random = cfg.faithful_policy == "random"
    for i, a in enumerate(voters):
        if a.role == "traitor":
            if bloc_on and bloc != a.aid:
                out[i] = bloc
            else:
                others.append(i)
        elif faithful_random:
            others.append(i)
        else:
            smart.append(i)
    if smart:
        _most_suspected(env, voters, alive_ids, smart, out, pick, others, tied)
    # each drawing voter's range: the others (its own seat left out), or its tied targets
    size = {i: n_alive - (voters[i].aid in seat) for i in others}
    size.update((i, len(p)) for i, p in pick.items())
    for who, _, _, counts in tied:
        size.update(zip(who, counts.tolist()))
    if not size:
        return out
    draw = sorted(size)  # stream order: the voters' order
    mask = np.zeros(n, dtype=bool)
    mask[draw] = True
    st = Streams.named(env.root_seed, ("vote", "banish", env.tick), [a.aid for a in voters])
    k_of = dict(zip(draw, st.integers(np.array([size[i] for i in draw], dtype=np.int64), m=mask).tolist()))
    ids = list(alive_ids)
    for i in others:  # seat k, or k + 1 from the voter's own seat on
        k = k_of[i]
        me = seat.get(voters[i].aid, n_alive)
        out[i] = ids[k + (k >= me)]
    for i, p in pick.items():
        out[i] = p[k_of[i]]
    for who, seats, first, _ in tied:  # the k-th of each voter's tied seats (its run of ``seats`` from ``first``)
        for i, j in zip(who, seats[first + np.array([k_of[i] for i in who], dtype=np.int64)].tolist()):
            out[i] = ids[j]
    return out


def banish_bulk(env: "TraitorsEnv", voters: Sequence["TraitorPlayer"], alive_ids: Sequence[str],
                bloc: str | None) -> list[str] | None:
    """The secret banishment vote of ``voters`` when all are scripted on a direct endpoint, else None.

    Their targets (``banish_targets``) with the rows ``act_batch`` and the per-voter ``vote`` events
    write (``record_scripted``, ``vote_events``): no action object or result per voter.
    """
    targets = decide_bulk(env, voters, "vote", lambda: banish_targets(env, voters, alive_ids, bloc),
                          max_tokens=env.cfg.vote_tokens)
    if targets is not None:
        vote_events(env, voters, targets)
    return targets


def vote_events(env: "TraitorsEnv", voters: Sequence["TraitorPlayer"], targets: Sequence[str]) -> None:
    """The private ``vote`` event of each scripted banishment vote (``valid``), in voter order: the
    rows ``env.emit("vote", {...}, actor=aid, visibility=private(aid))`` writes, as payload text."""
    aids = [a.aid for a in voters]
    env.svc.events.extend_columns(
        env.tick, env.phase, aids, repeat("vote"),
        [f'{{"target":{quote(t)},"valid":true,"vote_kind":"banish","voter":{quote(a)}}}' for a, t in zip(aids, targets)],
        ["private:" + a for a in aids])


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


def _most_suspected(env, voters, alive_ids, smart, out, pick, others, tied) -> None:
    """``BayesSuspicion.vote`` over the others for the ``smart`` voters (in place: ``out``; ``pick`` or
    ``tied`` with the tied targets; ``others`` for a uniform draw over the others)."""
    models = [env.suspicion[voters[i].aid] for i in smart]
    t = models[0].table
    if any(m.table is not t for m in models):  # observers not on one table: one at a time
        for i, b in zip(smart, beliefs_many(models)):
            targets = [x for x in alive_ids if x != voters[i].aid]
            known = [x for x in targets if x in b]
            if not known:
                others.append(i)
                continue
            best = max(b[x] for x in known)
            top = [x for x in known if math.isclose(b[x], best, rel_tol=0, abs_tol=1e-12)]
            if len(top) == 1:
                out[i] = top[0]
            else:
                pick[i] = top
        return
    rows = np.array([m.i for m in models], dtype=np.int64)
    seat = np.array([t.pos[x] for x in alive_ids], dtype=np.int64)  # the targets' columns, in seat order
    me = np.array([t.pos.get(voters[i].aid, -1) for i in smart], dtype=np.int64)
    gone = np.ones(len(t.pids), dtype=bool)
    gone[seat] = False
    own = me >= 0
    usual = not t.tracked[np.ix_(rows, np.flatnonzero(gone))].any() and not t.tracked[rows[own], me[own]].any()
    by_count = t.top_by_count(rows) if usual else None
    if by_count is None:
        t.solve(rows)
    if usual:
        # every tracked entry of these rows is an alive other (the usual case): the known targets are the
        # tracked entries, whose beliefs are the solved ones (nan elsewhere), read in place in id order
        # |b - best| <= 1e-12 (math.isclose(b, best, rel_tol=0, abs_tol=1e-12)) as best - b <= 1e-12 (b <= best),
        # best the max over the row's beliefs (nan: untracked, left out; a row with none: nan, nothing top)
        if by_count is not None:  # the counts settle the top entries (no beliefs solved)
            top, at = by_count, np.arange(len(rows))
        elif t.lazy is not None and t.pending[rows].all():  # beliefs by key (a whole-table solve): per key
            keys, by_key, _, kw = t.lazy
            by_key = by_key.reshape(-1, kw)
            top_key = (np.fmax.reduce(by_key, axis=1)[:, None] - by_key) <= 1e-12
            top = np.take(top_key.reshape(-1), keys, out=t.scratch("vote_top", bool), mode="clip")
            at = rows
        else:
            if 2 * len(rows) >= len(t.b):
                b, at = t.b, rows  # the whole table (other rows' values are never read)
            else:
                b = np.take(t.b, rows, axis=0, out=t.scratch("vote_b", float, len(rows)), mode="clip")
                at = np.arange(len(rows))
            best = np.fmax.reduce(b, axis=1)
            diff = np.subtract(best[:, None], b, out=t.scratch("vote_d", float, len(b)))
            top = np.less_equal(diff, 1e-12, out=t.scratch("vote_top", bool, len(b)))
        # the top entries in seat order (columns of the alive, in seat order: no tracked entry is elsewhere)
        # (rows other than the voters' may be stale: only the voters' are read)
        into = t.scratch("vote_seat", bool).reshape(-1)[:len(top) * len(seat)].reshape(len(top), len(seat))
        top = np.take(top, seat, axis=1, out=into, mode="clip")
        n_row = np.count_nonzero(top, axis=1)
        flat = np.flatnonzero(top) % len(seat)  # every row's top seats, row by row, ascending
        first = (np.cumsum(n_row) - n_row)[at]  # each voter's first entry in ``flat``
        n_top = n_row[at]
        who = np.asarray(smart)
        one = n_top == 1
        for i, j in zip(who[one].tolist(), flat[first[one]].tolist()):
            out[i] = alive_ids[j]
        many = n_top > 1
        if many.any():  # tied: each voter's tied seats, a run of ``flat``, drawn among later
            tied.append((who[many].tolist(), flat, first[many], n_top[many]))
        others.extend(who[n_top == 0].tolist())  # no known target: uniform over the others
        return
    ids = np.array(list(alive_ids), dtype=object)
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
            others.append(i)
