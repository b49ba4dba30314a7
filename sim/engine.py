"""The tick engine.

An ``Environment`` (a ``mesa.Model``) declares its phases by name; each tick
the engine runs them in order (``phase_<name>`` methods), records
``phase_start``/``phase_end`` events and checks termination. Agents reach
models only through ``Environment.act_all``: one phase's requests get call ids
in the given (seeded) order, run concurrently under a semaphore on the run's
single ``asyncio.Runner``, and come back in that same order, so results never
depend on network timing.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import mesa
from pydantic import BaseModel

from sim.events import PUBLIC, EventLog
from sim.inference.client import ActResult, Client
from sim.inference.types import CallMeta, ChatRequest, json_schema
from sim.seeding import derive_seed, np_rng


class BudgetExhausted(Exception):
    """Raised inside a phase when a halt-policy budget ran out."""


@dataclass
class ActRequest:
    agent: Any  # agents.base.Player
    purpose: str
    action_cls: type[BaseModel]
    observation: str | Callable[[], str]  # a callable is only built when a model will read it
    fallback: Callable[[], BaseModel]
    validate: Callable[[BaseModel], str | None] | None = None
    max_tokens: int | None = None
    extra: dict = field(default_factory=dict)


class Services:
    """Run-time services an environment uses; never pickled."""

    def __init__(self, client: Client, events: EventLog, runner: asyncio.Runner, concurrency: int,
                 on_events: Callable[[], None] | None = None):
        self.client = client
        self.events = events
        self.runner = runner
        self.concurrency = concurrency
        self.on_events = on_events


class Environment(mesa.Model):
    name: ClassVar[str] = "base"
    phases: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type[BaseModel]]

    def __init__(self, env_cfg: dict, seed: int, agent_cfg: dict | None = None, llm_cfg: dict | None = None):
        super().__init__(seed=seed)
        self.env_cfg = env_cfg
        self.agent_cfg = agent_cfg or {}
        self.llm_cfg = llm_cfg or {}
        self.root_seed = seed
        self.phase = "setup"
        self.tick = 0
        self.status = "running"  # running | completed | aborted_budget | failed
        self.svc: Services | None = None

    # -- pickling: simulation state only --------------------------------
    def __getstate__(self) -> dict:
        st = self.__dict__.copy()
        st["svc"] = None
        return st

    def attach(self, svc: Services) -> None:
        self.svc = svc

    # -- hooks for subclasses -------------------------------------------
    def setup(self) -> None:
        """Tick 0: create agents, emit setup events."""

    def is_done(self) -> bool:
        return False

    def tick_metrics(self) -> dict[str, Any]:
        return {}

    def outcome(self) -> dict[str, Any]:
        return {}

    def players(self) -> list:
        return list(self.agents)

    def keeps_scripted_memory(self) -> bool:
        """``agent.memory.scripted``: record scripted agents' memories although they never read them."""
        return bool(((self.agent_cfg or {}).get("memory") or {}).get("scripted", False))

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
        for ph in self.phases:
            if self.status != "running":
                break
            self.phase = ph
            self.emit("phase_start", {"phase": ph})
            getattr(self, f"phase_{ph}")()
            self.emit("phase_end", {"phase": ph})
            self._deliver()
            if self.is_done():
                break
        if self.status == "running" and not self.is_done():
            self.reflect()

    def reflect(self) -> None:
        """Agents whose new memories passed the importance threshold write an insight.

        A metered LLM call like any other (purpose ``reflect``); the insight
        cites the memories it came from and goes back into the stream.
        """
        rc = (self.agent_cfg or {}).get("reflection") or {}
        if not rc.get("enabled", True):
            return
        thr = float(rc.get("threshold", 40.0))
        due = [a for a in self.players() if getattr(a, "alive", True) and a.memory.needs_reflection(thr)]
        if not due:
            return
        from agents.base import Reflection

        prev_phase, self.phase = self.phase, "reflect"
        reqs, items = [], []
        for a in due:
            its = a.memory.reflection_prompt_items(5)
            items.append(its)
            lines = "\n".join(f"[{i}] {r.text[:120]}" for i, r in its)
            first = its[-1][1].text[:80] if its else ""
            reqs.append(ActRequest(a, "reflect", Reflection,
                                   f"Recent memories:\n{lines}\nWrite one short insight about them.",
                                   (lambda first=first: Reflection(insight=f"Noted: {first}")), max_tokens=60))
        for a, its, r in zip(due, items, self.act_all(reqs)):
            cites = [i for i, _ in its]
            a.memory.add_reflection(r.action.insight, cites, self.tick, importance=5)
            self.emit("reflection", {"pid": a.aid, "insight": r.action.insight, "cites": cites, "valid": r.valid},
                      actor=a.aid, visibility=f"private:{a.aid}")
        self.phase = prev_phase

    def _deliver(self) -> None:
        if self.svc and self.svc.on_events:
            self.svc.on_events()

    def act_all(self, requests: list[ActRequest]) -> list[ActResult]:
        """Run one phase's decisions concurrently; results in request order."""
        if not requests:
            return []
        client = self.svc.client
        reasks = int(self.agent_cfg.get("reasks", 1))
        # Requests on direct (scripted, free) endpoints are decided here, in order, with no
        # prompt and no coroutine; the rest go to the layered client concurrently.
        reqs: list[tuple[ActRequest, CallMeta, Any]] = []
        remote: list[tuple[ActRequest, ChatRequest]] = []
        for r in requests:
            cid = client.new_call_id()
            ep = client.endpoint(r.agent.endpoint)
            if ep.direct:
                reqs.append((r, self._meta(r, cid), ep))
            else:
                q = self._chat_request(r, cid)
                reqs.append((r, q.meta, ep))
                remote.append((r, q))
        results: dict[int, Any] = {}
        if remote:
            async def go():
                sem = asyncio.Semaphore(self.svc.concurrency)

                async def one(r: ActRequest, req: ChatRequest):
                    async with sem:
                        return await client.act(req, r.action_cls, r.fallback, r.validate, reasks=reasks)

                return await asyncio.gather(*(one(r, q) for r, q in remote), return_exceptions=True)

            results = {q.meta.call_id: res for (_, q), res in zip(remote, self.svc.runner.run(go()))}
        out: list[ActResult] = []
        halted = None
        for r, meta, ep in reqs:
            res = results.get(meta.call_id)
            if res is None:
                res = client.act_direct(meta, _max_tokens(r, ep), r.action_cls, r.fallback, r.validate, reasks)
            if isinstance(res, BaseException):
                from sim.inference.errors import BudgetHalt

                if isinstance(res, BudgetHalt):
                    halted = res
                    res = ActResult(r.fallback(), False, "fallback", "denied")
                else:
                    raise res
            vis = f"private:{r.agent.aid}"
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

    def _meta(self, r: ActRequest, call_id: int) -> CallMeta:
        a = r.agent
        scopes = (f"agent:{a.aid}", *[f"team:{t}" for t in a.budget_teams])
        return CallMeta(agent=a.aid, purpose=r.purpose, tick=self.tick, phase=self.phase, scopes=scopes,
                        call_id=call_id, endpoint=a.endpoint)

    def _chat_request(self, r: ActRequest, call_id: int) -> ChatRequest:
        a = r.agent
        ep = self.svc.client.endpoint(a.endpoint)
        obs = r.observation() if callable(r.observation) else r.observation
        messages = a.build_messages(r.purpose, r.action_cls, obs, self)
        meta = self._meta(r, call_id)
        p = ep.params
        return ChatRequest(messages=messages, model=ep.model, max_tokens=_max_tokens(r, ep),
                           temperature=float(p.get("temperature") or 0.0), top_p=float(p.get("top_p") or 1.0),
                           seed=derive_seed(self.root_seed, "call", call_id) % (2**31), meta=meta,
                           schema=json_schema(r.action_cls), scripted=r.fallback)


def _max_tokens(r: ActRequest, ep) -> int:
    """The request's output cap, else the endpoint's, else 96."""
    return int(r.max_tokens or ep.params.get("max_tokens") or 96)
