"""Hard budgets: reserve the worst case before a call, settle to the actual cost.

Scopes form a path: ``run`` then any of ``team:<name>`` / ``agent:<id>``. A call
is admitted only if every scope on its path can hold its worst case
(``spent + reserved + hold <= limit``), checked and taken atomically, without
awaiting in between. The engine starts one phase's calls in its deterministic
agent order, so which call is denied never depends on network timing, and
spend can never pass a limit however many calls run at once.

Settlement never exceeds the reservation: a server that claims more tokens than
the call allowed is billed the worst case that was held (the meter below bills
at most ``req.reserved_nano`` and records the claim; ``settle`` caps it again).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from .errors import BudgetDenied, BudgetHalt
from .ledger import Ledger
from .prices import PriceTable
from .types import ChatRequest, ChatResponse, Provider, estimate_tokens_upper

POLICIES = ("deny", "shrink", "downgrade", "halt")


@dataclass
class Budget:
    run_limit: int | None = None  # nano-USD
    agent_limit: int | None = None
    team_limits: dict[str, int] = field(default_factory=dict)
    policy: str = "deny"
    min_output_tokens: int = 16
    spent: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    reserved: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"budget.on_exhaust={self.policy!r}: allowed {', '.join(POLICIES)}")
        self.spent = defaultdict(int, self.spent)
        self.reserved = defaultdict(int, self.reserved)

    def limit(self, scope: str) -> int | None:
        if scope == "run":
            return self.run_limit
        kind, _, name = scope.partition(":")
        if kind == "agent":
            return self.agent_limit
        if kind == "team":
            return self.team_limits.get(name)
        return None

    def available(self, scope: str) -> int | None:
        lim = self.limit(scope)
        return None if lim is None else lim - self.spent[scope] - self.reserved[scope]

    def first_short(self, scopes: Iterable[str], hold: int) -> str | None:
        for s in scopes:
            a = self.available(s)
            if a is not None and hold > a:
                return s
        return None

    def reserve(self, scopes: Iterable[str], hold: int) -> None:
        for s in scopes:
            self.reserved[s] += hold

    def settle(self, scopes: Iterable[str], hold: int, cost: int) -> None:
        cost = min(cost, hold)  # whatever a layer below reports, never more than was held
        for s in scopes:
            self.reserved[s] -= hold
            self.spent[s] += cost

    def release(self, scopes: Iterable[str], hold: int) -> None:
        for s in scopes:
            self.reserved[s] -= hold

    def remaining(self, scope: str) -> int | None:
        lim = self.limit(scope)
        return None if lim is None else lim - self.spent[scope]

    def state(self) -> dict:
        return {"spent": dict(self.spent), "reserved": dict(self.reserved)}

    def load_state(self, st: dict) -> None:
        self.spent = defaultdict(int, st["spent"])
        self.reserved = defaultdict(int, st.get("reserved", {}))


class BudgetLayer:
    """Provider wrapper enforcing ``Budget`` with the configured exhaustion policy."""

    def __init__(self, inner: Provider, budget: Budget, prices: PriceTable, ledger: Ledger,
                 fallback_models: list[str] | None = None, estimator=None):
        self.inner = inner
        self.name = inner.name
        self.budget = budget
        self.prices = prices
        self.ledger = ledger
        self.fallback_models = list(fallback_models or [])
        # prompt-token estimator: the local model's tokenizer when there is one,
        # else a byte upper bound (no tokenizer download, ever)
        self.estimator = estimator or (lambda req: estimate_tokens_upper(req.messages))

    def _hold(self, req: ChatRequest, est_in: int) -> int:
        return self.prices.for_model(req.model).hold(est_in, req.max_tokens)

    async def complete(self, req: ChatRequest) -> ChatResponse:
        # Everything up to reserve() is synchronous: admission order = start order.
        scopes = ("run", *req.meta.scopes)
        est_in = self.estimator(req)
        hold = self._hold(req, est_in)
        short = self.budget.first_short(scopes, hold)
        if short is not None:
            req, hold, short = self._apply_policy(req, scopes, est_in, short)
        if short is not None:
            avail = self.budget.available(short) or 0
            self.ledger.row(req, self.name, req.model, self.prices.version, attempt=0, outcome="denied",
                            # the worst case that could not be held (nothing was reserved)
                            est_tokens_in=est_in, denial_scope=short, reserved_nano=hold,
                            error=f"needs {hold} nano-USD, {short} has {avail}")
            if self.budget.policy == "halt":
                raise BudgetHalt(short)
            raise BudgetDenied(short, hold, avail)
        self.budget.reserve(scopes, hold)
        try:
            resp = await self.inner.complete(req.with_(est_tokens_in=est_in, reserved_nano=hold))
        except BaseException:
            self.budget.release(scopes, hold)
            raise
        self.budget.settle(scopes, hold, resp.cost_nano)
        return resp

    def _apply_policy(self, req: ChatRequest, scopes, est_in: int, short: str):
        b = self.budget
        if b.policy == "shrink":
            price = self.prices.for_model(req.model)
            avail = min(a for s in scopes if (a := b.available(s)) is not None)
            room = avail - est_in * price.input
            cap = room // price.output if price.output else req.max_tokens
            cap = min(cap, req.max_tokens)
            if cap >= b.min_output_tokens:
                req = req.with_(max_tokens=int(cap))
                hold = self._hold(req, est_in)
                return req, hold, b.first_short(scopes, hold)
        elif b.policy == "downgrade":
            for m in self.fallback_models:
                cand = req.with_(model=m)
                hold = self._hold(cand, est_in)
                if b.first_short(scopes, hold) is None:
                    return cand, hold, None
        return req, self._hold(req, est_in), short
