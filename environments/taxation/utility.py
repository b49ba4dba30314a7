"""Worker utilities and (bounded-)rational labor choices under a bracket schedule.

Two utility families (economics.md §1-2):
- AI Economist isoelastic: u = (C^(1-eta) - 1)/(1-eta) - k*L, eta=0.23, k=0.21 (GTB);
  the eta -> 1 limit is log(C) (their code's eta=1 branch is buggy; this one is not).
- LLM Economist quasi-linear: u = z_after_tax - c*l^delta, c=0.0005, delta=3.5, whose
  implied labor elasticity is 1/(delta-1) = 0.4. The AI Economist one-step default
  ``coin_minus_labor_cost`` is the same form with c=1, delta=2.

Income is z = skill * hours and post-tax income is z - T(z) + lump_sum. Because T is
piecewise linear, utility is concave in hours inside each bracket, so the best response
is among: 0, the cap, the kinks (cut_b / skill) and each bracket's stationary point. The
candidate set is therefore exact; the scalar helper also scans a fine grid as a guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from environments.taxation.schedule import TaxSchedule, bracket_tax_many


@dataclass(frozen=True)
class IsoelasticUtility:
    """u = (C^(1-eta) - 1)/(1-eta) - labor_cost * L; eta == 1 means log(C)."""

    eta: float = 0.23
    labor_cost: float = 0.21

    def __post_init__(self) -> None:
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")
        if self.labor_cost < 0:
            raise ValueError(f"labor_cost must be >= 0, got {self.labor_cost}")


@dataclass(frozen=True)
class QuasiLinearUtility:
    """u = post_tax_income - c * hours^delta (no income effects: lump sums do not move labor)."""

    c: float = 0.0005
    delta: float = 3.5

    def __post_init__(self) -> None:
        if self.c <= 0:
            raise ValueError(f"c must be > 0, got {self.c}")
        if self.delta <= 1:
            raise ValueError(f"delta must be > 1 for an interior optimum, got {self.delta}")


UtilityParams = IsoelasticUtility | QuasiLinearUtility


# ----- utility functions ---------------------------------------------------------------


def isoelastic_utility(coin, labor, eta: float = 0.23, labor_cost: float = 0.21):
    """(C^(1-eta) - 1)/(1-eta) - k*L, with log(C) at eta == 1; C must be >= 0."""
    c = np.asarray(coin, dtype=float)
    if np.any(c < 0):
        raise ValueError("isoelastic utility needs non-negative coin")
    with np.errstate(divide="ignore"):
        # C = 0 gives -inf at eta >= 1, which is the true limit and loses every argmax.
        util_c = np.log(c) if eta == 1.0 else (np.power(c, 1.0 - eta) - 1.0) / (1.0 - eta)
    out = util_c - labor_cost * np.asarray(labor, dtype=float)
    return float(out) if out.ndim == 0 else out


def quasi_linear_utility(post_tax_income, hours, c: float = 0.0005, delta: float = 3.5):
    """z_after_tax - c * hours^delta (the LLM Economist's so-called "isoelastic" utility)."""
    out = np.asarray(post_tax_income, dtype=float) - c * np.power(np.asarray(hours, dtype=float), delta)
    return float(out) if out.ndim == 0 else out


def utility(params: UtilityParams, post_tax_income, hours):
    """Dispatch on the parameter type; ``post_tax_income`` is C for the isoelastic form."""
    if isinstance(params, IsoelasticUtility):
        return isoelastic_utility(post_tax_income, hours, params.eta, params.labor_cost)
    if isinstance(params, QuasiLinearUtility):
        return quasi_linear_utility(post_tax_income, hours, params.c, params.delta)
    raise TypeError(f"unknown utility parameters {params!r}")


def quasi_linear_labor(
    skill: float, rate: float, c: float = 0.0005, delta: float = 3.5, hours_cap: float = np.inf
) -> float:
    """Closed form under a flat marginal rate: l* = ((1-tau) v / (c delta))^(1/(delta-1)), capped."""
    base = max(0.0, (1.0 - rate) * skill / (c * delta))
    return float(min(hours_cap, base ** (1.0 / (delta - 1.0))))


# ----- best responses ------------------------------------------------------------------


def _stationary_hours(
    skills: np.ndarray, cutoffs: np.ndarray, rates: np.ndarray, params: UtilityParams, lump: np.ndarray
) -> np.ndarray:
    """Unconstrained optimum of each bracket's (concave) utility piece, shape (m, n, B)."""
    s = skills[None, :, None]
    keep = 1.0 - rates[:, None, :]  # (m, 1, B)
    slope = keep * s  # d(post-tax income)/d(hours) inside the bracket
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if isinstance(params, QuasiLinearUtility):
            h = np.power(np.maximum(slope, 0.0) / (params.c * params.delta), 1.0 / (params.delta - 1.0))
        else:
            # Inside bracket b, C(l) = a_b + slope * l with a_b = R - T(cut_b) + rate_b * cut_b;
            # the FOC slope * C^-eta = k gives C* = (slope/k)^(1/eta).
            sizes = np.diff(cutoffs)
            tax_at_cut = np.concatenate(
                [np.zeros((rates.shape[0], 1)), np.cumsum(rates[:, :-1] * sizes, axis=1)], axis=1
            )
            intercept = lump[:, None, None] - (tax_at_cut - rates * cutoffs)[:, None, :]
            if params.eta == 0.0:
                c_star = np.full_like(slope, np.nan)  # linear in C: only corners matter
            else:
                c_star = np.power(slope / params.labor_cost, 1.0 / params.eta)
            h = np.where(slope > 0, (c_star - intercept) / slope, 0.0)
    return np.nan_to_num(h, nan=0.0, posinf=np.inf, neginf=0.0)


def best_response_hours_many(
    skills: np.ndarray,
    cutoffs: Sequence[float],
    rates: np.ndarray,
    params: UtilityParams,
    hours_cap: float = 100.0,
    lump_sum: np.ndarray | float = 0.0,
    hours_options: Sequence[float] | None = None,
    extra_hours: np.ndarray | None = None,
) -> np.ndarray:
    """Best-response hours for every (schedule, worker): rates (m, B) -> hours (m, n).

    ``hours_options`` restricts choices to a menu (e.g. LLM Economist's {0, 10, ..., 100});
    otherwise choices are continuous on [0, hours_cap]. Ties go to the fewer hours.
    """
    s = np.asarray(skills, dtype=float)
    if np.any(s < 0):
        raise ValueError("skills must be non-negative")
    cut = np.asarray(cutoffs, dtype=float)
    r = np.atleast_2d(np.asarray(rates, dtype=float))
    m, n = r.shape[0], s.size
    lump = np.broadcast_to(np.asarray(lump_sum, dtype=float), (m,))
    if hours_options is not None:
        cand = np.broadcast_to(np.asarray(hours_options, dtype=float), (m, n, len(hours_options)))
        if np.any(cand < 0):
            raise ValueError("hours options must be non-negative")
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            kinks = np.where(s[:, None] > 0, cut[None, 1:] / s[:, None], 0.0)  # (n, B-1)
        fixed = [np.zeros((n, 1)), np.full((n, 1), float(hours_cap)), kinks]
        if extra_hours is not None:
            fixed.append(np.broadcast_to(np.asarray(extra_hours, dtype=float), (n, len(extra_hours))))
        fixed_all = np.broadcast_to(np.concatenate(fixed, axis=1), (m, n, sum(f.shape[1] for f in fixed)))
        stationary = _stationary_hours(s, cut, r, params, lump)
        cand = np.clip(np.concatenate([fixed_all, stationary], axis=2), 0.0, hours_cap)
    cand = np.sort(cand, axis=2)  # so argmax's first-hit rule prefers fewer hours
    z = s[None, :, None] * cand
    post = z - bracket_tax_many(z, cut, r) + lump[:, None, None]
    u = utility(params, post, cand)
    best = np.argmax(u, axis=2)
    return np.take_along_axis(cand, best[..., None], axis=2)[..., 0]


def best_response_labor_vec(
    skills: np.ndarray,
    schedule: TaxSchedule,
    utility_params: UtilityParams,
    hours_cap: float = 100.0,
    lump_sum: float = 0.0,
    hours_options: Sequence[float] | None = None,
) -> np.ndarray:
    """Best-response hours for many workers facing one schedule."""
    return best_response_hours_many(
        skills, schedule.cutoffs, np.asarray([schedule.rates]), utility_params, hours_cap, lump_sum, hours_options
    )[0]


def best_response_labor(
    skill: float,
    schedule: TaxSchedule,
    utility_params: UtilityParams,
    hours_cap: float = 100.0,
    lump_sum: float = 0.0,
    hours_options: Sequence[float] | None = None,
    grid_points: int = 1001,
) -> float:
    """Utility-maximising hours for one worker (exact candidates plus a fine grid of hours)."""
    grid = np.linspace(0.0, hours_cap, grid_points) if grid_points > 0 and hours_options is None else None
    hours = best_response_hours_many(
        np.asarray([skill]), schedule.cutoffs, np.asarray([schedule.rates]), utility_params,
        hours_cap, lump_sum, hours_options, extra_hours=grid,
    )
    return float(hours[0, 0])


def bounded_rational_labor(
    skill,
    schedule: TaxSchedule,
    utility_params: UtilityParams,
    noise_sd: float,
    rng: np.random.Generator,
    hours_cap: float = 100.0,
    lump_sum: float = 0.0,
    hours_options: Sequence[float] | None = None,
):
    """Best response plus N(0, noise_sd) hours, clipped to [0, cap] (snapped to the menu if given).

    A cheap stand-in for an imperfect (e.g. LLM) worker; ``skill`` may be a scalar or an array.
    """
    if noise_sd < 0:
        raise ValueError(f"noise_sd must be >= 0, got {noise_sd}")
    s = np.asarray(skill, dtype=float)
    best = best_response_labor_vec(s.reshape(-1), schedule, utility_params, hours_cap, lump_sum, hours_options)
    noisy = np.clip(best + rng.normal(0.0, noise_sd, size=best.shape), 0.0, hours_cap)
    if hours_options is not None:
        opts = np.sort(np.asarray(hours_options, dtype=float))
        noisy = opts[np.argmin(np.abs(noisy[:, None] - opts[None, :]), axis=1)]
    return float(noisy[0]) if s.ndim == 0 else noisy.reshape(s.shape)
