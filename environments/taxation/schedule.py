"""Piecewise-linear bracket tax schedules, tax arithmetic and lump-sum redistribution.

A schedule is a list of bracket lower edges (``cutoffs``, starting at 0) and one
marginal rate per bracket; the top bracket is unbounded. The tax due is

    T(z) = sum_b rate_b * min(size_b, max(0, z - cut_b)),   size_top = inf,

as in the AI Economist's ``PeriodicBracketTax`` (economics.md §1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: US 2018 single-filer bracket lower edges, in dollars (AI Economist's default brackets).
US_2018_CUTOFFS_USD: tuple[float, ...] = (0.0, 9700.0, 39475.0, 84200.0, 160725.0, 204100.0, 510300.0)
#: US 2018 statutory marginal rates for those brackets.
US_2018_RATES: tuple[float, ...] = (0.10, 0.12, 0.22, 0.24, 0.32, 0.35, 0.37)
#: LLM Economist's default "three" brackets, in dollars (its 10M upper edge is dropped: top is open).
LLM_ECONOMIST_THREE_CUTOFFS_USD: tuple[float, ...] = (0.0, 90000.0, 159100.0)


@dataclass(frozen=True)
class TaxSchedule:
    """Bracket lower edges (strictly increasing, first is 0) and marginal rates in [0, 1]."""

    cutoffs: tuple[float, ...]
    rates: tuple[float, ...]

    def __post_init__(self) -> None:
        cutoffs = tuple(float(c) for c in self.cutoffs)
        rates = tuple(float(r) for r in self.rates)
        # Normalise to tuples of float so equality and hashing behave whatever was passed in.
        object.__setattr__(self, "cutoffs", cutoffs)
        object.__setattr__(self, "rates", rates)
        if not cutoffs:
            raise ValueError("TaxSchedule needs at least one bracket (cutoffs is empty)")
        if len(cutoffs) != len(rates):
            raise ValueError(
                f"TaxSchedule needs one rate per bracket: {len(cutoffs)} cutoffs, {len(rates)} rates"
            )
        if cutoffs[0] != 0.0:
            raise ValueError(f"the first cutoff must be 0, got {cutoffs[0]}")
        if not all(math.isfinite(c) for c in cutoffs):
            raise ValueError(f"cutoffs must be finite, got {cutoffs}")
        if any(b <= a for a, b in zip(cutoffs, cutoffs[1:])):
            raise ValueError(f"cutoffs must be strictly increasing, got {cutoffs}")
        bad = [r for r in rates if not (0.0 <= r <= 1.0)]  # also rejects NaN
        if bad:
            raise ValueError(f"rates must lie in [0, 1], got {bad} in {rates}")

    @property
    def n_brackets(self) -> int:
        return len(self.cutoffs)

    @property
    def sizes(self) -> tuple[float, ...]:
        """Width of each bracket; the top one is infinite."""
        return tuple(b - a for a, b in zip(self.cutoffs, self.cutoffs[1:])) + (math.inf,)

    def with_rates(self, rates: Sequence[float]) -> TaxSchedule:
        """Same brackets, new rates (validated)."""
        return TaxSchedule(self.cutoffs, tuple(rates))


# ----- tax arithmetic ----------------------------------------------------------------


def _income_in_brackets(incomes: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """Income falling in each bracket, shape incomes.shape + (n_brackets,)."""
    sizes = np.append(np.diff(cutoffs), np.inf)
    return np.clip(incomes[..., None] - cutoffs, 0.0, sizes)


def bracket_tax_vec(incomes: np.ndarray, schedule: TaxSchedule) -> np.ndarray:
    """T(z) for every element of ``incomes`` (any shape); negative income owes nothing."""
    z = np.asarray(incomes, dtype=float)
    cutoffs = np.asarray(schedule.cutoffs)
    return _income_in_brackets(z, cutoffs) @ np.asarray(schedule.rates)


def bracket_tax(income: float, schedule: TaxSchedule) -> float:
    """T(z) for one income."""
    return float(bracket_tax_vec(np.asarray([income], dtype=float), schedule)[0])


def bracket_tax_many(incomes: np.ndarray, cutoffs: Sequence[float], rates: np.ndarray) -> np.ndarray:
    """T(z) under many rate vectors at once: rates (m, B), incomes (m, ...) -> (m, ...).

    Used by the grid planner to score every candidate schedule in one numpy pass.
    """
    z = np.asarray(incomes, dtype=float)
    r = np.asarray(rates, dtype=float)
    per_bracket = _income_in_brackets(z, np.asarray(cutoffs, dtype=float))
    r_b = r.reshape(r.shape[:1] + (1,) * (z.ndim - 1) + r.shape[1:])
    return np.sum(per_bracket * r_b, axis=-1)


def marginal_rate_vec(incomes: np.ndarray, schedule: TaxSchedule) -> np.ndarray:
    """Rate on the next unit of income: the bracket with cut <= z < next cut; 0 for z < 0.

    Matches the AI Economist, which reports 0 for negative income.
    """
    z = np.asarray(incomes, dtype=float)
    idx = np.searchsorted(np.asarray(schedule.cutoffs), z, side="right") - 1
    rates = np.asarray(schedule.rates)[np.clip(idx, 0, None)]
    return np.where(z < 0, 0.0, rates)


def marginal_rate(income: float, schedule: TaxSchedule) -> float:
    """Marginal rate at one income (see ``marginal_rate_vec``)."""
    return float(marginal_rate_vec(np.asarray([income], dtype=float), schedule)[0])


# ----- presets -------------------------------------------------------------------------


def us_federal_2018(divisor: float = 1000.0) -> TaxSchedule:
    """US 2018 single-filer schedule with cutoffs scaled by 1/divisor (AI Economist uses 1000)."""
    if divisor <= 0:
        raise ValueError(f"divisor must be positive, got {divisor}")
    return TaxSchedule(tuple(c / divisor for c in US_2018_CUTOFFS_USD), US_2018_RATES)


_DEFAULT_CUTOFFS: tuple[float, ...] = us_federal_2018().cutoffs


def free_market(cutoffs: Sequence[float] = _DEFAULT_CUTOFFS) -> TaxSchedule:
    """No tax at all; keeps the bracket structure so planners can move from it."""
    return TaxSchedule(tuple(cutoffs), (0.0,) * len(cutoffs))


def flat(rate: float, cutoffs: Sequence[float] = _DEFAULT_CUTOFFS) -> TaxSchedule:
    """The same marginal rate in every bracket."""
    return TaxSchedule(tuple(cutoffs), (float(rate),) * len(cutoffs))


def llm_economist_three(rates: Sequence[float] = (0.5, 0.5, 0.5), divisor: float = 1.0) -> TaxSchedule:
    """LLM Economist's default three brackets (dollars / divisor); its planner starts at 50%."""
    return TaxSchedule(tuple(c / divisor for c in LLM_ECONOMIST_THREE_CUTOFFS_USD), tuple(rates))


# ----- policy moves and redistribution -------------------------------------------------


def apply_rate_changes(
    schedule: TaxSchedule,
    proposed: Sequence[float],
    max_step: float,
    rate_min: float = 0.0,
    rate_max: float = 1.0,
) -> TaxSchedule:
    """Move each rate toward ``proposed`` by at most ``max_step``, then clip to [rate_min, rate_max].

    ``proposed`` are absolute rates; the per-period step limit mirrors the LLM Economist's
    bounded DELTA actions (±20pp) and keeps planners from jumping across the grid.
    """
    if max_step < 0:
        raise ValueError(f"max_step must be >= 0, got {max_step}")
    if not 0.0 <= rate_min <= rate_max <= 1.0:
        raise ValueError(f"need 0 <= rate_min <= rate_max <= 1, got {rate_min}, {rate_max}")
    target = np.asarray(proposed, dtype=float)
    if target.shape != (schedule.n_brackets,):
        raise ValueError(f"expected {schedule.n_brackets} proposed rates, got {target.shape}")
    if not np.all(np.isfinite(target)):
        raise ValueError(f"proposed rates must be finite, got {proposed}")
    current = np.asarray(schedule.rates)
    moved = current + np.clip(target - current, -max_step, max_step)
    return schedule.with_rates(np.clip(moved, rate_min, rate_max).tolist())


def collect_and_redistribute(
    incomes: np.ndarray, coin: np.ndarray, schedule: TaxSchedule
) -> tuple[np.ndarray, float, np.ndarray]:
    """Tax each agent's period income, capped by the coin it holds, and rebate revenue equally.

    Returns (tax_paid, lump_sum, post_tax_coin) with post = coin - tax_paid + lump_sum and
    lump_sum = sum(tax_paid) / N, so total coin is conserved: sum(post) == sum(coin) up to
    float rounding (exact when the values are dyadic rationals).
    """
    z = np.asarray(incomes, dtype=float)
    held = np.asarray(coin, dtype=float)
    if z.shape != held.shape or z.ndim != 1:
        raise ValueError(f"incomes and coin must be 1-D and the same shape, got {z.shape}, {held.shape}")
    if z.size == 0:
        return np.zeros(0), 0.0, np.zeros(0)
    # The cap matters when income was already spent (e.g. escrowed in orders): never tax below 0 coin.
    tax_paid = np.minimum(bracket_tax_vec(z, schedule), np.maximum(held, 0.0))
    lump_sum = float(tax_paid.sum() / z.size)
    return tax_paid, lump_sum, held - tax_paid + lump_sum
