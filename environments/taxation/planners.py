"""Pure planner functions: fixed schedules, the Saez baseline step, and brute-force grid search.

A planner maps the observed history -- a sequence of (incomes, marginal_rates) per past
period, oldest first -- to the next schedule. Stateful pieces (the Saez elasticity EMA) are
passed in and handed back, so every step is a pure function.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from environments.taxation.metrics import SWF, resolve_swf
from environments.taxation.saez import (
    INITIAL_ELASTICITY,
    Weights,
    estimate_elasticity,
    saez_bracket_schedule,
    update_elasticity,
)
from environments.taxation.schedule import TaxSchedule, bracket_tax_many
from environments.taxation.utility import QuasiLinearUtility, UtilityParams, best_response_hours_many, utility

History = Sequence[tuple[np.ndarray, np.ndarray]]
Planner = Callable[[History], TaxSchedule]


def fixed_planner(schedule: TaxSchedule) -> Planner:
    """A planner that ignores history (US federal, free market, flat baselines)."""

    def plan(history: History) -> TaxSchedule:
        return schedule

    return plan


# ----- Saez ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SaezStep:
    schedule: TaxSchedule
    elasticity: float  # running estimate to pass to the next step
    warming_up: bool  # True while the buffer is short and rates were drawn at random


def saez_planner_step(
    history: History,
    cutoffs: Sequence[float],
    elasticity: float = INITIAL_ELASTICITY,
    *,
    rng: np.random.Generator | None = None,
    buffer_size: int = 500,
    min_samples: int | None = None,
    weights: Weights = "inverse_income",
    n_bins: int = 100,
    top_cutoff: float | None = None,
    rate_min: float = 0.0,
    rate_max: float = 1.0,
    ema_decay: float = 0.98,
    fixed_elasticity: float | None = None,
) -> SaezStep:
    """One AI Economist Saez update from the last ``buffer_size`` observed (z, tau) samples.

    Until the buffer holds ``min_samples`` (default: a full buffer) the rates are drawn
    uniformly from [rate_min, rate_max] with ``rng`` -- the random rates are what give the
    elasticity regression variation in tau. Afterwards: EMA-update the elasticity (or use
    ``fixed_elasticity``), compute binned Saez rates on the buffer's incomes, and bracket them.
    """
    cut = tuple(float(c) for c in cutoffs)
    pairs = [(np.ravel(z), np.ravel(t)) for z, t in history]
    z_all = np.concatenate([p[0] for p in pairs]) if pairs else np.zeros(0)
    tau_all = np.concatenate([p[1] for p in pairs]) if pairs else np.zeros(0)
    if z_all.shape != tau_all.shape:
        raise ValueError("each history entry needs as many marginal rates as incomes")
    z_buf, tau_buf = z_all[-buffer_size:], tau_all[-buffer_size:]
    needed = buffer_size if min_samples is None else min_samples
    if z_buf.size < max(needed, 1):
        if rng is None:
            raise ValueError("saez_planner_step needs rng to draw random rates while warming up")
        random_rates = rng.uniform(rate_min, rate_max, size=len(cut))
        return SaezStep(TaxSchedule(cut, tuple(random_rates.tolist())), float(elasticity), True)
    if fixed_elasticity is not None:
        e = float(fixed_elasticity)
    else:
        e = update_elasticity(elasticity, estimate_elasticity(z_buf, tau_buf), ema_decay)
    schedule = saez_bracket_schedule(z_buf, e, cut, weights, n_bins, top_cutoff, rate_min, rate_max)
    return SaezStep(schedule, e, False)


# ----- brute-force grid search ------------------------------------------------------------


@dataclass(frozen=True)
class Outcomes:
    """Equilibrium outcomes for m schedules x n workers."""

    hours: np.ndarray  # (m, n)
    pre_tax_income: np.ndarray  # (m, n)
    tax_paid: np.ndarray  # (m, n)
    lump_sum: np.ndarray  # (m,)
    post_tax_income: np.ndarray  # (m, n)
    utility: np.ndarray  # (m, n)


def equilibrium_outcomes(
    skills: np.ndarray,
    cutoffs: Sequence[float],
    rates: np.ndarray,
    utility_params: UtilityParams,
    hours_cap: float = 100.0,
    hours_options: Sequence[float] | None = None,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> Outcomes:
    """Rational workers' responses to each schedule, with revenue rebated as a lump sum.

    Quasi-linear workers ignore the lump sum, so one pass is exact. Isoelastic workers work
    less when the rebate R is larger, so R solves R = revenue(R); see ``_solve_rebate``. The
    returned lump sum always balances the budget of the returned hours. Tax never exceeds
    income here (rates <= 1 and coin = this period's income), so no coin cap binds.
    """
    s = np.asarray(skills, dtype=float)
    r = np.atleast_2d(np.asarray(rates, dtype=float))
    if np.any((r < 0) | (r > 1)):
        raise ValueError("rates must lie in [0, 1]")

    def respond(rows: np.ndarray, lump: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        h = best_response_hours_many(s, cutoffs, r[rows], utility_params, hours_cap, lump, hours_options)
        z = s[None, :] * h
        return h, z, bracket_tax_many(z, cutoffs, r[rows])

    every = np.arange(r.shape[0])
    lump = np.zeros(r.shape[0])
    if not isinstance(utility_params, QuasiLinearUtility):
        lump = _solve_rebate(lambda rows, x: respond(rows, x)[2].mean(axis=1), r.shape[0], max_iter, tol)
    h, z, tax = respond(every, lump)
    lump = tax.mean(axis=1)
    post = z - tax + lump[:, None]
    return Outcomes(h, z, tax, lump, post, np.asarray(utility(utility_params, post, h)))


def _solve_rebate(
    revenue_at: Callable[[np.ndarray, np.ndarray], np.ndarray], m: int, max_iter: int, tol: float
) -> np.ndarray:
    """Root of g(R) = revenue(R) - R for each of m schedules, by vectorised Illinois regula falsi.

    Revenue falls as the rebate rises (leisure is normal), so g decreases and [0, revenue(0)]
    brackets the root. Plain iteration R <- revenue(R) diverges once the slope passes -1
    (rates above ~50%), hence a bracketing solver. Where the best response jumps (non-convex
    schedules) g may jump over 0; the bracket then shrinks onto the jump.
    """
    every = np.arange(m)
    a = np.zeros(m)
    fa = revenue_at(every, a) - a  # >= 0
    b = fa.copy()
    fb = np.zeros(m)
    todo = np.flatnonzero(fa > tol)
    if todo.size:
        fb[todo] = revenue_at(todo, b[todo]) - b[todo]  # <= 0
    root = np.where(fa <= tol, a, b)
    active = (fa > tol) & (fb < -tol)
    last_side = np.zeros(m, dtype=int)  # +1: a moved last, -1: b moved last
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        c = b[idx] - fb[idx] * (b[idx] - a[idx]) / (fb[idx] - fa[idx])
        fc = revenue_at(idx, c) - c
        root[idx] = c
        move_a = fc > 0
        # Illinois: halve the stale end's value when the same end moves twice running.
        fb[idx] = np.where(move_a & (last_side[idx] == 1), 0.5 * fb[idx], fb[idx])
        fa[idx] = np.where(~move_a & (last_side[idx] == -1), 0.5 * fa[idx], fa[idx])
        a[idx] = np.where(move_a, c, a[idx])
        fa[idx] = np.where(move_a, fc, fa[idx])
        b[idx] = np.where(move_a, b[idx], c)
        fb[idx] = np.where(move_a, fb[idx], fc)
        last_side[idx] = np.where(move_a, 1, -1)
        done = (np.abs(fc) <= tol) | (b[idx] - a[idx] <= tol * (1.0 + np.abs(c)))
        active[idx[done]] = False
    return root


@dataclass(frozen=True)
class GridSearchResult:
    schedule: TaxSchedule
    welfare: float
    hours: np.ndarray  # workers' hours under the best schedule
    lump_sum: float
    rates: np.ndarray  # (m, B) every schedule tried, in itertools.product order
    welfare_all: np.ndarray  # (m,) welfare of each


def grid_search(
    skills: np.ndarray,
    cutoffs: Sequence[float],
    rate_grid: Sequence[float],
    swf: str | SWF,
    utility_params: UtilityParams,
    hours_cap: float = 100.0,
    hours_options: Sequence[float] | None = None,
    chunk_size: int = 2048,
) -> GridSearchResult:
    """Best schedule over every combination of ``rate_grid`` per bracket, by brute force.

    ``swf`` is a name from ``metrics.SWF_BY_NAME`` or f(utility, pre_tax, post_tax) along
    the last axis. Cost grows as len(rate_grid) ** n_brackets; schedules are scored in
    chunks to bound memory. Ties go to the first schedule in product order.
    """
    score = resolve_swf(swf)
    cut = tuple(float(c) for c in cutoffs)
    all_rates = np.asarray(list(itertools.product([float(x) for x in rate_grid], repeat=len(cut))))
    welfare = np.empty(all_rates.shape[0])
    for start in range(0, all_rates.shape[0], chunk_size):
        chunk = all_rates[start : start + chunk_size]
        out = equilibrium_outcomes(skills, cut, chunk, utility_params, hours_cap, hours_options)
        welfare[start : start + chunk.shape[0]] = score(out.utility, out.pre_tax_income, out.post_tax_income)
    best = int(np.nanargmax(welfare))
    best_out = equilibrium_outcomes(skills, cut, all_rates[best : best + 1], utility_params, hours_cap, hours_options)
    return GridSearchResult(
        schedule=TaxSchedule(cut, tuple(all_rates[best].tolist())),
        welfare=float(welfare[best]),
        hours=best_out.hours[0],
        lump_sum=float(best_out.lump_sum[0]),
        rates=all_rates,
        welfare_all=welfare,
    )
