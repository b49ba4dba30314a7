"""Deliberation policies: how an agent turns one decision into model calls.

A policy wraps the act seam (``Environment.act_all``): for an llm-policy request whose
purpose the environment declares a stake for (``Environment.stakes``, or
``deliberation.purposes``), ``Deliberation.plan`` reserves the call ids the policy may
use, in the seeded request order, and ``decide`` spends them through the metered client
(budget, ledger and replay apply to every call as to any other). ``single`` plans
nothing, so a run without deliberation makes exactly the calls it always made.

Policies (see docs/compute-economics.md):
- ``cascade`` (FrugalGPT): tiers in order; accept tier i's answer when the scorer's value
  exceeds ``thresholds[i]``, else escalate; the last tier's answer is always accepted.
- ``router`` (Hybrid LLM): the small tier (first) when the predicted accuracy gap to the
  large one (last) at this decision's difficulty is under ``router_threshold``.
- ``best_of_n``: ``n`` samples of the first tier; ``select`` = majority (plurality, seeded
  tie-break), best (highest scorer value) or best_of_majority (the best-scored among the
  ``keep_top`` most frequent answers).
- ``voc_gate`` (rational metareasoning): deliberate more only when the expected gain times the
  decision's stake (``Environment.stake``) exceeds the extra expected cost. ``extra=tier`` (the
  default): the tier maximising accuracy x stake x ``usd_per_stake`` - expected cost x
  (1 + ``compute_tax``), so a larger tier is used only when its expected gain exceeds its extra
  cost. ``extra=samples``: one call of the first tier, or ``samples`` calls of it combined by
  ``select``, the latter iff (P_maj(a, n) - a) x stake x ``usd_per_stake`` > (n - 1) x c x
  (1 + ``compute_tax``), with P_maj the majority-of-n closed form of a binary decision at the
  tier's accuracy a (at this decision's difficulty; ties broken uniformly) and c its expected
  cost per call.
- ``latent_budget`` (L-IBM): each agent draws its compute budget once per run, a persona trait
  (``Persona.compute_budget``, recorded by a ``persona_trait`` event no agent sees: the budget
  is latent). ``budget_kind=samples``: a number of samples from ``budgets`` (weights
  ``budget_weights``), and it takes the majority of that many samples of the first tier.
  ``budget_kind=tier``: a tier cap from ``tiers`` (weights ``budget_weights``, one per tier),
  and it runs the cascade truncated at its cap (an anytime procedure cut at its budget): an
  agent capped at the first tier never escalates.

Scorers: ``oracle`` (says accept with probability ``tpr`` on a right answer and ``fpr`` on
a wrong one, judged against ``Environment.ground_truth``), ``agreement`` (the share of
``samples`` draws that agree with their most frequent answer) or ``confidence`` (the answer's
self-reported ``confidence``, 0-100, divided by 100). With the confidence scorer the request's
action class is extended with ``confidence: int`` (0-100, default 50) and the prompt asks for
it; the environment still receives its own action class (the field is stripped). Oracle tiers
fill it from the scorer's ``tpr``/``fpr`` (sim/inference/providers/oracle.py), so a threshold of
0.5 accepts at the oracle scorer's rates. An answer without one (a scripted tier, a fallback)
scores 0.5.

One record per deliberated decision lands in ``env.deliberations`` and, at finish, in
``deliberation.parquet``.
"""
from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from math import comb
from typing import Any, Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from sim.events import private
from sim.inference.types import ChatRequest, json_schema
from sim.seeding import derive_seed

POLICIES = ("single", "cascade", "router", "best_of_n", "voc_gate", "latent_budget")


# ---------------------------------------------------------------- config (defaults live here)
class ScorerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    kind: Literal["oracle", "agreement", "confidence"] = "oracle"
    tpr: float = Field(0.9, ge=0, le=1)  # oracle: P(accept | right answer)
    fpr: float = Field(0.2, ge=0, le=1)  # oracle: P(accept | wrong answer)
    samples: int = Field(3, ge=1, le=64)  # agreement: draws per tier


class TierEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    accuracy: float = Field(ge=0, le=1)
    difficulty_slope: float = 0.0
    cost_usd: float = Field(ge=0)


class PolicyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    policy: Literal["single", "cascade", "router", "best_of_n", "voc_gate", "latent_budget"] = "single"
    # cheapest first: oracle tier names on the agent's endpoint (llm.oracle.tiers), or models it prices;
    # empty: the endpoint's own model
    tiers: list[str] = []
    thresholds: list[float] = []  # cascade: accept tier i when its score > thresholds[i] (default 0.5)
    scorer: ScorerConfig = ScorerConfig()
    n: int = Field(5, ge=1, le=256)  # best_of_n samples
    select: Literal["majority", "best", "best_of_majority"] = "majority"
    keep_top: int = Field(2, ge=1)  # best_of_majority: keep the answers among the keep_top most frequent
    router_threshold: float = 0.1  # router: small tier iff predicted accuracy gap < this
    usd_per_stake: float = Field(1.0, ge=0)  # voc_gate: USD value of one unit of a decision's stake
    compute_tax: float = Field(0.0, ge=0)  # voc_gate: tax on compute spend (tau_c)
    # voc_gate: what "deliberate more" means: a larger tier (tier) or more samples of the first tier (samples)
    extra: Literal["tier", "samples"] = "tier"
    samples: int = Field(3, ge=2, le=256)  # voc_gate (extra=samples): samples when it deliberates more
    # router/voc_gate: accuracy and expected cost per tier; oracle tiers default to their config
    estimates: dict[str, TierEstimate] = {}
    # latent_budget: what an agent draws once per run: a number of samples, or a tier cap (the cascade
    # over ``tiers`` stops at its cap)
    budget_kind: Literal["samples", "tier"] = "samples"
    budgets: list[int] = [1, 3, 5]  # latent_budget (samples): sample counts an agent may draw
    budget_weights: list[float] = []  # latent_budget: probabilities of the budgets (or tiers); uniform when empty
    # deliberate only for these agents (ids) or in these phases; null: all. The others make the
    # endpoint's single call: the baseline of a Shapley coalition (sim/shapley.py)
    agents: Optional[list[str]] = None
    phases: Optional[list[str]] = None
    purposes: Optional[list[str]] = None  # decisions deliberated; null: those the environment gives a stake

    @model_validator(mode="after")
    def _consistent(self) -> "PolicyConfig":
        if self.thresholds and len(self.thresholds) != max(len(self.tiers) - 1, 0):
            raise ValueError(f"thresholds: {len(self.thresholds)} given for {len(self.tiers)} tiers; "
                             "one per tier except the last")
        if (self.policy in ("cascade", "router") or (self.policy == "voc_gate" and self.extra == "tier")) \
                and len(self.tiers) < 2:
            raise ValueError(f"policy={self.policy} needs at least two tiers (deliberation.tiers=[small,large])")
        if any(b < 1 for b in self.budgets) or not self.budgets:
            raise ValueError("budgets: a non-empty list of sample counts >= 1")
        drawn = self.tiers if self.budget_kind == "tier" else self.budgets
        if self.policy == "latent_budget" and self.budget_kind == "tier" and not self.tiers:
            raise ValueError("budget_kind=tier draws a tier cap from tiers: give deliberation.tiers=[small,...]")
        if self.budget_weights and (len(self.budget_weights) != len(drawn)
                                    or any(w < 0 for w in self.budget_weights) or sum(self.budget_weights) <= 0):
            what = "tier" if self.budget_kind == "tier" else "budget"
            raise ValueError(f"budget_weights: one non-negative weight per {what} ({len(drawn)}), not all zero")
        return self


class DeliberationConfig(PolicyConfig):
    # per-role overrides merged onto the fields above (deliberation.by_role.faithful.policy=cascade)
    by_role: dict[str, dict[str, Any]] = {}
    # tiers served by another provider: llm overrides merged onto the llm section, as agent.llm_by_role's are
    # (deliberation.tier_llm.small={provider: local, model: smollm2-135m-instruct}); the tier is then an endpoint
    tier_llm: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _roles(self) -> "DeliberationConfig":
        for role in self.by_role:
            self.for_role(role)
        return self

    def for_role(self, role: str) -> PolicyConfig:
        over = self.by_role.get(role)
        base = self.model_dump(exclude={"by_role", "tier_llm"})
        if not over:
            return PolicyConfig.model_validate(base)
        try:
            return PolicyConfig.model_validate({**base, **over})
        except Exception as e:  # noqa: BLE001 - re-raised naming the role
            raise ValueError(f"by_role.{role}: {str(e).splitlines()[-1] if str(e) else e}") from None


# ---------------------------------------------------------------- runtime
@dataclass
class Plan:
    """One decision's deliberation: its request, the call ids reserved for it, what happened."""

    env: Any
    request: Any  # sim.engine.ActRequest
    base: ChatRequest
    cfg: PolicyConfig
    ids: list[int]
    truth: Any
    stake: float
    ledger_from: int
    budget: int | None = None
    tiers_tried: list[str] = field(default_factory=list)
    samples: int = 0
    scores: list[float] = field(default_factory=list)
    result: Any = None
    used: list[int] = field(default_factory=list)
    # the class the calls ask for: the request's, extended with ``confidence`` for the confidence scorer
    action_cls: Any = None
    confidences: dict[int, int] = field(default_factory=dict)  # call id -> the answer's stated confidence


class Deliberation:
    """The configured policies of one run (``Services.deliberation``)."""

    def __init__(self, cfg: DeliberationConfig, run_cfg: dict, client):
        self.cfg = cfg
        self.run_cfg = run_cfg
        self.client = client
        self._roles: dict[str, PolicyConfig] = {}
        self._budgets_drawn = False

    @classmethod
    def from_config(cls, run_cfg: dict, client, cache_mode: str | None = None) -> "Deliberation | None":
        """None when every role's policy is ``single`` (then the engine takes its usual path).

        Tiers with their own provider (``tier_llm``) become client endpoints ``tier:<name>``.
        """
        d = DeliberationConfig.model_validate(run_cfg.get("deliberation") or {})
        if d.policy == "single" and all(d.for_role(r).policy == "single" for r in d.by_role):
            return None
        self = cls(d, run_cfg, client)
        for name in d.tier_llm:
            llm = self.llm_for(f"tier:{name}")
            mode = cache_mode or (llm.get("cache") or {}).get("mode", "off")
            client.add_endpoint(f"tier:{name}", llm, mode)
        return self

    def llm_for(self, ep_name: str) -> dict:
        """The llm config an endpoint is built from: the llm section with a role's or a tier's overrides."""
        llm = self.run_cfg["llm"]
        if ep_name.startswith("role:"):
            over = ((self.run_cfg.get("agent") or {}).get("llm_by_role") or {}).get(ep_name[5:]) or {}
        elif ep_name.startswith("tier:"):
            over = self.cfg.tier_llm.get(ep_name[5:]) or {}
        else:
            over = {}
        return {**llm, **over, "prices": {**(llm.get("prices") or {}), **(over.get("prices") or {})},
                "oracle": over.get("oracle") or llm.get("oracle")}

    def policy_for(self, role: str) -> PolicyConfig:
        p = self._roles.get(role)
        if p is None:
            p = self._roles[role] = self.cfg.for_role(role)
        return p

    # -- planning (engine thread, seeded request order) ---------------------
    def plan(self, env, r, base: ChatRequest) -> Plan | None:
        pc = self.policy_for(r.agent.role)
        if pc.policy == "single":
            return None
        purposes = pc.purposes if pc.purposes is not None else env.deliberated_purposes()
        if r.purpose not in purposes:
            return None
        if (pc.agents is not None and r.agent.aid not in pc.agents) or (pc.phases is not None
                                                                         and env.phase not in pc.phases):
            return None  # outside the coalition: the endpoint's single call
        budget = None
        if pc.policy == "latent_budget":
            if not self._budgets_drawn:  # every deliberating agent's trait, drawn at the first decision
                self._budgets_drawn = True
                self.draw_budgets(env)
            budget = self.persona_budget(env, r.agent, pc)
        n_calls = self._max_calls(pc, budget)
        ids = [base.meta.call_id] + [self.client.new_call_id() for _ in range(n_calls - 1)]
        truth, stake = env.assess(r)
        action_cls = r.action_cls
        if self.asks_confidence(pc) and "confidence" not in r.action_cls.model_fields:
            action_cls = with_confidence(r.action_cls)
            base = self._confidence_request(base, r, action_cls)
            if truth is not None:  # oracle tiers state their confidence at the scorer's rates
                truth = replace(truth, confidence=(pc.scorer.tpr, pc.scorer.fpr))
        return Plan(env, r, base, pc, ids, truth, float(stake), len(self.client.ledger.rows), budget,
                    action_cls=action_cls)

    @staticmethod
    def asks_confidence(pc: PolicyConfig) -> bool:
        """Whether the policy reads the confidence scorer (and so asks each answer for a confidence)."""
        if pc.scorer.kind != "confidence":
            return False
        return (pc.policy == "cascade" or (pc.policy == "latent_budget" and pc.budget_kind == "tier")
                or ((pc.policy == "best_of_n" or (pc.policy == "voc_gate" and pc.extra == "samples"))
                    and pc.select != "majority"))

    def _confidence_request(self, base: ChatRequest, r, ext: type[BaseModel]) -> ChatRequest:
        """The request asking for ``ext`` (the action plus ``confidence``): its schema, and a prompt that
        lists the field and says what it means."""
        from agents.base import schema_fields
        from sim.engine import request_cap

        old, new = schema_fields(r.action_cls), schema_fields(ext)
        msgs = [(role, c.replace(old, new)) for role, c in base.messages]
        role, last = msgs[-1]
        msgs[-1] = (role, f"{last}\n{CONFIDENCE_NOTE}")
        schema = json_schema(ext)
        return base.with_(messages=tuple(msgs), schema=schema,
                          max_tokens=request_cap(r, self.client.endpoint(base.meta.endpoint), schema))

    @staticmethod
    def _max_calls(pc: PolicyConfig, budget: int | None) -> int:
        per_tier = pc.scorer.samples if pc.scorer.kind == "agreement" else 1
        if pc.policy == "cascade":
            return per_tier * len(pc.tiers)
        if pc.policy == "best_of_n":
            return pc.n
        if pc.policy == "voc_gate" and pc.extra == "samples":
            return pc.samples
        if pc.policy == "latent_budget":
            return per_tier * int(budget or 1) if pc.budget_kind == "tier" else int(budget or 1)
        return 1

    def draw_budgets(self, env) -> None:
        """Every model-driven agent whose policy is latent_budget gets its budget as a persona trait."""
        for a in env.players():
            pc = self.policy_for(a.role)
            if pc.policy == "latent_budget" and (pc.agents is None or a.aid in pc.agents) \
                    and env.policy_of(a) == "llm":
                self.persona_budget(env, a, pc)

    def persona_budget(self, env, agent, pc: PolicyConfig) -> int:
        """The agent's compute budget: its persona's trait, drawn and attached the first time.

        The draw is a pure function of the run's seed and the agent's id, so a resumed run (whose
        checkpointed personas hold it) and a fresh one agree. The ``persona_trait`` event records it;
        it is private to the engine, so no agent's memory holds it (the budget is latent).
        """
        persona = agent.persona
        if persona.compute_budget is not None and persona.compute_budget_kind == pc.budget_kind:
            return int(persona.compute_budget)
        budget = self.latent_budget(env, agent.aid, pc)
        agent.persona = persona.with_compute_budget(budget, pc.budget_kind)
        env.emit("persona_trait", {"agent": agent.aid, "persona": agent.persona.name, "trait": "compute_budget",
                                   "value": budget, "kind": pc.budget_kind}, visibility=private("engine"))
        return budget

    @staticmethod
    def latent_budget(env, aid: str, pc: PolicyConfig) -> int:
        """The agent's budget, drawn once per run from its own seeded stream (a persona trait): samples per
        decision, or (``budget_kind=tier``) how many tiers, cheapest first, its cascade may use."""
        drawn = list(range(1, len(pc.tiers) + 1)) if pc.budget_kind == "tier" else pc.budgets
        w = np.asarray(pc.budget_weights or [1.0] * len(drawn), dtype=float)
        u = float(env.rng_for("latent_budget", aid).random())
        k = int(np.searchsorted(np.cumsum(w / w.sum()), u, side="right"))
        return int(drawn[min(k, len(drawn) - 1)])

    # -- deciding (the run's event loop) ------------------------------------
    async def decide(self, p: Plan, client, reasks: int):
        pc = p.cfg
        tiers = pc.tiers or [p.base.model]
        if pc.policy == "latent_budget" and pc.budget_kind == "tier":
            # the cascade cut at the agent's tier cap; thresholds are those of the tiers below the cap
            tiers, pc = tiers[: int(p.budget or 1)], pc.model_copy(update={"policy": "cascade"})
            pc.thresholds = (pc.thresholds or [0.5] * (len(pc.tiers) - 1))[: len(tiers) - 1]
        if pc.policy == "cascade":
            thresholds = pc.thresholds or [0.5] * (len(tiers) - 1)
            for tier, threshold in zip(tiers[:-1], thresholds):
                res, score = await self._scored(p, client, tier, reasks)
                if score > threshold:
                    return self._done(p, res)
            return self._done(p, await self._call(p, client, tiers[-1], reasks))  # the last tier is kept
        if pc.policy == "router" or (pc.policy == "voc_gate" and pc.extra == "tier"):
            tier = self.route(p) if pc.policy == "router" else self.voc_choice(p)
            return self._done(p, await self._call(p, client, tier, reasks))
        if pc.policy == "voc_gate":  # extra=samples: one call, or `samples` of them when it pays
            n = self.voc_samples(p)
            return self._done(p, await self._sampled(p, client, tiers[0], n, pc.select if n > 1 else "majority",
                                                     reasks))
        if pc.policy in ("best_of_n", "latent_budget"):
            n = pc.n if pc.policy == "best_of_n" else int(p.budget or 1)
            select = pc.select if pc.policy == "best_of_n" else "majority"
            return self._done(p, await self._sampled(p, client, tiers[0], n, select, reasks))
        raise ValueError(f"deliberation policy {pc.policy!r} has no decide step")

    async def _sampled(self, p: Plan, client, tier: str, n: int, select: str, reasks: int):
        """``n`` samples of ``tier``, one of them chosen by ``select``."""
        results = [await self._call(p, client, tier, reasks) for _ in range(n)]
        scores = [self.score(p, r.action, k) for k, r in enumerate(results)] if select != "majority" else []
        p.scores += scores
        return results[self.select(p, [r.action for r in results], scores, select)]

    def _done(self, p: Plan, res):
        p.result = res
        return res

    async def _call(self, p: Plan, client, tier: str, reasks: int):
        """One metered call of ``tier`` with the plan's next reserved call id."""
        cid = p.ids[len(p.used)]
        p.used.append(cid)
        p.samples += 1
        if not p.tiers_tried or p.tiers_tried[-1] != tier:
            p.tiers_tried.append(tier)
        ep_name, model = self.resolve(p, tier)
        ep = client.endpoint(ep_name)
        meta = replace(p.base.meta, call_id=cid, endpoint=ep_name)
        req = p.base.with_(model=model, meta=meta,
                           seed=derive_seed(p.env.root_seed, "call", cid) % (2**31),
                           truth=p.truth if ep.provider_name == "oracle" else None)
        r = p.request
        cls = p.action_cls or r.action_cls
        res = await client.act(req, cls, r.fallback, r.validate, reasks=reasks)
        if cls is not r.action_cls and isinstance(res.action, cls):
            # the stated confidence is the scorer's; the environment gets its own action class
            p.confidences[cid] = int(res.action.confidence)
            res = replace(res, action=r.action_cls.model_validate(res.action.model_dump(exclude={"confidence"})))
        return res

    def resolve(self, p: Plan, tier: str) -> tuple[str, str]:
        """(endpoint, model) of a tier: a ``tier:<name>`` endpoint when the run has one, else the agent's."""
        ep = f"tier:{tier}"
        if ep in self.client.endpoints:
            return ep, self.client.endpoints[ep].model
        return p.base.meta.endpoint, tier

    async def _scored(self, p: Plan, client, tier: str, reasks: int):
        """A tier's answer and its scorer value (agreement: the mode of ``samples`` draws)."""
        sc = p.cfg.scorer
        if sc.kind == "agreement":
            results = [await self._call(p, client, tier, reasks) for _ in range(sc.samples)]
            keys = [_key(r.action) for r in results]
            top = Counter(keys).most_common(1)[0]
            p.scores.append(top[1] / len(keys))
            return results[keys.index(top[0])], top[1] / len(keys)
        res = await self._call(p, client, tier, reasks)
        s = self.score(p, res.action, len(p.used) - 1)
        p.scores.append(s)
        return res, s

    def score(self, p: Plan, action, k: int) -> float:
        """The scorer's value of the k-th sample's answer (oracle: 1 accept, 0 reject)."""
        sc = p.cfg.scorer
        if sc.kind == "confidence":  # the stated confidence (0-100) / 100; none stated: 0.5
            c = p.confidences.get(p.ids[k]) if k < len(p.ids) else None
            if c is None:
                c = getattr(action, "confidence", None)  # an action class with a confidence field of its own
            return float(c) / 100 if isinstance(c, (int, float)) and not isinstance(c, bool) else 0.5
        if p.truth is None:
            return 1.0  # nothing to judge against: accept
        u = float(np.random.default_rng(derive_seed(p.env.root_seed, "scorer", p.ids[k])).random())
        rate = sc.tpr if p.truth.is_right(action) else sc.fpr
        return 1.0 if u < rate else 0.0

    def select(self, p: Plan, actions: list, scores: list[float], how: str) -> int:
        """Index of the chosen sample: majority (plurality), best score, or best among frequent answers."""
        keys = [_key(a) for a in actions]
        counts = Counter(keys)
        rng = np.random.default_rng(derive_seed(p.env.root_seed, "select", p.ids[0]))
        if how == "best":
            best = max(scores)
            return _seeded_first([i for i, s in enumerate(scores) if s == best], rng)
        ranked = sorted(counts.values(), reverse=True)
        if how == "majority":
            keep = {k for k, c in counts.items() if c == ranked[0]}
        else:  # best_of_majority: answers among the keep_top most frequent counts, then the best score
            floor = ranked[min(p.cfg.keep_top, len(ranked)) - 1]
            keep = {k for k, c in counts.items() if c >= floor}
            best = max(s for k, s in zip(keys, scores) if k in keep)
            keep = {k for k, s in zip(keys, scores) if k in keep and s == best}
        winner = sorted(keep)[int(rng.integers(len(keep)))] if len(keep) > 1 else next(iter(keep))
        return keys.index(winner)

    # -- tier estimates: router and VOC gate --------------------------------
    def estimate(self, p: Plan, tier: str) -> tuple[float, float]:
        """(accuracy at this decision's difficulty, expected USD per call) of a tier."""
        d = float(p.truth.difficulty) if p.truth is not None else 0.0
        est = p.cfg.estimates.get(tier)
        if est is not None:
            return min(1.0, max(0.0, est.accuracy - est.difficulty_slope * d)), est.cost_usd
        ep_name, model = self.resolve(p, tier)
        return oracle_estimate(self.llm_for(ep_name), model, p.base.max_tokens, d)

    def route(self, p: Plan) -> str:
        small, large = p.cfg.tiers[0], p.cfg.tiers[-1]
        gap = self.estimate(p, large)[0] - self.estimate(p, small)[0]
        return small if gap < p.cfg.router_threshold else large

    def voc_choice(self, p: Plan) -> str:
        """The tier with the highest accuracy x stake value - cost x (1 + tax); the cheaper one on ties."""
        g = p.stake * p.cfg.usd_per_stake
        net = [(a * g - c * (1 + p.cfg.compute_tax), -i) for i, (a, c) in
               enumerate(self.estimate(p, t) for t in p.cfg.tiers)]
        return p.cfg.tiers[-max(net)[1]]

    def voc_samples(self, p: Plan) -> int:
        """voc_gate with extra=samples: ``samples`` when the majority's expected gain x stake value exceeds
        the extra calls' expected cost x (1 + tax), else 1 (one call on a tie)."""
        n = p.cfg.samples
        a, c = self.estimate(p, (p.cfg.tiers or [p.base.model])[0])
        g = p.stake * p.cfg.usd_per_stake
        gain = (majority_accuracy(a, n) - a) * g
        return n if gain > (n - 1) * c * (1 + p.cfg.compute_tax) else 1

    # -- records ---------------------------------------------------------------
    def record(self, env, plans: list[Plan]) -> None:
        """One row per decision into ``env.deliberations``, costs read from the ledger rows of its calls."""
        rows = self.client.ledger.rows[min(p.ledger_from for p in plans):]
        # oracle tiers are simulated: a record says whether a language model answered any of its calls
        llm = {ep.provider_name for ep in self.client.endpoints.values() if ep.is_llm}
        by_call: dict[int, list] = {}
        for row in rows:
            by_call.setdefault(row.call_id, []).append(row)
        for p in plans:
            mine = [row for c in p.used for row in by_call.get(c, ())]
            action = p.result.action if p.result is not None else None
            env.deliberations.append({
                "tick": env.tick, "phase": env.phase, "agent": p.request.agent.aid, "role": p.request.agent.role,
                "purpose": p.request.purpose, "policy": p.cfg.policy, "tiers_tried": list(p.tiers_tried),
                "samples": p.samples, "budget": p.budget, "scores": [float(s) for s in p.scores],
                "chosen": json.dumps(action.model_dump(mode="json"), sort_keys=True) if action is not None else None,
                "valid": bool(p.result.valid) if p.result is not None else False,
                "correct": None if p.truth is None or action is None else bool(p.truth.is_right(action)),
                "stake": p.stake, "difficulty": None if p.truth is None else float(p.truth.difficulty),
                "is_llm": any(r.provider in llm and r.outcome == "ok" for r in mine),
                "tokens_in": int(sum(r.tokens_in for r in mine)), "tokens_out": int(sum(r.tokens_out for r in mine)),
                "nano_usd": int(sum(r.cost_nano for r in mine)), "call_ids": list(p.used)})


def majority_accuracy(a: float, n: int) -> float:
    """P(the majority of n answers is right) on a binary decision, each right with probability a; a tie
    (even n) is broken uniformly: sum_{j > n/2} C(n, j) a^j (1 - a)^(n - j) (+ half the tie)."""
    p = sum(comb(n, j) * a ** j * (1 - a) ** (n - j) for j in range(n // 2 + 1, n + 1))
    if n % 2 == 0:
        p += 0.5 * comb(n, n // 2) * (a * (1 - a)) ** (n // 2)
    return p


CONFIDENCE_NOTE = 'Also give "confidence": an integer from 0 to 100, how sure you are that your answer is right.'


@functools.lru_cache(maxsize=4096)
def with_confidence(action_cls: type[BaseModel]) -> type[BaseModel]:
    """``action_cls`` plus ``confidence`` (0-100; 50 when an answer leaves it out), a subclass."""
    return create_model(f"{action_cls.__name__}WithConfidence", __base__=action_cls,
                        confidence=(int, Field(50, ge=0, le=100,
                                               description="how sure you are that your answer is right, 0-100")))


def oracle_estimate(llm: dict | None, model: str, max_tokens: int, difficulty: float = 0.0) -> tuple[float, float]:
    """An oracle tier's accuracy at ``difficulty`` and its expected USD per call (from its config and prices)."""
    from sim.inference.prices import PriceTable
    from sim.inference.providers.oracle import tiers_from

    if not llm or llm.get("provider") != "oracle":
        raise ValueError(f"tier {model!r}: not an oracle tier; give deliberation.estimates.{model}"
                         "={accuracy: ..., cost_usd: ...}")
    tier = tiers_from(llm.get("oracle")).get(model)
    if tier is None:
        raise ValueError(f"tier {model!r} is not in llm.oracle.tiers")
    return tier.accuracy_at(difficulty), expected_call_usd(tier, PriceTable(llm.get("prices") or {}, "none").for_model(model),
                                                           max_tokens)


def expected_call_usd(tier, price, max_tokens: int, prompt_tokens: int = 0) -> float:
    """E[cost] of one oracle call: prompt tokens at the input price, E[min(output, cap)] at the output price."""
    tokens_in = tier.input_tokens if tier.input_tokens is not None else prompt_tokens
    out = expected_capped_lognormal(tier.output_median, tier.output_sigma, max_tokens)
    return (tokens_in * price.input + out * price.output) / 1e9


@functools.lru_cache(maxsize=1024)
def expected_capped_lognormal(median: float, sigma: float, cap: int) -> float:
    """E[min(max(1, round(median * exp(sigma Z))), cap)] by quadrature over Z (what the oracle draws)."""
    if sigma == 0:
        return float(min(max(1, int(round(median))), cap) if cap else max(1, int(round(median))))
    z, w = np.polynomial.hermite_e.hermegauss(201)
    x = np.maximum(1, np.round(median * np.exp(sigma * z)))
    if cap:
        x = np.minimum(x, cap)
    return float((w * x).sum() / w.sum())


def _key(action) -> str:
    return json.dumps(action.model_dump(mode="json"), sort_keys=True)


def _seeded_first(idx: list[int], rng) -> int:
    return idx[0] if len(idx) == 1 else idx[int(rng.integers(len(idx)))]


def records_frame(records: list[dict]):
    """``deliberation.parquet``: one row per deliberated decision, typed even when a column is all null."""
    import polars as pl

    schema = {"tick": pl.Int64, "phase": pl.Utf8, "agent": pl.Utf8, "role": pl.Utf8, "purpose": pl.Utf8,
              "policy": pl.Utf8, "tiers_tried": pl.List(pl.Utf8), "samples": pl.Int64, "budget": pl.Int64,
              "scores": pl.List(pl.Float64), "chosen": pl.Utf8, "valid": pl.Boolean, "correct": pl.Boolean,
              "stake": pl.Float64, "difficulty": pl.Float64, "is_llm": pl.Boolean,
              "tokens_in": pl.Int64, "tokens_out": pl.Int64, "nano_usd": pl.Int64,
              "call_ids": pl.List(pl.Int64)}
    return pl.DataFrame(records, schema=schema)
