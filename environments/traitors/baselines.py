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
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from fractions import Fraction
from functools import lru_cache
from operator import attrgetter
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


@lru_cache(maxsize=256)  # every game's outcome asks; a 1,000-player table walks ~45k cached states
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


KEY_COUNT_MAX = 8_000_000  # (row, count) keys counted with bincount up to this many, sorted above (solve)
SHIFT_STEPS = 100  # at most this many Newton or bisection steps per row (_shifts)
SCRATCH_ENTRIES = 4_000_000  # tables up to this many entries (2,000 players) keep their scratch arrays


class _Scratch(threading.local):
    """Scratch arrays of one table shape, shared by the tables of a thread (one game's table after
    another's: the next game writes to memory already mapped, and a finished game holds none).

    Every array but ``lazy_keys`` lives within one call. ``lazy_keys`` holds the keys of the last
    whole-table solve (``SuspicionTable.lazy``) until another table needs it: the previous owner's
    pending beliefs are written out first.
    """

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None
        self.bufs: dict[tuple[str, np.dtype], np.ndarray] = {}
        self.owner: Any = None  # weakref to the table whose ``lazy`` reads ``lazy_keys``

    def get(self, table: "SuspicionTable", name: str, dtype: Any) -> np.ndarray:
        shape = table.tracked.shape
        if shape != self.shape:
            self.release()
            self.shape, self.bufs = shape, {}
        if name == "lazy_keys":
            self.release(keep=table)
            self.owner = weakref.ref(table)
        key = (name, np.dtype(dtype))
        buf = self.bufs.get(key)
        if buf is None:
            buf = self.bufs[key] = np.empty(shape, dtype=dtype)
        return buf

    def release(self, keep: Any = None) -> None:
        """The owner of ``lazy_keys`` (unless ``keep``) writes its pending beliefs and lets it go."""
        owner = self.owner() if self.owner is not None else None
        if owner is not None and owner is not keep:
            owner.write_pending()
            owner.lazy = None
        self.owner = None


_SCRATCH = _Scratch()


class SuspicionTable:
    """The Bayes observers of one table as arrays: row ``i`` is observer ``observers[i]``, column ``j``
    the player ``pids[j]`` (ids in sorted order: the order tells are drawn in).

    Each observer keeps, per player it still tracks, the count of tells seen (``k``) and not seen
    (``m``); its log-odds are ``(prior + k * log(q_hi/q_lo)) + m * log((1-q_hi)/(1-q_lo))``, computed
    the same way whether one observer or a whole table asks (``BayesSuspicion`` is one row).
    """

    def __init__(self, players: Iterable[str], n_traitors: int, q_hi: float = 0.6, q_lo: float = 0.4,
                 observers: Iterable[str] | None = None) -> None:
        if not (0 < q_lo < 1 and 0 < q_hi < 1):
            raise ValueError("tell probabilities must lie in (0, 1)")
        players = list(players)
        obs = players if observers is None else list(observers)
        self.pids = sorted(set(players))
        self.pos = {p: j for j, p in enumerate(self.pids)}
        self.row = {me: i for i, me in enumerate(obs)}
        self.q_hi, self.q_lo = q_hi, q_lo
        self.yes = math.log(q_hi / q_lo)
        self.no = math.log((1 - q_hi) / (1 - q_lo))
        n, width = len(obs), len(self.pids)
        self.tracked = np.ones((n, width), dtype=bool)
        for i, me in enumerate(obs):
            if me in self.pos:
                self.tracked[i, self.pos[me]] = False
        n_others = self.tracked.sum(axis=1).tolist()
        logit = {k: _logit(n_traitors / k if k else 0.0) for k in set(n_others)}
        self.prior = np.array([logit[k] for k in n_others])
        # tells seen (k) and not seen (m), in the narrowest type that holds the rounds observed so far
        # (``count``: a whole-table pass each round moves a fourth of the bytes of int32)
        self.k = np.zeros((n, width), dtype=np.uint8)
        self.m = np.zeros((n, width), dtype=np.uint8)
        self.rounds = np.zeros(n, dtype=np.int64)  # observations of each row so far
        self.t_left = np.full(n, n_traitors, dtype=np.int64)
        # rows whose tracked entries have all seen the same number of tells (``n_obs``): k + m = n_obs, so
        # an entry's (k, m) is its k (a round's tells cover every tracked player; an elimination keeps it)
        self.uniform = np.ones(n, dtype=bool)
        self.n_obs = np.zeros(n, dtype=np.int64)
        # beliefs, once solved: P(traitor) per tracked entry (nan elsewhere), valid where ``solved``
        self._b_array: np.ndarray | None = None  # ``_b``, made when first written
        self.solved = np.zeros(n, dtype=bool)
        # a whole-table solve leaves each row's beliefs as (keys, per-key beliefs), written into ``b`` when
        # read: ``lazy`` is (keys, beliefs by key, entries by key, keys per row), ``pending`` its unwritten rows
        self.lazy: tuple[np.ndarray, np.ndarray, np.ndarray, int] | None = None
        self.pending = np.zeros(n, dtype=bool)
        self.memo: list[dict[str, float] | None] = [None] * n  # beliefs() dicts
        # rows a whole-table pass left to solve together when the first of them is read (``beliefs``)
        self.wanted = np.zeros(n, dtype=bool)

    def count(self, rows: Any) -> None:
        """Before ``rows`` (a row, an index array or all) observe one more round: widen ``k`` and ``m``
        when a count could pass their type's largest value."""
        self.rounds[rows] += 1
        top = int(np.max(self.rounds[rows], initial=0))
        if top > np.iinfo(self.k.dtype).max:
            wide = np.uint16 if top <= np.iinfo(np.uint16).max else np.int64
            self.k, self.m = self.k.astype(wide), self.m.astype(wide)

    def scratch(self, name: str, dtype: Any, rows: int | None = None) -> np.ndarray:
        """An uninitialised ``(rows, players)`` array (default: every row) for the length of a call.

        A whole-table pass each round on fresh 4-8 MB arrays pays their page faults every time (about
        as much as the pass itself); up to ``SCRATCH_ENTRIES`` entries the tables of a thread share
        one array per name (``_Scratch``) and hand out its first ``rows`` rows.
        """
        n, width = self.tracked.shape
        rows = n if rows is None else rows
        if n * width > SCRATCH_ENTRIES:
            return np.empty((rows, width), dtype=dtype)
        return _SCRATCH.get(self, name, dtype)[:rows]

    @property
    def _b(self) -> np.ndarray:
        """The beliefs' storage (a whole-table solve's rows may never need it: made when first asked for)."""
        if self._b_array is None:
            self._b_array = np.full(self.tracked.shape, np.nan)
        return self._b_array

    @property
    def b(self) -> np.ndarray:
        """Beliefs, once solved: P(traitor) per tracked entry (nan elsewhere), valid where ``solved``."""
        self.write_pending()
        return self._b

    def write_pending(self, rows: np.ndarray | None = None) -> None:
        """Write the beliefs of the ``pending`` rows (of ``rows``, default all) into ``b``."""
        if self.lazy is None:
            return
        keys, tab = self.lazy[0], self.lazy[1]
        if rows is None and self.pending.all():
            np.take(tab, keys, out=self._b, mode="clip")
            self.pending[:] = False
            return
        rs = np.flatnonzero(self.pending) if rows is None else np.asarray(rows)[self.pending[rows]]
        if len(rs):
            self._b[rs] = np.take(tab, keys[rs], mode="clip")
            self.pending[rs] = False

    def changed(self, rows: Any = slice(None)) -> None:
        """Log-odds or counts of ``rows`` (a row, an index array or all) changed: solved again when asked."""
        self.solved[rows] = False
        self.pending[rows] = False
        if isinstance(rows, int):
            self.memo[rows] = None
        elif isinstance(rows, slice):
            self.memo = [None] * len(self.memo)
        else:
            for i in np.asarray(rows).tolist():
                self.memo[i] = None

    def eliminate(self, pid: str, role: str | None = None, rows: Sequence[int] | None = None) -> None:
        """Observers ``rows`` (default: every one) drop a player who left the game; a revealed traitor
        lowers their count of traitors left. Rows that no longer track the player are left as they are."""
        j = self.pos.get(pid)
        if j is None:
            return
        rows = np.flatnonzero(self.tracked[:, j]) if rows is None else np.asarray(rows)[self.tracked[rows, j]]
        if not len(rows):
            return
        self.tracked[rows, j] = False
        self.k[rows, j] = 0  # counts are zero off the tracked entries (``top_by_count`` reads row maxima)
        self.m[rows, j] = 0
        if role == "traitor":
            self.t_left[rows] = np.maximum(self.t_left[rows] - 1, 0)
        self.changed(rows)

    def log_odds(self, rows: np.ndarray) -> np.ndarray:
        """Log-odds of every entry of ``rows`` (untracked entries too: mask with ``tracked``)."""
        return (self.prior[rows, None] + self.k[rows] * self.yes) + self.m[rows] * self.no

    def solve(self, rows: Sequence[int]) -> None:
        """Beliefs of ``rows`` (those not solved yet), all rows solved as one array.

        Per row: P(traitor) = sigmoid(log-odds + c), the common shift c found by a bracketed Newton
        search (``_shifts``) so the beliefs sum to the traitors left. The sum runs over the row's distinct log-odds (count x
        sigmoid, in (k, m) order, one column at a time), so a row's c does not depend on which
        other rows are solved with it: one observer alone gets the same floats as a whole table.
        """
        rows = np.unique(np.asarray([i for i in rows if not self.solved[i]], dtype=np.int64))
        if not len(rows):
            return
        n = len(self.tracked)
        n_all = None
        if 4 * len(rows) >= 3 * n and len(rows) < n:
            # most of the table: every row is solved (a row's beliefs depend on its own state only, so a
            # row solved already gets the same floats again), read in place rather than copied out
            n_all = np.count_nonzero(self.tracked, axis=1)
            if ((self.t_left > 0) & (self.t_left < n_all)).all():
                rows = np.arange(n)
        self.solved[rows] = True
        whole = len(rows) == n  # every row, in order
        tr = self.tracked if whole else self.tracked[rows]
        if n_all is None:
            n_tr = np.count_nonzero(tr, axis=1)
        else:
            n_tr = n_all if whole else n_all[rows]
        t_left = self.t_left[rows]
        search = (t_left > 0) & (t_left < n_tr)
        if not search.all():  # no search: everyone 0 (no traitor left) or 1 (only traitors left)
            fixed = ~search
            self._b[rows[fixed]] = np.where(tr[fixed], np.where(t_left[fixed] <= 0, 0.0, 1.0)[:, None], np.nan)
            if not search.any():
                return
        n_sub = int(search.sum())
        if n_sub == len(rows):
            sub, str_ = rows, tr
        else:
            whole, sub, str_ = False, rows[search], tr[search]
        even = bool(self.uniform[sub].all())  # (k, m) is k in every row
        if whole:
            ks, ms = self.k, self.m
        else:
            ks = np.take(self.k, sub, axis=0, out=self.scratch("k", self.k.dtype, n_sub), mode="clip")
            ms = None if even else np.take(self.m, sub, axis=0, out=self.scratch("m", self.m.dtype, n_sub),
                                           mode="clip")
        if even:  # codes k, in (k, m) order as m = n_obs - k, and one more for untracked entries
            mw, width = 1, int(ks.max()) + 2
            code = ks
        else:  # codes k * mw + m, and one more for untracked entries
            mw = int(ms.max()) + 1
            width = (int(ks.max()) + 1) * mw + 1
            code = np.multiply(ks, mw, out=self.scratch("code", np.intp, n_sub), dtype=np.intp)
            code += ms
        untracked = np.logical_not(str_, out=self.scratch("not", bool, n_sub))
        tab = None
        by_key = n_sub * width <= KEY_COUNT_MAX
        if by_key:  # counting beats sorting
            # (row, k, m) of every entry as one key, ordered by row, then k, then m
            kt = code.dtype if n_sub * width < np.iinfo(code.dtype).max else np.int64  # code's own type: no cast
            offset = np.arange(n_sub, dtype=kt) * width
            keys = np.add(code, offset[:, None], out=self.scratch("lazy_keys" if whole else "keys", kt, n_sub))
            np.copyto(keys, (offset + (width - 1))[:, None], where=untracked)
            cnt_all = np.bincount(keys.ravel(), minlength=n_sub * width)
            cnt_all[width - 1::width] = 0  # untracked
            uk = np.flatnonzero(cnt_all)
            counts = cnt_all[uk]
            tab = np.full(len(cnt_all), np.nan)  # a key's belief (untracked: nan), read by key
        else:
            kt = np.int32 if n_sub * width < 2**31 else np.int64
            keys = np.where(untracked, width - 1, code.astype(kt)) + (np.arange(n_sub, dtype=kt) * width)[:, None]
            uk, keys, counts = np.unique(np.where(str_, keys, -1).ravel(), return_inverse=True, return_counts=True)
            if uk[0] == -1:  # untracked entries: one past the last distinct key
                uk, counts, keys = uk[1:], counts[1:], keys - 1
                keys[keys < 0] = len(uk)
            keys = keys.reshape(str_.shape)
        ur, code = uk // width, uk % width
        if even:
            lo_u = (self.prior[sub][ur] + code * self.yes) + (self.n_obs[sub][ur] - code) * self.no
        else:
            lo_u = (self.prior[sub][ur] + (code // mw) * self.yes) + (code % mw) * self.no
        starts = np.searchsorted(ur, np.arange(n_sub))
        col = np.arange(len(uk)) - starts[ur]
        lov = np.zeros((n_sub, int(col.max()) + 1))
        cnt = np.zeros_like(lov)
        lov[ur, col] = lo_u
        cnt[ur, col] = counts
        c = _shifts(lov, cnt, self.t_left[sub].astype(float),
                    np.maximum.reduceat(lo_u, starts), np.minimum.reduceat(lo_u, starts))
        b_u = lo_u + c[ur]
        np.negative(b_u, out=b_u)
        np.exp(b_u, out=b_u)
        b_u += 1.0
        np.divide(1.0, b_u, out=b_u)  # 1 / (1 + exp(-(lo + c))), each key on its own
        if tab is None:
            tab = np.append(b_u, np.nan)  # by distinct key, then nan
        else:
            tab[uk] = b_u
        if whole and by_key:  # every row, by key: written into ``b`` when read
            self.lazy = (keys, tab, cnt_all, width)
            self.pending[:] = True
        else:
            self._b[sub] = np.take(tab, keys, out=self.scratch("b", float, n_sub), mode="clip")

    def top_by_count(self, rows: np.ndarray) -> np.ndarray | None:
        """Each row's most suspected entries without solving for beliefs, where counts alone settle them:
        a (rows, players) mask of the entries whose belief is within 1e-12 of the row's highest (the
        ties ``BayesSuspicion.vote`` draws among), or None where they may not.

        In a row whose entries all saw every round's tell (``uniform``) the log-odds are
        const + k x (yes - no), so with q_hi > q_lo beliefs rise with k: the top entries are those at
        the row's highest k, unless a lower k's belief comes within 1e-12 (both near 0 or 1). With
        the shift solved, sum(beliefs) = t_left puts the top log-odds y between logit(t_left / n)
        (the top holds the most) and that plus k_max x (yes - no) (the least holds the least), and
        sigmoid(y) - sigmoid(y - d) is smallest at an end of that range: above 1e-11 at both ends,
        no lower entry ties. If any row is not settled so (or has no search: every belief 0 or 1),
        None: the vote solves the rows' beliefs.
        """
        d = self.yes - self.no
        if not d > 0 or not self.uniform[rows].all():
            return None
        tr = self.tracked[rows]
        n_tr = np.count_nonzero(tr, axis=1)
        t = self.t_left[rows]
        if not ((t > 0) & (t < n_tr)).all():
            return None
        k = self.k[rows]
        k_max = k.max(axis=1)  # counts are zero off the tracked entries
        p = t / n_tr
        y_lo = np.log(p / (1.0 - p))
        y_hi = y_lo + k_max * d
        if not (_gap(y_lo, d) > 1e-11).all() or not (_gap(y_hi, d) > 1e-11).all():
            return None
        top = np.equal(k, k_max[:, None])
        top &= tr
        return top

    def beliefs(self, i: int) -> dict[str, float]:
        """Observer ``i``'s {pid: P(traitor)} over the players it tracks, in id order."""
        if self.memo[i] is None:
            if self.wanted[i] and not self.solved[i]:  # the rows a pass marked: solved as one array
                self.solve(np.flatnonzero(self.wanted))
                self.wanted[:] = False
            else:
                self.solve([i])
            self.write_pending(np.array([i]))
            idx = np.flatnonzero(self.tracked[i])
            self.memo[i] = dict(zip([self.pids[j] for j in idx.tolist()], self._b[i, idx].tolist()))
        return self.memo[i]


def _shifts(lov: np.ndarray, cnt: np.ndarray, t_left: np.ndarray, lo_max: np.ndarray, lo_min: np.ndarray
            ) -> np.ndarray:
    """Per row, the shift c with sum(cnt * sigmoid(lov + c)) = t_left: Newton's method inside a bracket.

    The total grows with c, so each step narrows the bracket [a, b] (from a = -50 - max log-odds,
    where the total is below any t_left >= 1, to b = 50 - min log-odds, where it is above any
    t_left below the count) and takes the Newton step when it lands inside, the midpoint when not.
    A row stops when a step moves c by at most 1e-13 x (1 + |c|), or after ``SHIFT_STEPS`` steps
    (6-10 steps where the bisection it replaced took about 60). A row's sums run left to right
    (``cumsum`` alone, ``add.reduce`` over the rows of the transposed matrix together), so a row
    gets the same c alone as in any matrix: zero-count padding at the end of a row adds nothing.
    """
    n = len(lov)
    a, b = -50.0 - lo_max, 50.0 - lo_min
    neg, cnt_t = np.ascontiguousarray(-lov.T), np.ascontiguousarray(cnt.T)
    # a start from the mean log-odds: the shift that would give every entry the mean belief
    tot = _row_sums(cnt_t)
    p = t_left / tot
    c = np.clip(np.log(p / (1.0 - p)) + _row_sums(cnt_t * neg) / tot, a, b)
    live = np.ones(n, dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(SHIFT_STEPS):
            e = np.exp(neg - c)  # exp(-(lov + c))
            d = e + 1.0
            s1 = cnt_t / d  # cnt * sigmoid
            f = _row_sums(s1) - t_left
            fp = _row_sums(s1 * (e / d))  # cnt * sigmoid * (1 - sigmoid)
            below = f < 0
            a = np.where(live & below, c, a)
            b = np.where(live & ~below, c, b)
            step = c - f / fp
            inside = (step > a) & (step < b)
            nxt = np.where(inside, step, (a + b) / 2)
            nxt = np.where(f == 0, c, nxt)
            done = np.abs(nxt - c) <= 1e-13 * (1.0 + np.abs(c))
            c = np.where(live, nxt, c)
            live &= ~done
            if not live.any():
                break
    return c


def _gap(y: np.ndarray, d: float) -> np.ndarray:
    """sigmoid(y) - sigmoid(y - d), in a form that keeps its digits when both are near 1."""
    return 1.0 / (1.0 + np.exp(y - d)) - 1.0 / (1.0 + np.exp(y))


def _row_sums(x_t: np.ndarray) -> np.ndarray:
    """Each column's sum of a C-ordered (entries, rows) array, added top to bottom: a sum over axis 0
    adds row after row into each column, and one column is a running sum (``add.reduce`` of a lone
    column would sum pairwise, in another order)."""
    if x_t.shape[1] == 1:
        return np.cumsum(x_t[:, 0])[-1:]
    return np.add.reduce(x_t, axis=0)


class BayesSuspicion:
    """A faithful who reads noisy private tells and updates log-odds by Bayes' rule.

    Each round it sees, for every other alive player, a binary tell with
    P(tell | traitor) = q_hi and P(tell | faithful) = q_lo. It is the ideal observer of
    that signal, so its beliefs are a calibrated reference for the belief metrics.
    One row of a ``SuspicionTable`` (``many`` gives a whole table's observers sharing one).
    """

    def __init__(self, me: str, players: Iterable[str], n_traitors: int,
                 q_hi: float = 0.6, q_lo: float = 0.4, *, table: SuspicionTable | None = None) -> None:
        self.me = me
        self.table = table if table is not None else SuspicionTable(players, n_traitors, q_hi, q_lo, [me])
        self.i = self.table.row[me]

    @classmethod
    def many(cls, players: Sequence[str], n_traitors: int, q_hi: float = 0.6, q_lo: float = 0.4
             ) -> dict[str, "BayesSuspicion"]:
        """One observer per player, all rows of one table (a phase's tells and beliefs as arrays)."""
        table = SuspicionTable(players, n_traitors, q_hi, q_lo)
        return {p: cls(p, (), n_traitors, table=table) for p in players}

    @property
    def q_hi(self) -> float:
        return self.table.q_hi

    @property
    def q_lo(self) -> float:
        return self.table.q_lo

    @property
    def t_left(self) -> int:
        return int(self.table.t_left[self.i])

    @property
    def log_odds(self) -> dict[str, float]:
        """{pid: log-odds} of the players it still tracks, in id order."""
        idx = np.flatnonzero(self.table.tracked[self.i])
        lo = self.table.log_odds(np.array([self.i]))[0]
        return dict(zip([self.table.pids[j] for j in idx.tolist()], lo[idx].tolist()))

    def observe(self, tells: Mapping[str, bool]) -> None:
        """Bayes update from one round of tells {pid: tell seen}."""
        t, i = self.table, self.i
        t.count(i)
        told = 0
        for pid, tell in tells.items():
            j = t.pos.get(pid)
            if j is not None and t.tracked[i, j]:
                (t.k if tell else t.m)[i, j] += 1
                told += 1
        if told == np.count_nonzero(t.tracked[i]):  # a tell on every tracked player
            t.n_obs[i] += 1
        else:
            t.uniform[i] = False
        t.changed(i)

    def draw_tells(self, roles: Mapping[str, str], rng: Rng) -> dict[str, bool]:
        """Sample this round's tells from the true roles (for scripted games): one uniform per
        tracked player in id order (``rng.random(n)`` is ``n`` calls of ``rng.random()``)."""
        t = self.table
        pids = [t.pids[j] for j in np.flatnonzero(t.tracked[self.i]).tolist()]
        if isinstance(rng, np.random.Generator):
            u = rng.random(len(pids)).tolist()
        else:
            u = [float(rng.random()) for _ in pids]
        return {p: x < (self.q_hi if roles.get(p) == "traitor" else self.q_lo) for p, x in zip(pids, u)}

    def eliminate(self, pid: str, role: str | None = None) -> None:
        """Drop a player who left the game; a revealed traitor lowers the count left."""
        self.table.eliminate(pid, role, rows=[self.i])

    def beliefs(self) -> dict[str, float]:
        """{pid: P(traitor)}, shifted in log-odds so the probabilities sum to t_left.

        A common log-odds shift keeps the ranking and every value inside (0, 1) while
        making the expected traitor count consistent with what the faithful know.
        """
        return dict(self.table.beliefs(self.i))

    def _beliefs(self) -> dict[str, float]:
        """``beliefs()`` solved afresh (tests: the memo holds the same values)."""
        self.table.changed(self.i)
        return self.beliefs()

    def vote(self, targets: Sequence[str], rng: Rng) -> str:
        """Banish vote: the valid target with the highest posterior."""
        b = self.table.beliefs(self.i)
        known = [t for t in targets if t in b]
        if not known:
            return random_vote(self.me, list(targets), rng)
        return _argmax_random(b, known, rng)


def beliefs_many(models: Sequence[BayesSuspicion]) -> list[dict[str, float]]:
    """``[m.beliefs() for m in models]``, each table's rows solved as one array (the same floats)."""
    by_table: dict[int, tuple[SuspicionTable, list[int]]] = {}
    for m in models:
        by_table.setdefault(id(m.table), (m.table, []))[1].append(m.i)
    for t, rows in by_table.values():
        t.solve(rows)
    return [m.beliefs() for m in models]


_TABLE, _ROW = attrgetter("table"), attrgetter("i")


def eliminate_all(models: Iterable[BayesSuspicion], pid: str, role: str | None = None) -> None:
    """``m.eliminate(pid, role)`` for each model; one array update when they are every row of one table
    (the same result: an observer's update reads and writes its own row only, and a repeat does nothing)."""
    models = list(models)
    if models:
        t = models[0].table
        tables = set(map(_TABLE, models))
        if len(tables) == 1 and len(set(map(_ROW, models))) == len(t.tracked):
            t.eliminate(pid, role)
            return
    for m in models:
        m.eliminate(pid, role)


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
