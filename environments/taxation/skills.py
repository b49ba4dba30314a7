"""Skill (income per hour) samplers, each reproducible from a numpy Generator.

- ``uniform``: LLM Economist's ``uniform`` option, v ~ U(1.24, 159.1).
- ``pareto_ai_economist``: the AI Economist's rank-averaged clipped Pareto skills.
- ``gb2_census``: LLM Economist's default ``us_income`` option, a GB2 fitted to ACS 2023
  incomes, divided by 40 (hours) to give an hourly skill.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.special import betaln

#: LLM Economist's GB2 fit to ACS 2023 incomes (gamlss parametrisation).
GB2_ACS2023 = {"mu": 72402.78, "sigma": 2.0721, "nu": 0.48652, "tau": 1.14104}


def uniform(n: int, rng: np.random.Generator, lo: float = 1.24, hi: float = 159.1) -> np.ndarray:
    """n skills drawn uniformly from [lo, hi)."""
    if n < 0 or hi < lo:
        raise ValueError(f"need n >= 0 and lo <= hi, got n={n}, lo={lo}, hi={hi}")
    return rng.uniform(lo, hi, size=n)


def pareto_ai_economist(
    n: int, rng: np.random.Generator, max_skill: float = 3.0, n_draws: int = 1000
) -> np.ndarray:
    """AI Economist skills: 1000 x n draws x ~ Pareto-II(4), s = min(3, 2x + 1), rank-averaged.

    The shape 4 is hard-coded in the AI Economist (its ``pareto_param`` argument is ignored),
    so it is fixed here too. Each row is sorted and the columns averaged, which makes the
    result almost deterministic and sorted ascending: the i-th agent gets the i-th ranked
    skill, as there. (One ``SimpleLabor`` revision uses min(3, 2(x + 1)) instead; this
    follows ``build.py``/economics.md: min(pmsm, (pmsm - 1) x + 1).)
    """
    if n < 0 or n_draws < 1:
        raise ValueError(f"need n >= 0 and n_draws >= 1, got n={n}, n_draws={n_draws}")
    x = rng.pareto(4.0, size=(n_draws, n))
    clipped = np.minimum(max_skill, (max_skill - 1.0) * x + 1.0)
    return np.sort(clipped, axis=1).mean(axis=0)


def gb2_quantile(
    p: np.ndarray,
    mu: float = GB2_ACS2023["mu"],
    sigma: float = GB2_ACS2023["sigma"],
    nu: float = GB2_ACS2023["nu"],
    tau: float = GB2_ACS2023["tau"],
) -> np.ndarray:
    """gamlss qGB2 for sigma > 0.

    Mapping: if W ~ F(2 nu, 2 tau) then (nu/tau) W ~ BetaPrime(nu, tau), and
    Y = mu * ((nu/tau) W)^(1/sigma) has the gamlss GB2 density
        f(y) = sigma y^(sigma nu - 1) / (mu^(sigma nu) B(nu, tau) (1 + (y/mu)^sigma)^(nu + tau)),
    i.e. the textbook GB2(a=sigma, b=mu, p=nu, q=tau). So Q(p) = mu ((nu/tau) F^-1(p))^(1/sigma).
    """
    if mu <= 0 or sigma <= 0 or nu <= 0 or tau <= 0:
        raise ValueError(f"GB2 needs positive mu, sigma, nu, tau; got {mu}, {sigma}, {nu}, {tau}")
    w = stats.f.ppf(np.asarray(p, dtype=float), 2.0 * nu, 2.0 * tau)
    return mu * np.power((nu / tau) * w, 1.0 / sigma)


def gb2_density(
    y: np.ndarray,
    mu: float = GB2_ACS2023["mu"],
    sigma: float = GB2_ACS2023["sigma"],
    nu: float = GB2_ACS2023["nu"],
    tau: float = GB2_ACS2023["tau"],
) -> np.ndarray:
    """gamlss dGB2 (sigma > 0), written independently of the F construction to cross-check it."""
    y = np.asarray(y, dtype=float)
    log_f = (
        np.log(sigma) + (sigma * nu - 1.0) * np.log(y) - sigma * nu * np.log(mu)
        - betaln(nu, tau)
        - (nu + tau) * np.log1p(np.power(y / mu, sigma))
    )
    return np.exp(log_f)


def gb2_census(
    n: int,
    rng: np.random.Generator,
    mu: float = GB2_ACS2023["mu"],
    sigma: float = GB2_ACS2023["sigma"],
    nu: float = GB2_ACS2023["nu"],
    tau: float = GB2_ACS2023["tau"],
    divisor: float = 40.0,
) -> np.ndarray:
    """Hourly skills v = GB2 income / divisor, by inverse CDF of one uniform per worker.

    Inverse-CDF sampling is what the LLM Economist's rGB2 does, and it keeps skills
    monotone in the underlying uniforms (common random numbers across parameter sweeps).
    """
    if n < 0 or divisor <= 0:
        raise ValueError(f"need n >= 0 and divisor > 0, got n={n}, divisor={divisor}")
    # (0, 1) open interval: F^-1(0) = 0 and F^-1(1) = inf are not incomes.
    p = rng.uniform(np.nextafter(0.0, 1.0), 1.0, size=n)
    return gb2_quantile(p, mu, sigma, nu, tau) / divisor
