"""Optimal taxation: workers choose labor, a planner sets bracket rates, revenue is rebated.

One tick is one labor choice. Ticks are grouped into tax periods of ``period_ticks``; the
planner acts at the start of each period and taxes are collected on the period's income at
its end, capped at what each worker holds, with all revenue returned as an equal lump sum
(the AI Economist's PeriodicBracketTax; economics.md §1-2). Phases, in order:
policy -> labor -> tax. See docs/taxation.md.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agents.base import Player
from agents.persona import population_for
from environments.common import ConservationError, per_usd
from environments.taxation import metrics as tm
from environments.taxation import skills as sk
from environments.taxation.actions import hours_menu, labor_model, proposal_model, proposal_rates, rate_percent_grid
from environments.taxation.planners import grid_search, saez_planner_step
from environments.taxation.saez import INITIAL_ELASTICITY, estimate_elasticity
from environments.taxation.schedule import (
    US_2018_CUTOFFS_USD,
    US_2018_RATES,
    TaxSchedule,
    apply_rate_changes,
    bracket_tax_many,
    bracket_tax_vec,
    collect_and_redistribute,
    marginal_rate_vec,
)
from environments.taxation.utility import (
    IsoelasticUtility,
    QuasiLinearUtility,
    UtilityParams,
    best_response_labor_vec,
    bounded_rational_labor,
    utility,
)
from environments.registry import register
from sim.engine import ActRequest, Environment, MetricSpec, Truth
from sim.events import private

# Income units differ by skill sampler, so the US 2018 dollar cutoffs are scaled to put
# workers in several brackets: uniform skills earn up to ~16k, AI Economist Pareto skills
# up to ~300 (their /1000 scaling), GB2 skills are dollars.
AUTO_DIVISOR = {"uniform": 10.0, "pareto": 1000.0, "gb2": 1.0}


class TaxationConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["taxation"] = "taxation"
    n_workers: int = Field(10, ge=1, le=5000)
    ticks: int = Field(20, ge=1, le=100000)
    period_ticks: int = Field(1, ge=1, le=10000)
    skills: Literal["uniform", "pareto", "gb2"] = "uniform"
    skill_lo: float = Field(1.24, gt=0)
    skill_hi: float = Field(159.1, gt=0)
    utility: Literal["quasilinear", "isoelastic"] = "quasilinear"
    ql_c: float = Field(0.0005, gt=0)
    ql_delta: float = Field(3.5, gt=1)
    iso_eta: float = Field(0.23, ge=0)
    iso_labor_cost: float = Field(0.21, ge=0)
    hours_cap: int = Field(100, ge=1, le=10000)
    hours_step: int = Field(10, ge=1)
    scripted_hours: Literal["menu", "continuous"] = "menu"
    worker_policy: Literal["rational", "noisy"] = "rational"
    noise_sd: float = Field(10.0, ge=0)
    llm_workers: bool = True
    preset: Literal["us_federal", "free_market", "flat"] = "us_federal"
    flat_rate: float = Field(0.3, ge=0, le=1)
    cutoffs: Optional[list[float]] = None
    cutoff_divisor: Optional[float] = Field(None, gt=0)
    planner: Literal["fixed", "saez", "grid", "llm"] = "fixed"
    swf: Literal["utilitarian", "inverse_income", "llm_economist", "eq_times_prod"] = "inverse_income"
    max_rate_step: float = Field(0.2, ge=0, le=1)
    rate_step_pct: int = Field(5, ge=1, le=100)
    grid_rates: list[float] = Field(default_factory=lambda: [0.0, 0.3, 0.6, 0.9])
    grid_max_schedules: int = Field(50000, ge=1)
    saez_buffer: int = Field(500, ge=10)
    saez_min_samples: Optional[int] = Field(None, ge=1)
    saez_weights: Literal["inverse_income", "uniform"] = "inverse_income"
    saez_ema_decay: float = Field(0.98, ge=0, le=1)
    saez_bins: int = Field(100, ge=1)
    saez_top_cutoff: Optional[float] = Field(None, gt=0)
    saez_fixed_elasticity: Optional[float] = Field(None, ge=0)
    planner_tokens: int = Field(96, ge=16, le=4096)
    worker_tokens: int = Field(24, ge=8, le=1024)
    history_shown: int = Field(5, ge=0, le=100)

    @field_validator("cutoffs")
    @classmethod
    def _cutoffs_ok(cls, v: Optional[list[float]]) -> Optional[list[float]]:
        if v is None:
            return v
        if not v or v[0] != 0 or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("cutoffs must start at 0 and be strictly increasing")
        return v

    @field_validator("grid_rates")
    @classmethod
    def _grid_ok(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 <= r <= 1 for r in v):
            raise ValueError("grid_rates must be a non-empty list of rates in [0, 1]")
        return v


def config_cutoffs(cfg: TaxationConfig) -> tuple[float, ...]:
    """Bracket lower edges: explicit ``cutoffs`` or US 2018 dollars / divisor."""
    if cfg.cutoffs is not None:
        return tuple(float(c) for c in cfg.cutoffs)
    div = cfg.cutoff_divisor or AUTO_DIVISOR[cfg.skills]
    return tuple(c / div for c in US_2018_CUTOFFS_USD)


def preset_schedule(cfg: TaxationConfig) -> TaxSchedule:
    """The starting (and, for planner=fixed, permanent) schedule."""
    cut = config_cutoffs(cfg)
    if cfg.preset == "free_market":
        return TaxSchedule(cut, (0.0,) * len(cut))
    if cfg.preset == "flat":
        return TaxSchedule(cut, (cfg.flat_rate,) * len(cut))
    if len(cut) != len(US_2018_RATES):
        # custom brackets: spread the US rates over them (first and last kept)
        idx = np.linspace(0, len(US_2018_RATES) - 1, len(cut)).round().astype(int)
        return TaxSchedule(cut, tuple(US_2018_RATES[i] for i in idx))
    return TaxSchedule(cut, US_2018_RATES)


def utility_params(cfg: TaxationConfig) -> UtilityParams:
    if cfg.utility == "isoelastic":
        return IsoelasticUtility(cfg.iso_eta, cfg.iso_labor_cost)
    return QuasiLinearUtility(cfg.ql_c, cfg.ql_delta)


def draw_skills(cfg: TaxationConfig, rng: np.random.Generator) -> np.ndarray:
    if cfg.skills == "uniform":
        return sk.uniform(cfg.n_workers, rng, cfg.skill_lo, cfg.skill_hi)
    if cfg.skills == "pareto":
        return sk.pareto_ai_economist(cfg.n_workers, rng)
    return sk.gb2_census(cfg.n_workers, rng)


def per_tick(schedule: TaxSchedule, period_ticks: int) -> TaxSchedule:
    """The schedule a worker faces per tick when it works the same hours all period.

    Tax is levied on period income P*z, and T(P z; cut) = P T(z; cut/P), so per-tick choices
    are a one-tick problem with cutoffs divided by P.
    """
    if period_ticks == 1:
        return schedule
    return TaxSchedule(tuple(c / period_ticks for c in schedule.cutoffs), schedule.rates)


def describe_schedule(s: TaxSchedule) -> str:
    parts = []
    for k, (lo, r) in enumerate(zip(s.cutoffs, s.rates)):
        hi = f"{s.cutoffs[k + 1]:,.0f}" if k + 1 < s.n_brackets else "up"
        parts.append(f"{lo:,.0f}-{hi}: {round(r * 100)}%")
    return "; ".join(parts)


class Worker(Player):
    def role_text(self) -> str:
        m = self.model
        if m.cfg.utility == "quasilinear":
            u = f"utility = income after tax + rebate - {m.cfg.ql_c} * hours^{m.cfg.ql_delta}"
        else:
            e, k = m.cfg.iso_eta, m.cfg.iso_labor_cost
            u = f"utility = ((consumption)^(1-{e}) - 1)/(1-{e}) - {k} * hours"
        return (f"Economy: you are worker {self.aid}. Each tick you choose how many hours to work "
                f"(0 to {m.cfg.hours_cap}). Income = your skill x hours. Income is taxed by brackets each "
                f"period and all tax revenue is shared equally. Your {u}. Maximise your utility.")


class Planner(Player):
    def role_text(self) -> str:
        m = self.model
        return (f"Economy: you are the tax planner for {m.cfg.n_workers} workers. At the start of each tax "
                f"period you set the marginal rate of every income bracket. Revenue is returned to all "
                f"workers as an equal lump sum. Your goal is to maximise social welfare ({m.cfg.swf}). "
                f"Each rate may move at most {round(m.cfg.max_rate_step * 100)} points per period.")


@register
class TaxationEnv(Environment):
    name = "taxation"
    phases = ("policy", "labor", "tax")
    reads_events = False  # the outcome comes from the economy's state, never the event log
    Config = TaxationConfig
    memory_importance = {"schedule": 8, "tax": 6, "labor": 4, "period_metrics": 5}

    metrics = (
        MetricSpec("productivity", "Productivity", "coin per worker", "welfare", True,
                   doc="mean pre-tax income"),
        MetricSpec("equality", "Equality", "1 - Gini", "equality", True),
        MetricSpec("gini", "Gini after tax", "0-1", "equality", False),
        MetricSpec("gini_pre_tax", "Gini before tax", "0-1", "equality", False),
        MetricSpec("eq_times_prod", "Equality x productivity", "coin", "welfare", True),
        MetricSpec("utilitarian_welfare", "Utilitarian welfare", "utility per worker", "welfare", True),
        MetricSpec("swf", "Planner's objective", "SWF units", "welfare", True),
        MetricSpec("revenue", "Tax revenue", "coin", "taxes"),
        MetricSpec("lump_sum", "Lump-sum rebate", "coin per worker", "taxes"),
        MetricSpec("etr_bottom_decile", "Effective tax rate, bottom decile", "rate", "taxes"),
        MetricSpec("etr_top_decile", "Effective tax rate, top decile", "rate", "taxes"),
        MetricSpec("labor_mean", "Mean hours", "hours per tick", "labour"),
        MetricSpec("share_at_cap", "Share at the hours cap", "share of workers", "labour"),
        MetricSpec("planner_usd", "Planner compute", "USD", "compute", False),
        MetricSpec("compute_usd", "All compute", "USD", "compute", False),
        MetricSpec("welfare_per_usd", "Welfare per USD", "utility / USD", "compute", True,
                   doc="utilitarian welfare per USD of compute (undefined when nothing was spent)"),
        MetricSpec("utilitarian_welfare", "Final utilitarian welfare", "utility per worker", "outcome", True,
                   "outcome"),
        MetricSpec("equality", "Final equality", "1 - Gini", "outcome", True, "outcome"),
        MetricSpec("productivity", "Final productivity", "coin per worker", "outcome", True, "outcome"),
        MetricSpec("welfare_per_usd", "Welfare per USD", "utility / USD", "outcome", True, "outcome"),
    )

    aliases = {"planner": "planner"}  # `agora run env=taxation planner=saez`
    # one-line meanings of outcome keys that are not declared metrics (`agora report`, docs/reports.md)
    glossary = {
        "planner": "tax planner that set the schedule (fixed, us_federal, saez, grid, llm...)",
        "inverse_income_welfare": "AI Economist SWF: utility weighted by normalised inverse pre-tax income",
        "llm_economist_swf": "LLM Economist SWF: sum of utility / pre-tax income (behaves like maximin)",
        "hours_mean": "mean hours worked per worker in the last tick",
        "periods": "tax periods played (the planner sets rates once per period)",
        "conservation_ok": "every tick's taxes were fully rebated and coin was conserved (accounting check)",
        "saez_elasticity": "labour elasticity the Saez planner used last (clipped estimate)",
        "elasticity_estimate": "raw labour elasticity estimated from the income/rate history (NaN: none yet)",
        "grid_predicted_welfare": "planner objective the grid search predicted for its schedule",
        "final_rates": "marginal rate of each bracket at the end", "cutoffs": "lower income cutoff of each bracket",
    }
    quick = ("env.n_workers=12", "env.ticks=6", "env.period_ticks=2")
    # one worker's labour choice for one tick is the unit; ``stake`` scales it by what a wrong choice
    # costs that worker: its utility at the best hours minus the mean over the other hours (the
    # oracle's wrong answers), over the same for the tick's average worker (so the average is 1).
    # The planner's schedule governs every worker's choice for a period: n_workers x period_ticks units
    stakes = {"labor": 1.0, "set_rates": 1.0}
    deliberate = ("labor",)  # by default a policy deliberates the workers' labour choices (deliberation.purposes)

    @classmethod
    def population(cls, env_cfg: dict) -> int | None:
        return env_cfg.get("n_workers", 0) + 1  # the workers and the planner

    @classmethod
    def check_persona(cls, persona) -> str | None:
        if "skill" not in persona.extra:
            return None
        s = persona.extra["skill"]
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0 < s < float("inf"):
            return f"persona {persona.name!r}: env.skill={s!r}: must be a positive number"
        return None

    @classmethod
    def cross_check(cls, cfg: dict) -> str | None:
        e = TaxationConfig.model_validate(cfg["env"])
        if e.skills == "uniform" and e.skill_hi < e.skill_lo:
            return f"env.skill_hi={e.skill_hi}: must be >= env.skill_lo={e.skill_lo}"
        if e.hours_step > e.hours_cap:
            return f"env.hours_step={e.hours_step}: must be <= env.hours_cap={e.hours_cap}"
        n_br = len(config_cutoffs(e))
        if e.planner == "grid" and len(e.grid_rates) ** n_br > e.grid_max_schedules:
            return (f"env.grid_rates: {len(e.grid_rates)} rates ^ {n_br} brackets = "
                    f"{len(e.grid_rates) ** n_br} schedules > env.grid_max_schedules={e.grid_max_schedules}")
        return None

    def __init__(self, env_cfg: dict, seed: int, agent_cfg: dict | None = None, llm_cfg: dict | None = None):
        super().__init__(env_cfg, seed, agent_cfg, llm_cfg)
        self.cfg = TaxationConfig.model_validate(env_cfg)
        self.params = utility_params(self.cfg)
        self.menu = hours_menu(self.cfg.hours_cap, self.cfg.hours_step)
        self.schedule = preset_schedule(self.cfg)
        self.period = 0
        self.history: list[tuple[np.ndarray, np.ndarray]] = []  # (period incomes, marginal rates)
        self.elasticity = INITIAL_ELASTICITY
        self.elasticity_raw = math.nan
        self.saez_warming_up = False
        self.grid_result = None
        self.last_metrics: dict[str, float] = {}
        self.metric_keys: list[str] = []
        self.swf_history: list[tuple[tuple[float, ...], float]] = []
        self.conservation_ok = True
        self.planner_source = "preset"
        self._planner_nano = 0  # the planner's spend so far, and the ledger rows already summed
        self._planner_seen = 0

    # ---- helpers -----------------------------------------------------------
    def horizon(self) -> int:
        return self.cfg.ticks

    @property
    def n(self) -> int:
        return self.cfg.n_workers

    def _llm_workers(self) -> bool:
        """Workers go through the act seam unless all of them are scripted (then numpy decides at once)."""
        return self.cfg.llm_workers and any(self.policy_of(w) != "scripted" for w in self.workers)

    def _period_start(self) -> bool:
        return (self.tick - 1) % self.cfg.period_ticks == 0

    def _period_end(self) -> bool:
        return self.tick % self.cfg.period_ticks == 0 or self.tick >= self.cfg.ticks

    # ---- setup -------------------------------------------------------------
    def setup(self) -> None:
        self.skills = draw_skills(self.cfg, self.rng_for("skills"))
        self.coin = np.zeros(self.n)
        self._reset_period()
        self.last_hours = np.zeros(self.n)
        self.last_income = np.zeros(self.n)
        self.last_tax = np.zeros(self.n)
        self.last_utility = np.full(self.n, math.nan)
        self.last_lump = 0.0
        mem = (self.agent_cfg or {}).get("memory") or {}
        personas = population_for(self, self.n + 1)
        for i, p in enumerate(personas[: self.n]):  # a persona file may fix a worker's skill
            if "skill" in p.extra:
                problem = self.check_persona(p)
                if problem:
                    raise ValueError(problem)
                self.skills[i] = float(p.extra["skill"])
        self.worker_ids = [f"w{i:03d}" for i in range(1, self.n + 1)]
        self.workers = [Worker(self, aid, p, "worker", (), self.endpoint_for("worker"), mem)
                        for aid, p in zip(self.worker_ids, personas)]
        self.planner_agent = Planner(self, "planner", personas[-1], "planner", (), self.endpoint_for("planner"), mem)
        z = np.ones(self.n)
        self.metric_keys = list(tm.period_metrics(z, z, z, 0 * z, hours_cap=self.cfg.hours_cap).keys())
        self.last_metrics = {k: math.nan for k in self.metric_keys}
        self.emit("economy_start", {"n_workers": self.n, "rules": self.cfg.model_dump(),
                                    "cutoffs": list(self.schedule.cutoffs), "menu": self.menu,
                                    "skill_mean": float(self.skills.mean())})
        for w, s in zip(self.workers, self.skills):
            self.emit("skill", {"worker": w.aid, "skill": round(float(s), 4)}, visibility=private(w.aid))

    def _reset_period(self) -> None:
        self.period_income = np.zeros(self.n)
        self.period_hours = np.zeros(self.n)
        self.period_len = 0

    def is_done(self) -> bool:
        return self.tick >= self.cfg.ticks and self.phase == "tax"

    # ---- phase: policy -----------------------------------------------------
    def phase_policy(self) -> None:
        if not self._period_start():
            return
        self.period += 1
        p = self.cfg.planner
        if p == "saez":
            self.schedule = self._saez_schedule()
        elif p == "grid":
            self.schedule = self._grid_schedule()
        elif p == "llm":
            self.schedule = self._llm_schedule()
        else:
            self.planner_source = "preset"
        self._planner_nano = 0  # the planner's spend so far, and the ledger rows already summed
        self._planner_seen = 0
        self.emit("schedule", {"period": self.period, "cutoffs": list(self.schedule.cutoffs),
                               "rates": [round(r, 6) for r in self.schedule.rates], "planner": p,
                               "source": self.planner_source}, actor="planner")

    def _saez_schedule(self) -> TaxSchedule:
        c = self.cfg
        top = c.saez_top_cutoff
        if top is None and self.schedule.cutoffs[-1] <= 0:
            seen = np.concatenate([z for z, _ in self.history]) if self.history else np.zeros(1)
            top = max(float(seen.max()), 1.0)  # single bracket: bin over the observed range
        step = saez_planner_step(self.history, self.schedule.cutoffs, self.elasticity,
                                 rng=self.rng_for("saez", self.period), buffer_size=c.saez_buffer,
                                 min_samples=c.saez_min_samples, weights=c.saez_weights, n_bins=c.saez_bins,
                                 top_cutoff=top, ema_decay=c.saez_ema_decay,
                                 fixed_elasticity=c.saez_fixed_elasticity)
        self.elasticity = step.elasticity
        self.saez_warming_up = step.warming_up
        self.planner_source = "saez_warmup" if step.warming_up else "saez"
        return step.schedule

    def _grid_schedule(self) -> TaxSchedule:
        if self.grid_result is None:  # skills and utility are fixed, so one search serves every period
            P = self.cfg.period_ticks
            tick_cut = per_tick(self.schedule, P).cutoffs
            res = grid_search(self.skills, tick_cut, self.cfg.grid_rates, self.cfg.swf, self.params,
                              float(self.cfg.hours_cap), self._hours_options())
            # keep only what later periods need: the full (m, B) table would bloat every checkpoint
            self.grid_result = replace(res, rates=res.rates[:0], welfare_all=res.welfare_all[:0])
        self.planner_source = "grid"
        return self.schedule.with_rates(self.grid_result.schedule.rates)

    def _llm_schedule(self) -> TaxSchedule:
        grid = rate_percent_grid(self.cfg.rate_step_pct)
        cls = proposal_model(self.schedule.n_brackets, grid)
        current = self.schedule

        def keep():  # fallback: no change (the LLM Economist's DELTA = 0)
            pct = [min(grid, key=lambda g: abs(g - r * 100)) for r in current.rates]
            return cls.model_validate({f"bracket_{k}_pct": v for k, v in enumerate(pct, start=1)})

        r = self.act(ActRequest(self.planner_agent, "set_rates", cls, self._planner_observation(), keep,
                                max_tokens=self.cfg.planner_tokens))
        self.planner_source = r.source if r.valid else "fallback"
        if r.source != "llm" or not r.valid:
            return current  # exact no-op: the fallback's grid-snapped rates would drift off-grid presets
        return apply_rate_changes(current, proposal_rates(r.action, current.n_brackets), self.cfg.max_rate_step)

    def _planner_observation(self) -> str:
        m = self.last_metrics
        lines = [f"Tax period {self.period}. Current brackets (period income: marginal rate): "
                 f"{describe_schedule(self.schedule)}."]
        if self.period > 1 and not math.isnan(m.get("productivity", math.nan)):
            swf = self._swf_value(m)
            lines.append(f"Last period: mean income {m['productivity']:.1f}, equality {m['equality']:.3f}, "
                         f"welfare ({self.cfg.swf}) {swf:.4g}, revenue {m['revenue']:.1f}, lump sum "
                         f"{m['lump_sum']:.1f}, mean hours {m['hours_mean']:.1f}, share at hour cap "
                         f"{m['share_at_cap']:.2f}.")
            z = np.sort(self.last_income)
            q = np.quantile(z, [0.1, 0.5, 0.9])
            lines.append(f"Income 10th/50th/90th percentile: {q[0]:.0f}/{q[1]:.0f}/{q[2]:.0f}.")
        if self.swf_history and self.cfg.history_shown:
            hist = "; ".join(f"{[round(r * 100) for r in rates]}% -> {w:.4g}"
                             for rates, w in self.swf_history[-self.cfg.history_shown:])
            lines.append(f"Past rates -> welfare: {hist}.")
        lines.append(f"Propose the marginal rate (percent) for each of the {self.schedule.n_brackets} brackets, "
                     f"in order; each moves at most {round(self.cfg.max_rate_step * 100)} points from now.")
        return "\n".join(lines)

    def _swf_value(self, m: dict) -> float:
        key = {"utilitarian": "utilitarian_welfare", "inverse_income": "inverse_income_welfare",
               "llm_economist": "llm_economist_swf", "eq_times_prod": "eq_times_prod"}[self.cfg.swf]
        return float(m[key])

    # ---- phase: labor ------------------------------------------------------
    def _hours_options(self) -> list[float] | None:
        return [float(h) for h in self.menu] if self.cfg.scripted_hours == "menu" else None

    def scripted_hours(self, menu_only: bool = False) -> np.ndarray:
        """Every worker's scripted choice this tick: best response to the per-tick schedule.

        The rebate is not known until the period ends, so workers expect last period's.
        """
        sched = per_tick(self.schedule, self.cfg.period_ticks)
        lump = self.last_lump / self.cfg.period_ticks
        opts = [float(h) for h in self.menu] if menu_only else self._hours_options()
        cap = float(self.cfg.hours_cap)
        if self.cfg.worker_policy == "noisy":
            return np.asarray(bounded_rational_labor(self.skills, sched, self.params, self.cfg.noise_sd,
                                                     self.rng_for("noise", self.tick), cap, lump, opts))
        return best_response_labor_vec(self.skills, sched, self.params, cap, lump, opts)

    def phase_labor(self) -> None:
        if self._llm_workers():
            scripted = self.scripted_hours(menu_only=True)
            cls = labor_model(self.menu)
            reqs = [ActRequest(w, "labor", cls, self._worker_observation(i),
                               (lambda h=int(round(scripted[i])): cls(hours=h)), max_tokens=self.cfg.worker_tokens)
                    for i, w in enumerate(self.workers)]
            hours = np.asarray([float(r.action.hours) for r in self.act_all(reqs)])
        else:
            hours = self.scripted_hours()
        hours = np.clip(hours, 0.0, float(self.cfg.hours_cap))
        income = self.skills * hours
        self.period_hours += hours
        self.period_income += income
        self.period_len += 1
        self.coin += income
        self.emit_many("labor", ((w.aid, {"worker": w.aid, "hours": round(h, 4), "income": round(z, 4)},
                                  private(w.aid))
                                 for w, h, z in zip(self.workers, hours.tolist(), income.tolist())))

    @classmethod
    def success_value(cls, outcome) -> float | None:
        """Final utilitarian welfare (cost-of-pass: USD per unit of welfare)."""
        v = outcome.get("utilitarian_welfare")
        return float(v) if isinstance(v, (int, float)) else None

    def ground_truth(self, request: ActRequest) -> Truth | None:
        """A worker's labour choice: right = the rational (best-response) hours on the menu, wrong = the rest."""
        if request.purpose != "labor":
            return None
        row = self._labor_truth().get(request.agent.aid)
        if row is None:
            return None
        h, _, difficulty = row
        cls = request.action_cls
        return Truth((cls(hours=h),), tuple(cls(hours=m) for m in self.menu if m != h), difficulty=difficulty)

    def stake(self, request: ActRequest) -> float:
        """A labour choice's stake (see ``stakes``): the worker's utility at risk over the tick's average."""
        if request.purpose == "labor":
            row = self._labor_truth().get(request.agent.aid)
            return row[1] if row is not None else 1.0
        if request.purpose == "set_rates":
            return float(self.stakes["set_rates"] * self.n * self.cfg.period_ticks)
        return super().stake(request)

    def _labor_truth(self) -> dict[str, tuple[int, float, float]]:
        """This tick's (best hours, stake, difficulty) per worker, in one vectorised pass per tick.

        Difficulty: near-ties between the best two choices are hard: m / (gap + m), with gap the
        worker's utility at its best hours minus at its second best and m the tick's median gap
        (1/2 for a typical choice, 1 for an exact tie, towards 0 for a clear one).
        """
        cached = self.__dict__.get("_labor_truth_tick")
        if cached is not None and cached[0] == self.tick:
            return cached[1]
        best = self.scripted_hours_rational()
        menu = np.asarray(self.menu, dtype=float)
        sched = per_tick(self.schedule, self.cfg.period_ticks)
        z = self.skills[:, None] * menu[None, :]
        post = (z - bracket_tax_many(z[None], np.asarray(sched.cutoffs, dtype=float), np.asarray([sched.rates]))[0]
                + self.last_lump / self.cfg.period_ticks)
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.asarray(utility(self.params, np.maximum(post, 0.0), np.broadcast_to(menu, z.shape)), dtype=float)
        u = np.where(np.isfinite(u), u, np.nan)
        k = np.abs(menu[None, :] - best[:, None]).argmin(axis=1)  # the best hours' place on the menu
        u_best = u[np.arange(self.n), k]
        others = u.copy()
        others[np.arange(self.n), k] = np.nan
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a one-option menu: no wrong answer
            loss = np.nan_to_num(u_best - np.nanmean(others, axis=1), nan=0.0)
            gap = np.nan_to_num(u_best - np.nanmax(others, axis=1), nan=0.0)
        loss, gap = np.maximum(loss, 0.0), np.maximum(gap, 0.0)
        mean_loss = float(loss.mean()) if self.n else 0.0
        stake = loss / mean_loss if mean_loss > 0 else np.ones(self.n)
        m = float(np.median(gap)) if self.n else 0.0
        difficulty = m / (gap + m) if m > 0 else (gap <= 0).astype(float)
        table = {w.aid: (int(round(h)), float(st), float(d))
                 for w, h, st, d in zip(self.workers, best.tolist(), stake.tolist(), difficulty.tolist())}
        self.__dict__["_labor_truth_tick"] = (self.tick, table)
        return table

    def scripted_hours_rational(self) -> np.ndarray:
        """Every worker's best response on the hours menu this tick (whatever worker_policy says)."""
        sched = per_tick(self.schedule, self.cfg.period_ticks)
        return best_response_labor_vec(self.skills, sched, self.params, float(self.cfg.hours_cap),
                                       self.last_lump / self.cfg.period_ticks, [float(h) for h in self.menu])

    def _worker_observation(self, i: int) -> str:
        lines = [f"Tick {self.tick}, tax period {self.period}. Your skill: {self.skills[i]:.2f} per hour.",
                 f"Tax brackets on period income (marginal rates): {describe_schedule(self.schedule)}."]
        if self.cfg.period_ticks > 1:
            lines.append(f"A tax period lasts {self.cfg.period_ticks} ticks; you earned "
                         f"{self.period_income[i]:.1f} so far this period.")
        if not math.isnan(self.last_utility[i]):
            lines.append(f"Last period you worked {self.last_hours[i]:.0f} hours per tick, earned "
                         f"{self.last_income[i]:.1f}, paid {self.last_tax[i]:.1f} tax, received a lump sum of "
                         f"{self.last_lump:.1f}; your utility was {self.last_utility[i]:.2f}.")
        lines.append(f"Choose your hours this tick from {self.menu}.")
        return "\n".join(lines)

    # ---- phase: tax --------------------------------------------------------
    def phase_tax(self) -> None:
        if not self._period_end():
            return
        P = max(self.period_len, 1)
        before = self.coin.copy()
        tax, lump, after = collect_and_redistribute(self.period_income, before, self.schedule)
        ok = check_conservation(before, after, tax, lump)
        self.conservation_ok = self.conservation_ok and ok
        self.emit("tax", {"period": self.period, "revenue": float(tax.sum()), "lump_sum": lump,
                          "coin_before": float(before.sum()), "coin_after": float(after.sum()),
                          "conservation_ok": ok, "capped": int(np.sum(tax < bracket_tax_vec(self.period_income,
                                                                                            self.schedule) - 1e-12))})
        if not ok:
            raise ConservationError(f"period {self.period}: coin before {before.sum()!r} != after {after.sum()!r}")
        self.coin = after
        z = self.period_income
        mean_h = self.period_hours / P
        post = z - tax + lump
        # Period utility as P ticks at the period's average: exact for the labor choices made per tick.
        u = P * np.asarray(utility(self.params, post / P, mean_h))
        m = tm.period_metrics(z, mean_h, u, tax, post, float(self.cfg.hours_cap))
        self.last_metrics = m
        tau = marginal_rate_vec(z, self.schedule)
        self.history.append((z.copy(), tau))
        keep = max(1, math.ceil(self.cfg.saez_buffer / self.n) + 1)
        self.history = self.history[-keep:]
        z_buf = np.concatenate([h[0] for h in self.history])[-self.cfg.saez_buffer:]
        t_buf = np.concatenate([h[1] for h in self.history])[-self.cfg.saez_buffer:]
        e = estimate_elasticity(z_buf, t_buf)
        self.elasticity_raw = math.nan if e is None else e
        self.swf_history.append((self.schedule.rates, self._swf_value(m)))
        self.last_hours, self.last_income, self.last_tax = mean_h, z.copy(), tax
        self.last_utility, self.last_lump = u, lump
        self.emit("period_metrics", {"period": self.period, **{k: _r(m[k]) for k in (
            "productivity", "equality", "eq_times_prod", "utilitarian_welfare", "inverse_income_welfare",
            "revenue", "lump_sum", "share_at_cap", "hours_mean")}})
        self._reset_period()

    # ---- results -----------------------------------------------------------
    def compute_usd(self) -> tuple[float, float]:
        """(planner USD, all-agents USD) from the ledger so far."""
        if self.svc is None:
            return 0.0, 0.0
        self._planner_nano += sum(r.cost_nano for r in self.svc.client.ledger.rows[self._planner_seen:]
                                  if r.agent == "planner")
        self._planner_seen = len(self.svc.client.ledger.rows)
        return self._planner_nano / 1e9, self.svc.spend.usd()

    def tick_metrics(self) -> dict[str, Any]:
        m = self.last_metrics
        planner_usd, total_usd = self.compute_usd()
        out: dict[str, Any] = {"period": self.period, "period_end": bool(self._period_end()),
                               **{k: float(m.get(k, math.nan)) for k in self.metric_keys}}
        out["etr_bottom_decile"] = out.get("etr_decile_01", math.nan)
        out["etr_top_decile"] = out.get("etr_decile_10", math.nan)
        out["labor_mean"] = out.get("hours_mean", math.nan)
        out["swf"] = self._swf_value(out) if not math.isnan(out.get("productivity", math.nan)) else math.nan
        out["planner_usd"] = planner_usd
        out["compute_usd"] = total_usd
        out["welfare_per_usd"] = per_usd(out["utilitarian_welfare"], total_usd)
        out["saez_elasticity"] = float(self.elasticity)
        out["elasticity_estimate"] = float(self.elasticity_raw)
        out["conservation_ok"] = bool(self.conservation_ok)
        for k, r in enumerate(self.schedule.rates, start=1):
            out[f"rate_{k}"] = float(r)
        return out

    def outcome(self, events=None) -> dict[str, Any]:
        m = self.last_metrics
        planner_usd, total_usd = self.compute_usd()
        keys = ("productivity", "equality", "eq_times_prod", "utilitarian_welfare", "inverse_income_welfare",
                "llm_economist_swf", "revenue", "lump_sum", "share_at_cap", "hours_mean", "gini")
        out: dict[str, Any] = {k: float(m.get(k, math.nan)) for k in keys}
        out |= {"planner": self.cfg.planner, "periods": int(self.period), "final_rates": list(self.schedule.rates),
                "cutoffs": list(self.schedule.cutoffs), "conservation_ok": bool(self.conservation_ok),
                "saez_elasticity": float(self.elasticity), "elasticity_estimate": float(self.elasticity_raw),
                "planner_usd": planner_usd, "compute_usd": total_usd,
                "welfare_per_usd": per_usd(out["utilitarian_welfare"], total_usd)}
        if self.grid_result is not None and self.cfg.period_ticks == 1:
            out["grid_predicted_welfare"] = float(self.grid_result.welfare)  # SWF the search expected
        return out


def check_conservation(before: np.ndarray, after: np.ndarray, tax: np.ndarray, lump: float,
                       rtol: float = 1e-9) -> bool:
    """Total coin unchanged and revenue fully rebated (up to float rounding)."""
    scale = max(1.0, float(np.abs(before).sum()))
    return bool(abs(float(after.sum()) - float(before.sum())) <= rtol * scale
                and abs(float(tax.sum()) - lump * tax.size) <= rtol * scale
                and np.all(tax >= 0) and np.all(tax <= np.maximum(before, 0) + rtol * scale))


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)
