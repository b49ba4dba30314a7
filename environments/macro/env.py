"""Macro: households' work and consumption add up to prices, wages, unemployment and output.

EconAgent's economy (Li et al., ACL 2024; economics.md §4) on the engine, plus the
expectations survey of economics.md §5. One tick is one month; a year is 12 ticks.
Phases, in order:

- ``news``: shocks from config take effect (demand, supply, a rate change, news text).
- ``decide``: every household picks a work and a consumption propensity (0..1, steps 0.02).
- ``work``: each works the month's hours with probability p_w; the firm pays hours x wage;
  output = productivity x hours joins the inventory.
- ``tax``: US 2018 brackets (monthly) on income, revenue returned as an equal lump sum.
- ``market``: demand p_c x cash on hand / price, served in a seeded random order until the
  inventory runs out.
- ``adjust``: price and wages move with phi = (D - S)/max(D, S); savings earn the policy rate;
  at a year's end the annual figures are recorded and the Taylor rule sets next year's rate.
- ``survey``: every quarter (optional) households and a panel of experts forecast 12-month
  inflation and unemployment.

Coin moves only between accounts (households, the firm, the government, the central bank),
so their total is checked after every phase that moves coin; goods are checked likewise.
See docs/macro.md.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Optional

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from agents.base import Player
from agents.persona import population_for
from environments.common import ConservationError, event_study, gini, json_safe, per_usd
from environments.macro import baselines as bl
from environments.macro import metrics as mm
from environments.macro import rules
from environments.macro.actions import Decision, Forecast, decision, forecast
from environments.registry import register
from environments.taxation.schedule import US_2018_CUTOFFS_USD, US_2018_RATES, TaxSchedule, collect_and_redistribute
from environments.taxation.utility import isoelastic_utility
from sim.engine import ActRequest, Environment, MetricSpec, Truth
from sim.events import private

MONTHS_PER_YEAR = 12
CITIES = ("New York", "Chicago", "Houston", "Phoenix", "Philadelphia", "San Antonio", "San Diego", "Dallas")


class Shock(BaseModel):
    """One exogenous event. ``size``: demand and supply are relative (-0.2 = 20% less spending
    or output) for ``duration`` months; rate is an absolute change of the policy rate (0.02 =
    +2 points, until the next Taylor decision); news only adds ``text`` to households' prompts."""
    model_config = ConfigDict(extra="forbid")
    month: int = Field(..., ge=1)
    kind: Literal["demand", "supply", "rate", "news"]
    size: float = Field(0.0, ge=-0.9, le=10.0)
    duration: int = Field(1, ge=1)
    text: Optional[str] = Field(None, max_length=300)


class MacroConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["macro"] = "macro"
    n_households: int = Field(100, ge=2, le=100_000)
    months: int = Field(240, ge=1, le=100_000)
    hours_per_month: float = Field(168.0, gt=0)
    productivity: float = Field(1.0, gt=0)
    wage_pareto_shape: float = Field(8.0, gt=0)
    wage_max_multiplier: float = Field(950.0, ge=1)
    initial_savings_months: float = Field(0.0, ge=0)
    alpha_price: float = Field(0.10, ge=0, le=0.5)
    alpha_wage: float = Field(0.05, ge=0, le=0.5)
    imbalance_supply: Literal["production", "inventory"] = "production"
    taxes: Literal["us_2018", "none"] = "us_2018"
    cutoff_divisor: float = Field(12.0, gt=0)
    rate_initial: float = Field(0.03, ge=0, le=1)
    rate_natural: float = Field(0.01, ge=-1, le=1)
    inflation_target: float = Field(0.02, ge=-1, le=1)
    unemployment_natural: float = Field(0.04, ge=0, le=1)
    taylor_inflation: float = Field(0.5, ge=0, le=10)
    taylor_unemployment: float = Field(0.5, ge=0, le=10)
    scripted_rule: Literal["composite", "buffer_stock", "mix"] = "composite"
    composite_beta: float = Field(0.1, ge=0, le=10)
    composite_gamma: float = Field(0.1, ge=0, le=10)
    buffer_target_months: float = Field(2.0, ge=0)
    buffer_speed: float = Field(0.3, gt=0, le=1)
    buffer_income_weight: float = Field(0.1, gt=0, le=1)
    survey: bool = True
    survey_every: int = Field(3, ge=1)
    n_experts: int = Field(5, ge=0, le=1000)
    expectation_lambda: float = Field(0.3, gt=0, le=1)
    expectation_noise: float = Field(0.01, ge=0, le=1)
    expert_persistence: float = Field(0.5, ge=0, le=1)
    expert_noise: float = Field(0.003, ge=0, le=1)
    shocks: list[Shock] = Field(default_factory=list)
    event_window: int = Field(6, ge=1)
    utility_eta: float = Field(0.23, ge=0)
    utility_labor_cost: float = Field(0.21, ge=0)
    news_shown: int = Field(2, ge=0, le=20)
    decision_tokens: int = Field(32, ge=8, le=1024)
    survey_tokens: int = Field(32, ge=8, le=1024)


def tax_schedule(cfg: MacroConfig) -> TaxSchedule:
    """US 2018 single-filer brackets with annual dollar cutoffs / ``cutoff_divisor`` (monthly), or none."""
    cut = tuple(c / cfg.cutoff_divisor for c in US_2018_CUTOFFS_USD)
    return TaxSchedule(cut, US_2018_RATES if cfg.taxes == "us_2018" else (0.0,) * len(cut))


def shock_text(s: Shock) -> str:
    if s.text:
        return s.text
    if s.kind == "demand":
        return f"Consumer demand {'surges' if s.size > 0 else 'collapses'}: spending {100 * s.size:+.0f}% for " \
               f"{s.duration} month(s)."
    if s.kind == "supply":
        return f"Supply shock: output per hour {100 * s.size:+.0f}% for {s.duration} month(s)."
    if s.kind == "rate":
        return f"The central bank {'raises' if s.size > 0 else 'cuts'} its rate by {100 * abs(s.size):.1f} points."
    return "News."


class Household(Player):
    def role_text(self) -> str:
        m: MacroEnv = self.model
        c = m.cfg
        return (f"You live in {self.city} and work as a {self.persona.profession}. You are one of "
                f"{c.n_households} households in an economy with one good. Each month you choose how likely you "
                f"are to work ({c.hours_per_month:.0f} hours at your hourly wage) and what share of your savings "
                f"plus this month's income to spend on goods. Income is taxed by brackets and all tax is shared "
                f"equally. Savings earn the central bank's interest rate. Live well: consume, but do not run out.")


class Expert(Player):
    def role_text(self) -> str:
        return ("You are a professional macroeconomic forecaster. Each quarter you forecast inflation and "
                "unemployment over the next 12 months.")


@register
class MacroEnv(Environment):
    name = "macro"
    phases = ("news", "decide", "work", "tax", "market", "adjust", "survey")
    reads_events = False  # the outcome comes from the economy's state, never the event log
    Config = MacroConfig
    # ~13 importance a month per household, so the default reflection threshold (40) fires about quarterly
    memory_importance = {"household": 6, "economy": 5, "news": 9, "annual": 7, "forecast": 3, "survey_result": 4}

    metrics = (
        MetricSpec("price", "Price of goods", "coin per unit", "prices"),
        MetricSpec("wage_mean", "Mean hourly wage", "coin per hour", "prices"),
        MetricSpec("phi", "Demand-supply imbalance", "(D-S)/max(D,S)", "market"),
        MetricSpec("output", "Output", "units per month", "market"),
        MetricSpec("demand", "Demand", "units per month", "market"),
        MetricSpec("sales", "Sales", "units per month", "market"),
        MetricSpec("inventory", "Inventory", "units", "market"),
        MetricSpec("unemployment_month", "Unemployment (month)", "share of households", "labour", False),
        MetricSpec("policy_rate", "Policy rate in force", "per year", "policy"),
        MetricSpec("tax_revenue", "Tax revenue", "coin per month", "policy"),
        MetricSpec("lump_sum", "Lump-sum transfer", "coin per household", "policy"),
        MetricSpec("year", "Year", "year", "annual", doc="filled on each year's last month, else NaN"),
        MetricSpec("inflation", "Annual inflation", "rate", "annual", None,
                   doc="mean price this year / mean price last year - 1"),
        MetricSpec("wage_inflation", "Annual wage inflation", "rate", "annual", None,
                   doc="mean wage this year / last year - 1"),
        MetricSpec("unemployment", "Annual unemployment", "rate", "annual", False,
                   doc="household-months not worked / (12 N)"),
        MetricSpec("real_gdp", "Real GDP", "coin at first-month prices per year", "annual", True),
        MetricSpec("nominal_gdp", "Nominal GDP", "coin per year", "annual"),
        MetricSpec("interest_rate", "Interest rate (Taylor rule)", "per year", "annual",
                   doc="the rate set at the year's end for the next year"),
        MetricSpec("gini_wealth", "Wealth Gini", "0-1", "equality", False),
        MetricSpec("gini_income", "Income Gini", "0-1", "equality", False, doc="pre-tax income this month"),
        *(MetricSpec(f"spend_share_q{k}", f"Spending share of cash on hand, wealth quintile {k}", "share",
                     "consumption", doc="1 = poorest fifth; higher at low wealth is the usual finding")
          for k in range(1, 6)),
        *(MetricSpec(f"consumption_q{k}", f"Consumption, wealth quintile {k}", "units per household",
                     "consumption") for k in range(1, 6)),
        MetricSpec("survey_hh_inflation", "Households' expected inflation", "rate", "expectations",
                   doc="survey months only"),
        MetricSpec("survey_expert_inflation", "Experts' expected inflation", "rate", "expectations"),
        MetricSpec("survey_hh_unemployment", "Households' expected unemployment", "rate", "expectations"),
        MetricSpec("survey_expert_unemployment", "Experts' expected unemployment", "rate", "expectations"),
        MetricSpec("survey_dispersion_inflation", "Dispersion of households' inflation forecasts", "sd (rate)",
                   "expectations"),
        MetricSpec("survey_dispersion_unemployment", "Dispersion of households' unemployment forecasts",
                   "sd (rate)", "expectations"),
        MetricSpec("survey_gap_inflation", "Household - expert gap, inflation", "rate", "expectations"),
        MetricSpec("survey_gap_unemployment", "Household - expert gap, unemployment", "rate", "expectations"),
        MetricSpec("forecast_error_inflation", "Households' inflation forecast error", "mean |error| (rate)",
                   "expectations", False, doc="forecasts made 12 months earlier, scored now"),
        MetricSpec("forecast_error_unemployment", "Households' unemployment forecast error", "mean |error| (rate)",
                   "expectations", False),
        MetricSpec("expert_error_inflation", "Experts' inflation forecast error", "mean |error| (rate)",
                   "expectations", False),
        MetricSpec("welfare", "Welfare", "utility per household-month", "welfare", True,
                   doc="mean isoelastic utility of goods consumed minus labour cost"),
        MetricSpec("fallbacks", "Fallback decisions", "per month", "compute", False),
        MetricSpec("compute_usd", "All compute", "USD", "compute", False),
        MetricSpec("usd_per_household", "Compute per household", "USD", "compute", False),
        MetricSpec("welfare_per_usd", "Welfare per USD", "utility / USD", "compute", True,
                   doc="mean welfare per USD of compute (undefined when nothing was spent)"),
        MetricSpec("mean_inflation", "Mean annual inflation", "rate", "outcome", None, "outcome"),
        MetricSpec("mean_unemployment", "Mean annual unemployment", "rate", "outcome", False, "outcome"),
        MetricSpec("phillips_corr", "Phillips correlation (wage inflation, unemployment)", "correlation",
                   "outcome", None, "outcome"),
        MetricSpec("okun_corr", "Okun correlation (d unemployment, real GDP growth)", "correlation", "outcome",
                   None, "outcome"),
        MetricSpec("welfare", "Mean welfare", "utility per household-month", "outcome", True, "outcome"),
        MetricSpec("welfare_per_usd", "Welfare per USD", "utility / USD", "outcome", True, "outcome"),
        MetricSpec("usd_per_household", "Compute per household", "USD", "outcome", False, "outcome"),
        MetricSpec("gini_wealth", "Final wealth Gini", "0-1", "outcome", False, "outcome"),
    )

    glossary = {
        "months": "months simulated",
        "years": "years simulated (12 months each)",
        "n_households": "households in the economy",
        "final_price": "goods price in the last month",
        "price_index": "last month's price relative to the first month's",
        "final_rate": "central bank interest rate in the last month (Taylor rule, floored at 0)",
        "conservation_ok": "coin and goods were conserved in every month (1 = yes)",
        "event_study": "price reaction around the configured shock month",
    }
    quick = ("env.n_households=10", "env.months=24", "env.n_experts=2")
    # one household's month is the unit (outcome units: utility per household-month); ``stake`` scales
    # it by the coin the decision allocates (this month's potential pay plus savings) over the average
    # household's, so the average is 1. A survey forecast is a measurement that moves nothing (0)
    stakes = {"decide": 1.0, "forecast": 0.0}
    deliberate = ("decide",)  # by default a policy deliberates the household decision (deliberation.purposes)
    # oracle tiers' wrong answers: the other points of a 10-point grid (2,600 on the full menu is too many)
    TRUTH_GRID = tuple(range(0, 101, 10))

    @classmethod
    def population(cls, env_cfg: dict) -> int | None:
        e = MacroConfig.model_validate(env_cfg)
        return e.n_households + (e.n_experts if e.survey else 0)

    @classmethod
    def cross_check(cls, cfg: dict) -> str | None:
        e = MacroConfig.model_validate(cfg["env"])
        for i, s in enumerate(e.shocks):
            if s.month > e.months:
                return f"env.shocks[{i}].month={s.month}: after the last month (env.months={e.months})"
        return None

    def __init__(self, env_cfg: dict, seed: int, agent_cfg: dict | None = None, llm_cfg: dict | None = None):
        super().__init__(env_cfg, seed, agent_cfg, llm_cfg)
        self.cfg = MacroConfig.model_validate(env_cfg)
        self.schedule = tax_schedule(self.cfg)
        self.rate = self.cfg.rate_initial
        self.news: list[tuple[int, str]] = []
        self.annual: list[dict[str, float]] = []
        self.prices: list[float] = []  # after each month's adjustment
        self.wage_means: list[float] = []
        self.unemp: list[float] = []  # monthly
        self.output_real: list[float] = []
        self.output_nominal: list[float] = []
        self.welfare_months: list[float] = []
        self.surveys: list[dict[str, Any]] = []  # the last few, until scored
        self.row: dict[str, Any] = {}
        self.fallbacks = 0
        self.fallbacks_total = 0
        self.conservation_ok = True

    # ---- setup -----------------------------------------------------------------------
    @property
    def n(self) -> int:
        return self.cfg.n_households

    def horizon(self) -> int:
        return self.cfg.months

    def is_done(self) -> bool:
        return self.tick >= self.cfg.months and self.phase == self.phases[-1]

    def setup(self) -> None:
        c = self.cfg
        self.wage = rules.ranked_pareto_wages(self.n, self.rng_for("wages"), c.wage_pareto_shape,
                                              c.wage_max_multiplier)
        self.p0 = float(self.wage.mean())  # EconAgent: the first price is the mean wage
        self.price = self.p0
        self.wealth = c.initial_savings_months * c.hours_per_month * self.wage
        self.coin_initial = float(self.wealth.sum())
        self.firm = self.government = self.bank = 0.0
        self.flows = 0.0  # gross coin moved so far: the scale of float rounding in the totals
        self.inventory = self.produced = self.sold = 0.0
        self.work_p = np.ones(self.n)
        self.consume_p = np.full(self.n, 0.5)
        self.worked = np.zeros(self.n, dtype=bool)
        self.income = np.zeros(self.n)
        self.tax = np.zeros(self.n)
        self.lump = 0.0
        self.spent = np.zeros(self.n)
        self.goods = np.zeros(self.n)
        self.perm_income = c.hours_per_month * self.wage  # buffer-stock consumers' permanent income
        rng = self.rng_for("households")
        self.rule = (rng.integers(0, 2, self.n) if c.scripted_rule == "mix"
                     else np.full(self.n, int(c.scripted_rule == "buffer_stock")))  # 0 composite, 1 buffer
        lam = c.expectation_lambda
        self.lam = np.clip(rng.uniform(0.5 * lam, 1.5 * lam, self.n), 0.01, 1.0)
        self.exp_inflation = np.full(self.n, c.inflation_target)
        self.exp_unemployment = np.full(self.n, c.unemployment_natural)
        n_exp = c.n_experts if c.survey else 0
        personas = population_for(self, self.n + n_exp)
        mem = (self.agent_cfg or {}).get("memory") or {}
        self.households: list[Household] = []
        for i, p in enumerate(personas[: self.n]):
            h = Household(self, f"h{i + 1:03d}", p, "household", (), self.endpoint_for("household"), mem)
            h.city = str(p.demographics.get("city") or CITIES[int(rng.integers(len(CITIES)))])
            self.households.append(h)
        self.index = {h.aid: i for i, h in enumerate(self.households)}
        self.experts = [Expert(self, f"x{j + 1:02d}", p, "expert", (), self.endpoint_for("expert"), mem)
                        for j, p in enumerate(personas[self.n:])]
        self.emit("economy_start", {"n_households": self.n, "n_experts": n_exp, "price": self.p0,
                                    "wage_mean": self.p0, "rate": self.rate, "rules": c.model_dump(mode="json")})
        self.emit_many("profile", ((h.aid, {"household": h.aid, "wage": round(float(w), 4), "city": h.city,
                                            "job": h.persona.profession, "age": h.persona.age}, private(h.aid))
                                   for h, w in zip(self.households, self.wage)))

    # ---- helpers -----------------------------------------------------------------------
    def _all_scripted(self, agents) -> bool:
        return all(self.policy_of(a) == "scripted" for a in agents)

    def _active(self, kind: str) -> list[Shock]:
        return [s for s in self.cfg.shocks if s.kind == kind and s.month <= self.tick < s.month + s.duration]

    def _factor(self, kind: str) -> float:
        f = 1.0
        for s in self._active(kind):
            f *= 1.0 + s.size
        return f

    def _move(self, amount: float) -> None:
        self.flows += abs(float(amount))

    def _check(self, where: str) -> None:
        total = float(self.wealth.sum()) + self.firm + self.government + self.bank
        coin_ok = rules.conserved(total, self.coin_initial, self.flows + abs(self.coin_initial))
        # goods: nothing sold that was not made, and no shelf below zero
        goods_ok = (rules.conserved(self.inventory, self.produced - self.sold, self.produced)
                    and self.inventory >= -1e-9 * max(1.0, self.produced))
        if not (coin_ok and goods_ok):
            self.conservation_ok = False
            raise ConservationError(f"month {self.tick} {where}: coin {total!r} vs {self.coin_initial!r}, "
                                    f"inventory {self.inventory!r} vs produced - sold "
                                    f"{self.produced - self.sold!r}")

    def work_draws(self) -> np.ndarray:
        """This month's uniform per household for the work draw (works iff U < p_w). Seeded by month, so
        the composite rule (which spends from realised pay) and the work phase see the same draws."""
        return self.rng_for("work", self.tick).random(self.n)

    def inflation_now(self) -> float:
        return rules.trailing_inflation(self.prices, self.p0)

    def unemployment_now(self) -> float:
        return float(np.mean(self.unemp[-MONTHS_PER_YEAR:])) if self.unemp else math.nan

    # ---- phase: news -------------------------------------------------------------------
    def phase_news(self) -> None:
        for s in self.cfg.shocks:
            if s.month != self.tick:
                continue
            if s.kind == "rate":
                self.rate = max(0.0, self.rate + s.size)
            text = shock_text(s)
            self.news.append((self.tick, text))
            self.emit("news", {"kind": s.kind, "size": s.size, "duration": s.duration, "text": text,
                               "rate": self.rate})

    # ---- phase: decide -----------------------------------------------------------------
    def scripted_propensities(self) -> tuple[np.ndarray, np.ndarray]:
        """Every household's scripted choice this month, from what it knows at the start of it."""
        c = self.cfg
        z = c.hours_per_month * self.wage
        work = bl.composite_work(z, self.wealth, self.rate, c.composite_gamma)
        # EconAgent's complex_actions draws l first and spends from savings + l z (this month's realised
        # pre-tax pay); the work phase draws with the same uniforms, so the rule knows what will happen
        worked = self.work_draws() < work
        comp = bl.composite_consumption(self.price, self.wealth + worked * z, c.composite_beta)
        buf = bl.buffer_stock_consumption(self.wealth + self.perm_income, self.perm_income, c.buffer_target_months,
                                          c.buffer_speed)
        return work, np.where(self.rule == 1, buf, comp)

    def composite_choice(self, i: int) -> tuple[float, float]:
        """Household i's choice under EconAgent's composite rule this month (the oracle's ground truth)."""
        c = self.cfg
        z = c.hours_per_month * self.wage[i: i + 1]
        w = bl.composite_work(z, self.wealth[i: i + 1], self.rate, c.composite_gamma)
        worked = self.work_draws()[i: i + 1] < w
        k = bl.composite_consumption(self.price, self.wealth[i: i + 1] + worked * z, c.composite_beta)
        return float(w[0]), float(k[0])

    @classmethod
    def success_value(cls, outcome) -> float | None:
        """Mean monthly household welfare (cost-of-pass: USD per unit of welfare); None if undefined."""
        v = outcome.get("welfare")
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None

    def ground_truth(self, request: ActRequest) -> Truth | None:
        """A household's decision: right = the composite rule's choice, wrong = the other points of a coarse grid."""
        if request.purpose != "decide" or request.agent.aid not in self.index:
            return None
        w, k = self.composite_choice(self.index[request.agent.aid])
        right = decision(w, k)
        r = (right.work_pct, right.consume_pct)
        wrong = tuple(Decision(work_pct=a, consume_pct=b) for a in self.TRUTH_GRID for b in self.TRUTH_GRID
                      if (a, b) != r)
        # difficulty: propensities near one half (work or not, spend or save nearly balanced) are hard
        return Truth((right,), wrong, difficulty=1.0 - (abs(2 * w - 1) + abs(2 * k - 1)) / 2)

    def stake(self, request: ActRequest) -> float:
        """A household decision's stake (see ``stakes``): its coin at hand over the average household's."""
        i = self.index.get(request.agent.aid) if request.purpose == "decide" else None
        if i is None:
            return super().stake(request)
        coin = self.cfg.hours_per_month * self.wage + np.maximum(self.wealth, 0.0)
        mean = float(coin.mean())
        return float(self.stakes["decide"] * coin[i] / mean) if mean > 0 else float(self.stakes["decide"])

    def phase_decide(self) -> None:
        work, consume = self.scripted_propensities()
        self.fallbacks = 0
        if not self._all_scripted(self.households):
            reqs = [ActRequest(h, "decide", Decision, (lambda i=i: self.observation(i)),
                               (lambda w=float(work[i]), k=float(consume[i]): decision(w, k)),
                               max_tokens=self.cfg.decision_tokens)
                    for i, h in enumerate(self.households)]
            res = self.act_all(reqs)
            work = np.asarray([r.action.work_pct for r in res], dtype=float) / 100.0
            consume = np.asarray([r.action.consume_pct for r in res], dtype=float) / 100.0
            self.fallbacks = sum(not r.valid for r in res)
        self.work_p, self.consume_p = work, consume

    def observation(self, i: int) -> str:
        c = self.cfg
        m = self.tick
        y, mm_ = (m - 1) // MONTHS_PER_YEAR + 1, (m - 1) % MONTHS_PER_YEAR + 1
        lines = [f"Month {mm_} of year {y}. Your hourly wage: {self.wage[i]:.2f}; a month of work "
                 f"({c.hours_per_month:.0f} hours) pays {c.hours_per_month * self.wage[i]:,.0f} before tax."]
        if m > 1:
            lines.append(f"Last month you {'worked' if self.worked[i] else 'did not work'}: income "
                         f"{self.income[i]:,.0f}, tax paid {self.tax[i]:,.0f}, transfer received {self.lump:,.0f}; "
                         f"you spent {self.spent[i]:,.0f} on {self.goods[i]:,.1f} units of goods.")
        infl = self.inflation_now()
        lines.append(f"Your savings: {self.wealth[i]:,.0f}. Interest on savings: {100 * self.rate:.1f}% a year. "
                     f"Price of goods: {self.price:,.2f} per unit"
                     + (f" ({100 * infl:+.1f}% over 12 months)." if math.isfinite(infl) else "."))
        if self.annual:
            a = self.annual[-1]
            lines.append(f"Last year: unemployment {100 * a['unemployment']:.1f}%"
                         + (f", inflation {100 * a['inflation']:+.1f}%." if math.isfinite(a["inflation"]) else "."))
        recent = [t for mo, t in self.news if m - mo < MONTHS_PER_YEAR][-c.news_shown:] if c.news_shown else []
        if recent:
            lines.append("News: " + " ".join(recent))
        lines.append("Choose work_pct (your chance of working this month, percent) and consume_pct (the percent of "
                     "your savings plus this month's income to spend), each 0 to 100 in steps of 2.")
        return "\n".join(lines)

    # ---- phase: work -------------------------------------------------------------------
    def phase_work(self) -> None:
        c = self.cfg
        self.worked = self.work_draws() < self.work_p
        hours = c.hours_per_month * self.worked
        self.income = hours * self.wage
        paid = float(self.income.sum())
        self.wealth = self.wealth + self.income
        self.firm -= paid
        self._move(paid)
        self.out = float(hours.sum()) * c.productivity * self._factor("supply")
        self.inventory += self.out
        self.produced += self.out
        self._check("work")

    # ---- phase: tax --------------------------------------------------------------------
    def phase_tax(self) -> None:
        tax, lump, after = collect_and_redistribute(self.income, self.wealth, self.schedule)
        revenue = float(tax.sum())
        # through the government's account: collected, then paid out in full
        self.government += revenue - lump * self.n
        self.wealth = after
        self._move(2 * revenue)
        self.tax, self.lump = tax, lump
        ok = rules.conserved(self.government, 0.0, self.flows)
        self.emit("tax", {"revenue": round(revenue, 4), "lump_sum": round(lump, 4), "conservation_ok": ok})
        if not ok:
            self.conservation_ok = False
            raise ConservationError(f"month {self.tick}: the government kept {self.government!r} of the revenue")
        self.government = 0.0  # rounding only (checked just above)
        self._check("tax")

    # ---- phase: market -----------------------------------------------------------------
    def phase_market(self) -> None:
        cash = np.maximum(self.wealth, 0.0)
        share = np.minimum(1.0, self.consume_p * self._factor("demand"))
        want = share * cash / self.price
        stock = self.inventory
        got = rules.serve(want, stock, self.rng_for("order", self.tick).permutation(self.n))
        spent = got * self.price
        self.wealth = self.wealth - spent
        total = float(spent.sum())
        self.firm += total
        self._move(total)
        self.inventory -= float(got.sum())
        self.sold += float(got.sum())
        self.cash_on_hand, self.spent, self.goods = cash, spent, got
        self.demand_units, self.supply_units = float(want.sum()), stock
        self._check("market")

    # ---- phase: adjust -----------------------------------------------------------------
    def phase_adjust(self) -> None:
        c = self.cfg
        supply = self.out if c.imbalance_supply == "production" else self.supply_units
        self.phi = rules.imbalance(self.demand_units, supply)
        self.price = float(rules.adjust(self.price, self.phi, c.alpha_price, self.rng_for("price", self.tick).random()))
        self.wage = rules.adjust(self.wage, self.phi, c.alpha_wage, self.rng_for("wage", self.tick).random(self.n))
        interest = np.maximum(self.wealth, 0.0) * self.rate / MONTHS_PER_YEAR
        paid = float(interest.sum())
        self.wealth = self.wealth + interest
        self.bank -= paid
        self._move(paid)
        self._check("adjust")
        after_tax = self.income - self.tax + self.lump
        w = c.buffer_income_weight
        self.perm_income = (1 - w) * self.perm_income + w * after_tax
        self.prices.append(self.price)
        self.wage_means.append(float(self.wage.mean()))
        self.unemp.append(float(1.0 - self.worked.mean()))
        self.output_real.append(self.out * self.p0)
        self.output_nominal.append(self.out * self.prices[-2] if len(self.prices) > 1 else self.out * self.p0)
        u = isoelastic_utility(self.goods, c.hours_per_month * self.worked, c.utility_eta, c.utility_labor_cost)
        self.welfare_months.append(float(np.mean(u)))
        self.row = self._month_row()
        self.emit("economy", {k: _r(self.row[k]) for k in ("price", "wage_mean", "unemployment_month", "output",
                                                          "demand", "sales", "inventory", "phi", "policy_rate")})
        self.emit_many("household", ((h.aid, {
            "household": h.aid, "work_pct": int(round(100 * self.work_p[i])),
            "consume_pct": int(round(100 * self.consume_p[i])), "worked": bool(self.worked[i]),
            "income": round(float(self.income[i]), 2), "tax": round(float(self.tax[i]), 2),
            "transfer": round(self.lump, 2), "spent": round(float(self.spent[i]), 2),
            "goods": round(float(self.goods[i]), 4), "savings": round(float(self.wealth[i]), 2),
            "wage": round(float(self.wage[i]), 4)}, private(h.aid)) for i, h in enumerate(self.households)))
        if self.tick % MONTHS_PER_YEAR == 0:
            self._year_end()

    def _month_row(self) -> dict[str, Any]:
        q = mm.wealth_quintiles(self.cash_on_hand)
        share = mm.by_quintile(mm.spending_share(self.spent, self.cash_on_hand), q)
        goods = mm.by_quintile(self.goods, q)
        row = {"month": self.tick, "price": self.price, "wage_mean": float(self.wage.mean()), "phi": self.phi,
               "output": self.out, "demand": self.demand_units, "sales": float(self.goods.sum()),
               "inventory": self.inventory, "unemployment_month": self.unemp[-1], "policy_rate": self.rate,
               "tax_revenue": float(self.tax.sum()), "lump_sum": self.lump,
               "gini_wealth": float(gini(np.maximum(self.wealth, 0.0))), "gini_income": float(gini(self.income)),
               "welfare": self.welfare_months[-1], "fallbacks": self.fallbacks}
        for k in range(5):
            row[f"spend_share_q{k + 1}"] = float(share[k])
            row[f"consumption_q{k + 1}"] = float(goods[k])
        self.fallbacks_total += self.fallbacks
        return row

    def _year_end(self) -> None:
        c = self.cfg
        y = self.tick // MONTHS_PER_YEAR
        sl = slice((y - 1) * MONTHS_PER_YEAR, y * MONTHS_PER_YEAR)
        a = {"year": float(y), "inflation": rules.annual_change(self.prices, y),
             "wage_inflation": rules.annual_change(self.wage_means, y),
             "unemployment": float(np.mean(self.unemp[sl])), "real_gdp": float(np.sum(self.output_real[sl])),
             "nominal_gdp": float(np.sum(self.output_nominal[sl]))}
        self.rate = rules.taylor_rate(a["inflation"], a["unemployment"], c.rate_natural, c.inflation_target,
                                      c.unemployment_natural, c.taylor_inflation, c.taylor_unemployment)
        a["interest_rate"] = self.rate
        self.annual.append(a)
        self.emit("annual", {k: _r(v) for k, v in a.items()})

    # ---- phase: survey -----------------------------------------------------------------
    def phase_survey(self) -> None:
        c = self.cfg
        self._score_surveys()
        if not c.survey or self.tick % c.survey_every != 0:
            return
        pi, u = self.inflation_now(), self.unemployment_now()
        rng = self.rng_for("expect", self.tick)
        # households: adaptive expectations with their own lambda, plus noise (and whole-percent answers)
        self.exp_inflation = bl.adaptive(self.exp_inflation, pi, self.lam)
        self.exp_unemployment = bl.adaptive(self.exp_unemployment, u, self.lam)
        hh_pi = self.exp_inflation + rng.normal(0.0, c.expectation_noise, self.n)
        hh_u = self.exp_unemployment + rng.normal(0.0, c.expectation_noise, self.n)
        m = len(self.experts)
        ex_pi = bl.anchored(pi, c.inflation_target, c.expert_persistence, m) + rng.normal(0.0, c.expert_noise, m)
        ex_u = bl.anchored(u, c.unemployment_natural, c.expert_persistence, m) + rng.normal(0.0, c.expert_noise, m)
        agents = [*self.households, *self.experts]
        scripted = [forecast(a, b) for a, b in zip(np.concatenate([hh_pi, ex_pi]), np.concatenate([hh_u, ex_u]))]
        if self._all_scripted(agents):
            answers = scripted
        else:
            reqs = [ActRequest(a, "forecast", Forecast, (lambda a=a: self.survey_observation(a)),
                               (lambda f=f: f), max_tokens=c.survey_tokens) for a, f in zip(agents, scripted)]
            res = self.act_all(reqs)
            answers = [r.action for r in res]
            self.fallbacks_total += sum(not r.valid for r in res)
        f_pi = np.asarray([f.inflation_pct for f in answers], dtype=float) / 100.0
        f_u = np.asarray([f.unemployment_pct for f in answers], dtype=float) / 100.0
        self.emit_many("forecast", ((a.aid, {"agent": a.aid, "inflation_pct": f.inflation_pct,
                                             "unemployment_pct": f.unemployment_pct}, private(a.aid))
                                    for a, f in zip(agents, answers)))
        s = {"month": self.tick, "price": self.price, "hh_pi": f_pi[: self.n], "hh_u": f_u[: self.n],
             "ex_pi": f_pi[self.n:], "ex_u": f_u[self.n:]}
        self.surveys.append(s)
        res_row = {"survey_hh_inflation": float(s["hh_pi"].mean()), "survey_hh_unemployment": float(s["hh_u"].mean()),
                   "survey_expert_inflation": float(s["ex_pi"].mean()) if m else math.nan,
                   "survey_expert_unemployment": float(s["ex_u"].mean()) if m else math.nan,
                   "survey_dispersion_inflation": mm.dispersion(s["hh_pi"]),
                   "survey_dispersion_unemployment": mm.dispersion(s["hh_u"])}
        res_row["survey_gap_inflation"] = res_row["survey_hh_inflation"] - res_row["survey_expert_inflation"]
        res_row["survey_gap_unemployment"] = res_row["survey_hh_unemployment"] - res_row["survey_expert_unemployment"]
        self.row.update(res_row)
        self.emit("survey_result", {k: _r(v) for k, v in res_row.items()})

    def survey_observation(self, a: Player) -> str:
        pi, u = self.inflation_now(), self.unemployment_now()
        lines = [f"Survey, month {self.tick}. Prices changed {100 * pi:+.1f}% over the last 12 months; unemployment "
                 f"averaged {100 * u:.1f}%. The central bank's rate is {100 * self.rate:.1f}% and its inflation "
                 f"target {100 * self.cfg.inflation_target:.0f}%."]
        recent = [t for mo, t in self.news if self.tick - mo < MONTHS_PER_YEAR][-self.cfg.news_shown:]
        if recent and self.cfg.news_shown:
            lines.append("News: " + " ".join(recent))
        lines.append("Forecast inflation (inflation_pct, whole percent, -10 to 30) and unemployment "
                     "(unemployment_pct, whole percent, 0 to 50) over the next 12 months.")
        return "\n".join(lines)

    def _score_surveys(self) -> None:
        """Forecasts made 12 months ago meet what happened since."""
        due = [s for s in self.surveys if self.tick - s["month"] == MONTHS_PER_YEAR]
        self.surveys = [s for s in self.surveys if self.tick - s["month"] < MONTHS_PER_YEAR]
        for s in due:
            pi = self.price / s["price"] - 1.0
            u = float(np.mean(self.unemp[-MONTHS_PER_YEAR:]))
            self.row.update({"forecast_error_inflation": mm.mean_abs_error(s["hh_pi"], pi),
                             "forecast_error_unemployment": mm.mean_abs_error(s["hh_u"], u),
                             "expert_error_inflation": mm.mean_abs_error(s["ex_pi"], pi)})

    # ---- results -----------------------------------------------------------------------
    def usd(self) -> float:
        return self.svc.spend.usd() if self.svc is not None else 0.0

    def tick_metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: math.nan for k in TICK_KEYS}
        out.update(self.row)
        if self.tick % MONTHS_PER_YEAR == 0 and self.annual:
            out.update(self.annual[-1])
        usd = self.usd()
        out["compute_usd"] = usd
        out["usd_per_household"] = usd / self.n
        out["welfare_per_usd"] = per_usd(out.get("welfare"), usd)
        out["conservation_ok"] = bool(self.conservation_ok)
        self.row = {}
        return out

    def years_frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.annual) if self.annual else pl.DataFrame()

    def partial_outcome(self) -> dict[str, Any]:
        return json_safe({"months": int(self.tick), "years": len(self.annual), "price": self.price,
                          "conservation_ok": self.conservation_ok})

    def outcome(self, events=None) -> dict[str, Any]:
        a = self.annual
        infl = [x["inflation"] for x in a if math.isfinite(x["inflation"])]
        wage_infl = [x["wage_inflation"] for x in a]
        unemp = [x["unemployment"] for x in a]
        usd = self.usd()
        welfare = float(np.mean(self.welfare_months)) if self.welfare_months else math.nan
        out: dict[str, Any] = {
            "months": int(self.tick), "years": len(a), "n_households": self.n,
            "final_price": self.price, "price_index": self.price / self.p0,
            "mean_inflation": float(np.mean(infl)) if infl else None,
            "inflation_range": [min(infl), max(infl)] if infl else None,
            "mean_unemployment": float(np.mean(unemp)) if unemp else None,
            "unemployment_range": [min(unemp), max(unemp)] if unemp else None,
            # year 1 has no wage inflation: correlations use years 2.. (NaN pairs are dropped)
            "phillips_corr": mm.phillips(wage_infl, unemp),
            "okun_corr": mm.okun(unemp, [x["real_gdp"] for x in a]),
            "final_rate": self.rate, "gini_wealth": float(gini(np.maximum(self.wealth, 0.0))),
            "welfare": welfare, "compute_usd": usd, "usd_per_household": usd / self.n,
            "welfare_per_usd": per_usd(welfare, usd), "fallbacks": self.fallbacks_total,
            "conservation_ok": self.conservation_ok, "annual": a, "event_study": self.event_studies(),
        }
        return json_safe(out)

    def event_studies(self) -> list[dict[str, Any]] | None:
        """Price, unemployment and output just before vs from each shock month (as the market's event study)."""
        if not self.cfg.shocks or not self.prices:
            return None
        months = list(range(1, len(self.prices) + 1))
        out = []
        for s in self.cfg.shocks:
            row: dict[str, Any] = {"month": s.month, "kind": s.kind, "size": s.size, "window": self.cfg.event_window}
            for key, series in (("price", self.prices), ("unemployment", self.unemp), ("output", self.output_real)):
                es = event_study(pl.DataFrame({"tick": months, "price": series}), s.month, self.cfg.event_window)
                row[key] = es
            expected = {"demand": 1.0, "supply": -1.0}.get(s.kind)
            sign = row["price"]["sign"]
            row["expected_price_sign"] = (None if expected is None or s.size == 0
                                          else math.copysign(1.0, expected * s.size))
            row["sign_matches"] = (None if row["expected_price_sign"] is None or not sign
                                   else sign == row["expected_price_sign"])
            out.append(row)
        return out

    @classmethod
    def report_lines(cls, summary: dict) -> list[str]:
        o = summary.get("outcome") or {}
        lines = [f"macro: {o.get('n_households')} households, {o.get('years', 0)} years; price index "
                 f"{_fmt(o.get('price_index'), '.3f')}, final rate {_fmt(o.get('final_rate'), '.3f')}"]
        if o.get("mean_inflation") is not None:
            lo, hi = o.get("inflation_range") or (None, None)
            lines.append(f"inflation mean {100 * o['mean_inflation']:+.2f}% (years 2..: {_fmt(lo, '+.3f')} to "
                         f"{_fmt(hi, '+.3f')}); unemployment mean {100 * (o.get('mean_unemployment') or 0):.2f}%")
        lines.append(f"Phillips corr {_fmt(o.get('phillips_corr'), '+.2f')}; "
                     f"Okun corr {_fmt(o.get('okun_corr'), '+.2f')}")
        if o.get("welfare_per_usd") is not None:
            lines.append(f"welfare per USD of compute: {o['welfare_per_usd']:.4g}")
        for es in o.get("event_study") or []:
            p = es["price"]
            if p.get("change_pct") is None:
                lines.append(f"event study ({es['kind']} {es['size']:+g} at month {es['month']}): not enough months")
                continue
            verdict = {True: "matches", False: "opposes", None: "no expected sign"}[es.get("sign_matches")]
            lines.append(f"event study: {es['kind']} {es['size']:+g} at month {es['month']}; price "
                         f"{p['pre_mean']:.2f} -> {p['post_mean']:.2f} ({p['change_pct']:+.2f}%, {verdict}); "
                         f"unemployment {_fmt(es['unemployment']['pre_mean'], '.3f')} -> "
                         f"{_fmt(es['unemployment']['post_mean'], '.3f')}")
        return lines


TICK_KEYS = tuple(m.key for m in MacroEnv.metrics if m.source == "tick")


def _r(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return None if not math.isfinite(x) else round(float(x), 6)
    return x


def _fmt(x: Any, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)
