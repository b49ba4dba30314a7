"""The tick engine and the environment contract.

An ``Environment`` (a ``mesa.Model``) declares its whole contract here, with
defaults: its config model, its phases (``phase_<name>`` methods run in order
each tick), setup, termination, horizon, how much each event kind matters to a
memory, per-tick metrics, the outcome (computed once, at finish), declared
metric specs, report lines, artifacts, a cross-field config check and its
live-mode options. Nothing in ``sim/`` discovers a hook by reflection.

Agents reach decisions only through ``Environment.act_all``, the act seam. Each
request is answered by its agent's *policy*: ``llm`` (the metered client, run
concurrently under a semaphore on the run's one ``asyncio.Runner``),
``scripted`` (the seeded fallback policy, decided in place with the same ledger
rows) or ``human`` (an answer taken from a ``HumanSeat`` queue; the run waits
for it). Call ids are given in the (seeded) request order and results come back
in that order, so nothing depends on network timing.
"""
from __future__ import annotations

import asyncio
import functools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Mapping

import logging

import mesa
import mesa.mesa_logging
from pydantic import BaseModel

from sim.events import PUBLIC, EventLog, private
from sim.inference.caps import output_cap
from sim.inference.client import ActResult, Client
from sim.inference.errors import BudgetHalt
from sim.inference.types import CallMeta, ChatRequest, json_schema
from sim.seeding import derive_seed, np_rng

if TYPE_CHECKING:
    import polars as pl

Policy = Literal["llm", "scripted", "human"]

# Mesa logs one INFO line per model step; under a sweep (Hydra sets the root logger to INFO)
# that floods every run's log, so only its warnings come through
logging.getLogger(mesa.mesa_logging.LOGGER_NAME).setLevel(logging.WARNING)


class BudgetExhausted(Exception):
    """Raised inside a phase when a halt-policy budget ran out."""


class SeatClosed(Exception):
    """A human seat was closed while the run waited for its answer (the run ends abandoned)."""


# ---------------------------------------------------------------- declarations
@dataclass(frozen=True)
class MetricSpec:
    """One metric an environment declares: reports and dashboards draw from this, never guess.

    ``source`` says where the value lives: ``tick`` (a column of metrics.parquet) or
    ``outcome`` (a key of summary.json's outcome).
    """

    key: str
    title: str
    unit: str = ""
    group: str = "main"
    higher_is_better: bool | None = None
    source: Literal["tick", "outcome"] = "tick"
    doc: str = ""


@dataclass(frozen=True)
class LiveOptions:
    """What the live classroom page may offer for an environment.

    ``channels`` maps a purpose to the input it needs from a human: ``speech``
    (public text), ``team`` (a team channel's text), ``choice`` (one of the
    request's options), ``yesno``. Purposes not listed are answered by the
    seat's scripted policy.
    """

    human_seat: bool = False
    channels: Mapping[str, str] = field(default_factory=dict)
    seat_label: str = "seat"


class PlayerBase(mesa.Agent):
    """What the engine needs of an agent: an id, teams, an endpoint, whether it is alive."""

    def __init__(self, model: mesa.Model, aid: str, role: str = "", teams: tuple[str, ...] = (),
                 endpoint: str = "default"):
        super().__init__(model)
        self.aid = aid
        self.role = role
        self.teams = tuple(teams)
        self.budget_teams: tuple[str, ...] = ()
        self.endpoint = endpoint
        self.alive = True

    # an upper bound on the endpoint's sampling temperature (agents.profiles: small models), None: none
    temperature_cap: float | None = None


@dataclass
class ActRequest:
    agent: PlayerBase
    purpose: str
    action_cls: type[BaseModel]
    observation: str | Callable[[], str]  # a callable is only built when a model will read it
    fallback: Callable[[], BaseModel]
    validate: Callable[[BaseModel], str | None] | None = None
    max_tokens: int | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Truth:
    """A decision's ground truth (``Environment.ground_truth``): the right answers and the valid wrong ones.

    Oracle tiers answer from it (sim/inference/providers/oracle.py) and deliberation records
    score their chosen answer against it. ``difficulty`` in [0, 1] (0 = easy), declared by the
    environment per decision, lowers an oracle tier's accuracy by its ``difficulty_slope`` and
    is what the router's accuracy estimates read. ``confidence``: the (true-, false-positive)
    rates with which an oracle tier reports a confident ``confidence`` field when a deliberation
    policy asks for one (sim/deliberation.py); None: a calibrated report (its accuracy).
    """

    right: tuple[BaseModel, ...]
    wrong: tuple[BaseModel, ...] = ()
    difficulty: float = 0.0
    confidence: tuple[float, float] | None = None

    def is_right(self, action: BaseModel) -> bool:
        d = action.model_dump()
        return any(d == r.model_dump() for r in self.right)


# ---------------------------------------------------------------- human policy
class HumanSeat:
    """Answers for one agent, given by a person (the live page); the run waits for each one.

    The run thread calls ``ask``: the request is posted as ``pending`` and the run
    waits until another thread calls ``answer`` (an action of the request's class,
    or ``None`` for the seat's scripted answer) or ``close``. ``wait_pending``
    returns a request only while it still awaits its answer.
    """

    def __init__(self, aid: str):
        self.aid = aid
        self.pending: ActRequest | None = None
        self.closed = False
        self.asked = 0  # requests posted so far (a page can tell a new question from the last one)
        self._reply: Any = _NO_REPLY
        self._cv = threading.Condition()

    def ask(self, request: ActRequest) -> BaseModel | None:
        with self._cv:
            if self.closed:
                raise SeatClosed(self.aid)
            self.pending, self._reply = request, _NO_REPLY
            self.asked += 1
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._reply is not _NO_REPLY or self.closed)
            reply, self.pending, self._reply = self._reply, None, _NO_REPLY
            if reply is _NO_REPLY:
                raise SeatClosed(self.aid)
            return reply

    def answer(self, action: BaseModel | None) -> None:
        with self._cv:
            if self.pending is None or self._reply is not _NO_REPLY:
                raise RuntimeError(f"seat {self.aid}: no request is waiting for an answer")
            self._reply = action
            self._cv.notify_all()

    def wait_pending(self, timeout: float | None = None) -> ActRequest | None:
        """Block until a request awaits an answer (or ``timeout``); that request, else None."""
        with self._cv:
            self._cv.wait_for(lambda: self.closed or (self.pending is not None and self._reply is _NO_REPLY),
                              timeout)
            return self.pending if self._reply is _NO_REPLY and not self.closed else None

    def close(self) -> None:
        with self._cv:
            self.closed = True
            self._cv.notify_all()


_NO_REPLY = object()


class PhaseGate:
    """Lets a driver (the live page) advance a run one phase at a time.

    Passed as ``after_phase`` to the session: after each phase the run thread
    blocks in ``__call__`` until ``release()`` is called (or the gate is opened
    for good with ``open()``). ``waiting`` says whether the run is parked at a
    phase boundary, and ``phase``/``tick`` where.
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._credits = 0
        self._open = False
        self.waiting = False
        self.phase = ""
        self.tick = 0

    def __call__(self, env: "Environment") -> None:
        with self._cv:
            self.phase, self.tick = env.phase, env.tick
            self.waiting = True
            self._cv.notify_all()
            self._cv.wait_for(lambda: self._credits > 0 or self._open)
            if self._credits > 0:
                self._credits -= 1
            self.waiting = False

    def release(self, phases: int = 1) -> None:
        with self._cv:
            self._credits += phases
            self._cv.notify_all()

    def open(self) -> None:
        with self._cv:
            self._open = True
            self._cv.notify_all()

    def wait_parked(self, timeout: float | None = None) -> bool:
        """Block until the run is parked at a phase boundary (True) or ``timeout`` passes (False)."""
        with self._cv:
            return self._cv.wait_for(lambda: self.waiting, timeout)


# ---------------------------------------------------------------- services
class Services:
    """Run-time services an environment uses; never checkpointed.

    ``spend`` is the ledger's running total (``sim.inference.views.RunningSpend``);
    ``cognition`` is the agents' memory/reflection hook (``agents.cognition.Cognition``);
    ``humans`` maps agent ids to their ``HumanSeat``; ``after_phase`` is called after
    every phase (a ``PhaseGate`` parks the run there).
    """

    def __init__(self, client: Client, events: EventLog, runner: asyncio.Runner, concurrency: int,
                 cognition: Any = None, humans: Mapping[str, HumanSeat] | None = None,
                 after_phase: Callable[["Environment"], None] | None = None):
        from sim.inference.views import RunningSpend

        if concurrency < 1:
            raise ValueError(f"engine.concurrency={concurrency}: must be at least 1")
        self.client = client
        self.events = events
        self.runner = runner
        self.concurrency = concurrency
        self.cognition = cognition
        self.humans: dict[str, HumanSeat] = dict(humans or {})
        self.after_phase = after_phase  # e.g. a PhaseGate: the live page steps a run phase by phase
        self.spend = RunningSpend(client.ledger)
        # sim.deliberation.Deliberation when a non-single policy is configured (else None: one call per decision)
        self.deliberation: Any = None
        # engine.batch_scripted: scripted phases decided as arrays (sim/batch.py); False = per-agent reference
        self.batch_scripted = True


# ---------------------------------------------------------------- the contract
class Environment(mesa.Model):
    """Base of every environment. Subclasses override what they need; every hook has a default."""

    name: ClassVar[str] = "base"
    phases: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[BaseModel]] = BaseModel
    # importance (0-10) of each event kind for the memory stream; kinds not listed get the default
    memory_importance: ClassVar[Mapping[str, float]] = {}
    # metric specs: the columns of metrics.parquet (source="tick") and outcome keys (source="outcome")
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    live: ClassVar[LiveOptions] = LiveOptions()
    # one-line meanings of outcome keys that have no MetricSpec (reports explain every key they print)
    glossary: ClassVar[Mapping[str, str]] = {}
    # top-level shorthands (sim.config.SHORTHANDS) this environment accepts -> its env key
    aliases: ClassVar[Mapping[str, str]] = {}
    # overrides for a tiny run of a few ticks (conformance tests, smoke checks); must span >= 3 ticks
    quick: ClassVar[tuple[str, ...]] = ()
    # what one decision of each purpose is worth, in the environment's outcome units (a banishment
    # vote, a labour choice, an order): the VOC gate weighs extra compute against it (``stake``
    # may scale it per decision); purposes not listed are worth 1.0
    stakes: ClassVar[Mapping[str, float]] = {}
    # the purposes deliberation policies apply to unless deliberation.purposes says otherwise;
    # None: every purpose in ``stakes``
    deliberate: ClassVar[tuple[str, ...] | None] = None
    # whether outcome(), artifacts() and story() read the event log; False: a long run's log is never loaded at finish
    reads_events: ClassVar[bool] = True

    def __init__(self, env_cfg: dict, seed: int, agent_cfg: dict | None = None, llm_cfg: dict | None = None):
        super().__init__(seed=seed)
        self.env_cfg = env_cfg
        # the agent section with the config model's defaults under what is given
        self.agent_cfg = json.loads(_agent_defaults()) | dict(agent_cfg or {})
        self.llm_cfg = llm_cfg or {}
        self.root_seed = seed
        self.phase = "setup"
        self.tick = 0
        self.status = "running"  # running | completed | degraded | aborted_budget | failed | abandoned
        self.svc: Services | None = None
        # one record per deliberated decision (sim.deliberation); written as deliberation.parquet
        self.deliberations: list[dict] = []

    # -- checkpoints hold simulation state only --------------------------
    def __getstate__(self) -> dict:
        st = self.__dict__.copy()
        st["svc"] = None
        return st

    def attach(self, svc: Services) -> None:
        self.svc = svc

    # -- the hooks -------------------------------------------------------
    @classmethod
    def cross_check(cls, cfg: dict) -> str | None:
        """A cross-field config problem as one line (e.g. too many traitors), else None."""
        return None

    @classmethod
    def population(cls, env_cfg: dict) -> int | None:
        """How many personas setup draws for this env config (persona files are checked against it)."""
        return None

    @classmethod
    def check_persona(cls, persona: Any) -> str | None:
        """A problem with a persona file entry's environment fields (``env:`` in the file), else None."""
        return None

    def setup(self) -> None:
        """Tick 0: create agents, emit setup events."""

    def is_done(self) -> bool:
        return False

    def horizon(self) -> int | None:
        """The most ticks a run can take (for progress), None when unknown."""
        return None

    def tick_metrics(self) -> dict[str, Any]:
        """One row of metrics.parquet, after each tick (cheap: called every tick)."""
        return {}

    def partial_outcome(self) -> dict[str, Any]:
        """A cheap outcome for the summary written at each checkpoint."""
        return {}

    def outcome(self, events: "pl.DataFrame") -> dict[str, Any]:
        """The run's outcome, computed once at finish from the whole event log."""
        return self.partial_outcome()

    @classmethod
    def report_lines(cls, summary: dict) -> list[str]:
        """Environment-specific lines for `agora report` of one run's summary."""
        return []

    @classmethod
    def story(cls, events: "pl.DataFrame") -> list[str]:
        """A few lines telling a finished run as a story (printed at the end of `agora run`)."""
        return []

    @classmethod
    def sweep_rows(cls, outcomes: list[dict]) -> list[dict]:
        """Aggregate rows for `agora report` over a group of comparable completed runs' outcomes.

        Each row: ``key``, ``metric`` (label), ``value``, optional ``interval`` (lo, hi) and ``n``.
        Generic means of numeric outcome keys are added by the report itself.
        """
        return []

    def artifacts(self, path: Path, events: "pl.DataFrame") -> None:
        """Extra files written into the run directory at finish (e.g. trust graphs)."""

    @classmethod
    def success_value(cls, outcome: Mapping[str, Any]) -> float | None:
        """The run's success measure for cost-of-pass (a win as 1/0, welfare, surplus); None if undefined."""
        return None

    def ground_truth(self, request: ActRequest) -> Truth | None:
        """The decision's right answers and valid wrong ones (oracle tiers, deliberation scores); None if none."""
        return None

    def stake(self, request: ActRequest) -> float:
        """What this decision is worth (the VOC gate's G): its purpose's declared stake, else 1.0.

        Environments may scale it per decision (e.g. an order by the value at risk).
        """
        return float(self.stakes.get(request.purpose, 1.0))

    def assess(self, request: ActRequest) -> tuple[Truth | None, float]:
        """(``ground_truth``, ``stake``) of one decision, as deliberation reads them together.

        Override where both come from one computation (the market's order truth and value at risk).
        """
        return self.ground_truth(request), self.stake(request)

    def deliberated_purposes(self) -> tuple[str, ...]:
        """The purposes deliberation policies apply to by default (``deliberate``, else the staked ones)."""
        return tuple(self.deliberate) if self.deliberate is not None else tuple(self.stakes)

    def forget_agent_ids(self) -> None:
        """Drop Mesa's agent-id counter for this model (at finish): ``mesa.Agent._ids`` is keyed by the
        model and never emptied, so every finished game would stay in memory for the life of the process."""
        ids = getattr(mesa.Agent, "_ids", None)
        if isinstance(ids, dict):
            ids.pop(self, None)

    def players(self) -> list[PlayerBase]:
        """The agents, in creation order (Mesa's own registry).

        Mesa's hard-reference dict, in registration order like ``self.agents`` (its AgentSet):
        iterating the AgentSet's weak dict cost more than a small game's phase.
        """
        return list(self._agents)

    # -- policies at the act seam -----------------------------------------
    def endpoint_for(self, role: str) -> str:
        """The endpoint an agent of ``role`` uses: its ``agent.llm_by_role`` entry, else the default."""
        return f"role:{role}" if role in (self.agent_cfg.get("llm_by_role") or {}) else "default"

    def policy_of(self, agent: PlayerBase) -> Policy:
        """Who answers ``agent``'s requests: a human seat, the scripted policy or a model."""
        if self.svc is not None and agent.aid in self.svc.humans:
            return "human"
        if self.svc is not None and self.svc.client.endpoint(agent.endpoint).scripted:
            return "scripted"
        return "llm"

    def keeps_scripted_memory(self) -> bool:
        """``agent.memory.scripted``: record scripted agents' memories although they never read them."""
        return bool(self.agent_cfg["memory"]["scripted"])

    # -- engine services ------------------------------------------------
    def rng_for(self, *names: object):
        return np_rng(self.root_seed, *names)

    def emit(self, kind: str, payload: dict | None = None, actor: str = "engine", visibility: str = PUBLIC):
        return self.svc.events.emit(self.tick, self.phase, actor, kind, payload, visibility)

    def emit_many(self, kind: str, items) -> None:
        """One ``kind`` event per ``(actor, payload, visibility)`` (e.g. every worker's choice)."""
        self.svc.events.emit_many(self.tick, self.phase, kind, items)

    def step(self) -> None:
        self.tick = self.steps
        cog = self.svc.cognition if self.svc else None
        for ph in self.phases:
            if self.status != "running":
                break
            self.phase = ph
            self.emit("phase_start", {"phase": ph})
            getattr(self, f"phase_{ph}")()
            self.emit("phase_end", {"phase": ph})
            if cog is not None:
                cog.after_phase(self)
            if self.svc.after_phase is not None:
                self.svc.after_phase(self)
            if self.is_done():
                break
        if cog is not None and self.status == "running" and not self.is_done():
            cog.after_tick(self)

    def act_all(self, requests: list[ActRequest]) -> list[ActResult]:
        """Run one phase's decisions; results in request order.

        Human seats are asked in order, scripted requests are decided in place, and
        model requests go to the layered client concurrently.
        """
        if not requests:
            return []
        client = self.svc.client
        reasks = int(self.agent_cfg["reasks"])
        plan: list[tuple[ActRequest, CallMeta, Any, Policy]] = []
        remote: list[tuple[ActRequest, ChatRequest]] = []
        delib = self.svc.deliberation
        plans: dict[int, Any] = {}  # call id -> the deliberation plan that answers it
        for r in requests:
            cid = client.new_call_id()
            ep = client.endpoint(r.agent.endpoint)
            pol = self.policy_of(r.agent)
            if pol != "human" and not ep.direct:
                q = self._chat_request(r, cid, ep)
                plan.append((r, q.meta, ep, pol))
                remote.append((r, q))
                if delib is not None and pol == "llm":
                    dp = delib.plan(self, r, q)  # None: this decision takes one call, as always
                    if dp is not None:
                        plans[cid] = dp
            else:
                plan.append((r, self._meta(r, cid), ep, pol))
        results: dict[int, Any] = {}
        if remote:
            async def go():
                sem = asyncio.Semaphore(self.svc.concurrency)

                async def one(r: ActRequest, req: ChatRequest):
                    async with sem:
                        dp = plans.get(req.meta.call_id)
                        if dp is not None:
                            return await delib.decide(dp, client, reasks)
                        return await client.act(req, r.action_cls, r.fallback, r.validate, reasks=reasks)

                return await asyncio.gather(*(one(r, q) for r, q in remote), return_exceptions=True)

            results = {q.meta.call_id: res for (_, q), res in zip(remote, self.svc.runner.run(go()))}
            if plans:
                delib.record(self, [plans[c] for c in sorted(plans)])
        out: list[ActResult] = []
        halted = None
        for r, meta, ep, pol in plan:
            res = results.get(meta.call_id)
            if res is None and pol == "human":
                res = self._ask_human(r, meta)
            elif res is None:
                res = client.act_direct(meta, _max_tokens(r, ep), r.action_cls, r.fallback, r.validate, reasks)
            if isinstance(res, BaseException):
                if isinstance(res, BudgetHalt):
                    halted = res
                    res = ActResult(r.fallback(), False, "fallback", "denied")
                else:
                    raise res
            vis = private(r.agent.aid)
            self.emit("llm_call", {"call_id": meta.call_id, "purpose": r.purpose, "source": res.source,
                                   "valid": res.valid, "reason": res.reason}, actor=r.agent.aid, visibility=vis)
            if not res.valid:
                self.emit("fallback", {"call_id": meta.call_id, "purpose": r.purpose, "reason": res.reason},
                          actor=r.agent.aid, visibility=vis)
            out.append(res)
        if halted is not None:
            self.status = "aborted_budget"
            self.emit("budget_halt", {"scope": halted.scope})
            raise BudgetExhausted(halted.scope)
        return out

    def act(self, request: ActRequest) -> ActResult:
        return self.act_all([request])[0]

    def _ask_human(self, r: ActRequest, meta: CallMeta) -> ActResult:
        """A human seat's answer, checked like a model's; an unusable one falls back to the seat's script."""
        action = self.svc.humans[r.agent.aid].ask(r)
        source = "human"
        if action is not None:
            try:
                action = r.action_cls.model_validate(action.model_dump() if isinstance(action, BaseModel)
                                                     else action)
                if r.validate is not None and r.validate(action):
                    action = None
            except Exception:  # noqa: BLE001 - a bad human answer is the seat's scripted answer
                action = None
        if action is None:
            action, source = r.fallback(), "scripted"
        self.emit("human_action", {"call_id": meta.call_id, "purpose": r.purpose, "source": source},
                  actor=r.agent.aid, visibility=private(r.agent.aid))
        return ActResult(action, True, source, "")

    def _meta(self, r: ActRequest, call_id: int) -> CallMeta:
        a = r.agent
        scopes = (f"agent:{a.aid}", *[f"team:{t}" for t in a.budget_teams])
        return CallMeta(agent=a.aid, purpose=r.purpose, tick=self.tick, phase=self.phase, scopes=scopes,
                        call_id=call_id, endpoint=a.endpoint)

    def budget_line(self, agent: PlayerBase) -> str:
        """The prompt's budget view: what is left of the agent's (else the run's) compute budget."""
        client = self.svc.client
        if not client.show_remaining:
            return ""
        rem = client.remaining_usd(f"agent:{agent.aid}")
        if rem is None:
            rem = client.remaining_usd("run")
        return "" if rem is None else f"Compute budget left: ${rem:.6f}\n"

    def _chat_request(self, r: ActRequest, call_id: int, ep) -> ChatRequest:
        a = r.agent
        obs = r.observation() if callable(r.observation) else r.observation
        messages = a.build_messages(r.purpose, r.action_cls, obs, now=self.tick, budget=self.budget_line(a))
        meta = self._meta(r, call_id)
        p = ep.params
        temperature = float(p.get("temperature") or 0.0)
        if a.temperature_cap is not None:
            temperature = min(temperature, a.temperature_cap)
        schema = json_schema(r.action_cls)
        return ChatRequest(messages=messages, model=ep.model, max_tokens=request_cap(r, ep, schema),
                           temperature=temperature, top_p=float(p.get("top_p") or 1.0),
                           seed=derive_seed(self.root_seed, "call", call_id) % (2**31), meta=meta,
                           schema=schema, scripted=r.fallback,
                           truth=self.ground_truth(r) if ep.provider_name == "oracle" else None)


@functools.cache
def _agent_defaults() -> str:
    """The agent section's defaults as JSON (parsed afresh per environment: its dicts are the env's own)."""
    from sim.config import _agent_model

    return json.dumps(_agent_model()().model_dump(mode="json"))


def _max_tokens(r: ActRequest, ep) -> int:
    """The request's output cap, else the endpoint's, else 96."""
    return int(r.max_tokens or ep.params.get("max_tokens") or 96)


def request_cap(r: ActRequest, ep, schema: dict) -> int:
    """A model's output cap: the configured one, raised to what the action's longest valid reply needs
    (sim/inference/caps.py), so a reply is never cut mid-object. Simulated providers keep the configured cap."""
    cap = _max_tokens(r, ep)
    return cap if ep.provider_name in ("scripted", "oracle") else output_cap(cap, schema)
