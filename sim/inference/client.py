"""The metered client: the only way any agent reaches a model.

Per endpoint the layers are stacked as

    budget -> replay cache -> rate limit -> retry(+meter) -> provider

Budget sits outermost so that a replayed run is charged the recorded cost
and therefore reproduces the original run's denials exactly.

``act`` adds structured output on top: the action's JSON schema is sent,
the reply is validated (schema + a state validator from the environment),
an invalid reply gets one re-ask quoting the error, and after that the
seeded scripted fallback is used. Every step is a ledger row.

Endpoints served by the scripted provider at zero prices are *direct*: the
engine asks ``act_direct`` instead, which runs the policy synchronously and
writes the same ledger rows the layered path would (the layers have nothing
to do for a free, local, infallible policy: no spend, nothing to replay or
retry), without prompts, coroutines or JSON round trips.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from sim.seeding import derive_seed

from .budget import Budget, BudgetLayer
from .errors import BudgetDenied, BudgetHalt, CallFailed, ReplayMiss
from .ledger import Ledger, LedgerRow
from .prices import PriceTable, usd_to_nano
from .ratelimit import RateLimitLayer
from .replay import ReplayLayer, ReplayStore
from .retry import RetryLayer
from .scrub import Scrubber
from .types import CallMeta, ChatRequest, ChatResponse, Provider, json_schema

log = logging.getLogger("agora.inference")

A = TypeVar("A", bound=BaseModel)
PROVIDERS = ("local", "openai", "langchain", "scripted", "oracle")


@dataclass
class ActResult(Generic[A]):
    action: A
    valid: bool  # False when the fallback replaced an invalid or missing reply
    source: str  # llm | scripted | fallback
    reason: str = ""  # why a fallback was used (denied, failed, invalid_output)
    text: str = ""


@dataclass
class Endpoint:
    name: str
    provider_name: str
    model: str
    stack: Provider
    is_llm: bool
    params: dict = field(default_factory=dict)
    direct: bool = False  # scripted policy at zero prices: Client.act_direct serves it
    price_version: str = "none"
    scripted: bool = False  # the scripted provider (rule-based, not an LLM), direct or not


def make_provider(llm: dict, estimate_only: bool = False) -> Provider:
    kind = llm["provider"]
    if estimate_only:
        from .providers.scripted import CountingProvider

        return CountingProvider(kind)
    if kind == "scripted":
        from .providers.scripted import ScriptedProvider

        return ScriptedProvider()
    if kind == "local":
        from .providers.local import LocalProvider

        return LocalProvider(llm["model"], llm.get("model_path"), llm.get("n_ctx") or 4096, llm.get("n_threads"))
    if kind == "openai":
        from .providers.openai_provider import OpenAIProvider

        return OpenAIProvider(base_url=llm["base_url"], model=llm["model"], api_key_env=llm.get("api_key_env"),
                              timeout_s=llm.get("timeout_s") or 30, cap_param=llm.get("cap_param", "max_tokens"),
                              schema_mode=llm.get("schema_mode", "json_schema"))
    if kind == "oracle":
        from .providers.oracle import OracleProvider, tiers_from

        return OracleProvider(tiers_from(llm.get("oracle")))
    if kind == "langchain":
        from .providers.langchain_provider import LangChainProvider

        return LangChainProvider(llm["class_path"], dict(llm.get("class_kwargs") or {}))
    raise ValueError(f"llm.provider={kind!r}: allowed {', '.join(PROVIDERS)}")


class Client:
    def __init__(self, budget: Budget, ledger: Ledger, store: ReplayStore | None = None):
        self.budget = budget
        self.ledger = ledger
        self.store = store or ReplayStore()
        # one scrubber for every writer of the seam: ledger rows, cache records, reply texts
        self.scrub: Scrubber = ledger.scrub
        self.store.scrub = self.scrub
        self.endpoints: dict[str, Endpoint] = {}
        self.next_call_id = 1
        self.show_remaining = True

    # ---- construction -----------------------------------------------------
    def add_secret(self, value: str | None) -> None:
        """A key this run was given: it is cut out of everything the seam writes."""
        self.scrub.add(value)

    def add_endpoint(self, name: str, llm: dict, cache_mode: str = "off", estimate_only: bool = False,
                     provider: Provider | None = None) -> Endpoint:
        for secret in secrets_of(llm):
            self.add_secret(secret)
        provider = provider or make_provider(llm, estimate_only)
        prices = PriceTable(llm.get("prices") or {}, llm.get("price_version", "none"))
        for m in (llm["model"], *(llm.get("fallback_models") or [])):
            prices.for_model(m)  # fail at start, naming the model, if it has no price
        estimator = None
        if hasattr(provider, "count_tokens"):
            estimator = provider.count_tokens
        stack: Provider = RetryLayer(provider, prices, self.ledger, max_retries=int(llm.get("max_retries", 2)),
                                     timeout_s=llm.get("timeout_s"), backoff_s=float(llm.get("retry_backoff_s", 0.5)),
                                     estimator=estimator)
        rl = llm.get("rate_limit") or {}
        stack = RateLimitLayer(stack, rl.get("rpm"), rl.get("tpm"), llm.get("concurrency"))
        is_llm = getattr(provider, "is_llm", True)
        if cache_mode != "off" and is_llm:
            stack = ReplayLayer(stack, self.store, cache_mode, prices, self.ledger, provider.name)
        stack = BudgetLayer(stack, self.budget, prices, self.ledger, llm.get("fallback_models") or [],
                            estimator=estimator)
        params = {k: llm.get(k) for k in ("temperature", "top_p", "max_tokens")}
        from .providers.scripted import ScriptedProvider

        scripted = type(provider) is ScriptedProvider
        own = prices.for_model(llm["model"])
        # zero-token replies cost nothing at any price; a non-zero price only reserves budget
        # (and could deny), so only a free scripted model skips the budget layer
        direct = scripted and own.input == 0 and own.cached_input == 0 and own.output == 0
        ep = Endpoint(name, provider.name, llm["model"], stack, is_llm, params, direct, prices.version, scripted)
        self.endpoints[name] = ep
        return ep

    def endpoint(self, name: str) -> Endpoint:
        return self.endpoints.get(name) or self.endpoints["default"]

    def new_call_id(self) -> int:
        cid = self.next_call_id
        self.next_call_id += 1
        return cid

    def remaining_usd(self, scope: str) -> float | None:
        r = self.budget.remaining(scope)
        return None if r is None else r / 1e9

    # ---- state for checkpoints -------------------------------------------
    def state(self) -> dict:
        return {"budget": self.budget.state(), "next_call_id": self.next_call_id, "ledger_rows": len(self.ledger)}

    def load_state(self, st: dict) -> None:
        self.budget.load_state(st["budget"])
        self.next_call_id = st["next_call_id"]

    # ---- calls ---------------------------------------------------------
    async def complete(self, req: ChatRequest) -> ChatResponse:
        return await self.endpoint(req.meta.endpoint).stack.complete(req)

    async def act(self, req: ChatRequest, action_cls: type[A], fallback: Callable[[], A],
                  validate: Callable[[A], str | None] | None = None, reasks: int = 1) -> ActResult[A]:
        """Ask for a structured action; never raises except BudgetHalt/ReplayMiss."""
        ep = self.endpoint(req.meta.endpoint)
        if req.scripted is None:
            req = req.with_(scripted=fallback)
        if req.schema is None:
            req = req.with_(schema=json_schema(action_cls))
        source = "llm" if ep.is_llm else "scripted"
        for k in range(reasks + 1):
            try:
                resp = await ep.stack.complete(req)
            except (BudgetHalt, ReplayMiss):
                raise
            except BudgetDenied:
                return self._fallback(req, ep, fallback, "denied")
            except CallFailed as e:
                return self._fallback(req, ep, fallback, e.outcome)
            err = self._check(resp.text, action_cls, validate)
            if err is None:
                return ActResult(_parse(resp.text, action_cls), True, source, text=resp.text)
            # mark the attempt that produced it as invalid output
            self._mark_invalid(req, err)
            if k < reasks:
                msgs = (*req.messages, ("assistant", resp.text[:2000]),
                        ("user", f"Your reply was invalid: {err}. Reply again with only a JSON object "
                                 f"that matches the schema."))
                meta = CallMeta(**{**req.meta.__dict__, "reask": k + 1})
                req = req.with_(messages=msgs, meta=meta, **reask_sampling(req, k + 1))
        return self._fallback(req, ep, fallback, "invalid_output")

    def act_direct(self, meta: CallMeta, max_tokens: int, action_cls: type[A], fallback: Callable[[], A],
                   validate: Callable[[A], str | None] | None = None, reasks: int = 1) -> ActResult[A]:
        """A direct endpoint's decision: the scripted policy, checked like any reply.

        Ledger rows match the layered path's: one ``ok`` row, or, if the policy's
        action fails the state validator, ``reasks + 1`` ``invalid_output`` rows
        and a ``fallback`` row.
        """
        action = fallback()
        if type(action) is not action_cls:
            action = action_cls.model_validate(action.model_dump() if hasattr(action, "model_dump") else action)
        err = validate(action) if validate is not None else None
        ep = self.endpoint(meta.endpoint)

        def row(attempt: int, reask: int, price_version: str, **kw) -> None:
            self.ledger.rows.append(LedgerRow(meta.call_id, attempt, meta.tick, meta.phase, meta.agent, meta.purpose,
                                              reask, "scripted", meta.endpoint, ep.model, price_version, "",
                                              max_tokens=max_tokens, run_id=self.ledger.run_id, **kw))

        if err is None:
            row(1, 0, ep.price_version)
            return ActResult(action, True, "scripted")
        for k in range(reasks + 1):
            row(1, k, ep.price_version, outcome="invalid_output", error=err[:300])
        row(0, reasks, "none", outcome="fallback", error="invalid_output")
        return ActResult(fallback(), False, "fallback", "invalid_output")

    @staticmethod
    def _check(text: str, action_cls, validate) -> str | None:
        try:
            action = _parse(text, action_cls)
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ())) or "reply"
            return f"{loc}: {first.get('msg')}"
        except ValueError as e:
            return f"not JSON: {e}"[:200]
        if validate is not None:
            msg = validate(action)
            if msg:
                return msg
        return None

    def _mark_invalid(self, req: ChatRequest, err: str) -> None:
        m = req.meta
        for r in reversed(self.ledger.rows):
            if r.call_id == m.call_id and r.reask == m.reask and r.outcome in ("ok", "truncated"):
                if r.outcome == "ok":  # a truncated reply stays truncated: the cap cut it, not the model
                    r.outcome = "invalid_output"
                r.error = self.scrub(err)[:300]  # it may quote the reply
                return

    def _fallback(self, req: ChatRequest, ep: Endpoint, fallback: Callable[[], A], reason: str) -> ActResult[A]:
        action = fallback()
        self.ledger.row(req, "scripted", req.model, "none", attempt=0, outcome="fallback", error=reason,
                        reserved_nano=self._reserved_of(req.meta))
        return ActResult(action, False, "fallback", reason)

    def _reserved_of(self, m: CallMeta) -> int:
        """The worst case of the call a fallback replaces (its latest row; 0 if it wrote none)."""
        for r in reversed(self.ledger.rows):
            if r.call_id == m.call_id and r.reask == m.reask:
                return r.reserved_nano
        return 0


REASK_MIN_TEMPERATURE = 0.5


def reask_sampling(req: ChatRequest, reask: int) -> dict:
    """A re-ask's seed and temperature: a new seed derived from the call's, and a temperature of at
    least ``REASK_MIN_TEMPERATURE``. Under a grammar at the same seed a small model tends to
    write the identical invalid text again; the change is seeded, so a run stays reproducible."""
    seed = None if req.seed is None else derive_seed(req.seed, "reask", reask) % (2**31)
    return {"seed": seed, "temperature": max(float(req.temperature), REASK_MIN_TEMPERATURE)}


_SECRET_NAME = re.compile(r"(api_key|secret|token)$")


def secrets_of(llm: dict) -> list[str]:
    """Key values an endpoint config gives the run: the variable named by ``api_key_env``, and any
    key-like value written into the config or the LangChain ``class_kwargs`` (by mistake or not)."""
    out = []
    env = llm.get("api_key_env")
    if env:
        out.append(os.environ.get(str(env)))
    for d in (llm, llm.get("class_kwargs") or {}):
        out += [v for k, v in d.items() if isinstance(v, str) and k != "api_key_env" and _SECRET_NAME.search(str(k))]
    return [v for v in out if v]


def _parse(text: str, action_cls):
    # strict=False: small models put raw newlines inside strings; that is still their answer
    return action_cls.model_validate(json.loads(_json_part(text), strict=False))


def _json_part(text: str) -> str:
    """The JSON object in a reply: models sometimes wrap it in prose or fences."""
    s = text.strip()
    if s.startswith("{"):
        return s
    i, j = s.find("{"), s.rfind("}")
    if i >= 0 and j > i:
        return s[i : j + 1]
    return s


def build_client(llm: dict, budget_cfg: dict, ledger: Ledger, run_path: Path | None, cache_mode: str | None = None,
                 replay_sources: list[Path] = (), estimate_only: bool = False,
                 llm_by_role: dict | None = None) -> Client:
    b = Budget(run_limit=usd_to_nano(budget_cfg.get("run_usd")), agent_limit=usd_to_nano(budget_cfg.get("per_agent_usd")),
               team_limits={k: usd_to_nano(v) for k, v in (budget_cfg.get("per_team_usd") or {}).items()},
               policy=budget_cfg.get("on_exhaust", "deny"), min_output_tokens=int(budget_cfg.get("min_output_tokens", 16)))
    mode = cache_mode or (llm.get("cache") or {}).get("mode", "off")
    shared = (llm.get("cache") or {}).get("shared_dir")
    sources = list(replay_sources)
    if shared:
        sources.append(Path(shared) / "llm_cache.jsonl")
    store = ReplayStore(run_path / "llm_cache.jsonl" if run_path else None, sources)
    client = Client(b, ledger, store)
    client.show_remaining = bool(budget_cfg.get("show_remaining", True))
    client.add_endpoint("default", llm, mode, estimate_only)
    for role, over in (llm_by_role or {}).items():
        merged = {**llm, **over, "prices": {**(llm.get("prices") or {}), **(over.get("prices") or {})}}
        # record/replay follows the role's own provider config unless the caller forces a mode
        # (replay, resume): an LLM role under a scripted default is still recorded
        role_mode = (cache_mode or (over.get("cache") or {}).get("mode")
                     or ("record" if mode == "off" and over.get("provider") not in (None, "scripted") else mode))
        client.add_endpoint(f"role:{role}", merged, role_mode, estimate_only)
    return client
