"""Hard budgets: admission in start order, worst-case holds, no overshoot, exhaustion policies."""
from __future__ import annotations

import asyncio
import functools
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.inference.budget import Budget
from sim.inference.client import Client, build_client
from sim.inference.errors import BudgetDenied, BudgetHalt
from sim.inference.ledger import Ledger
from sim.inference.types import CallMeta, ChatRequest, ChatResponse, Usage, estimate_tokens_upper
from sim.testing.loopback import LoopbackServer
from tests.llm_configs import PRICES, openai_llm

_llm = functools.partial(openai_llm, schema_mode="none", max_tokens=150, max_retries=0, concurrency=16)
AGENTS = ("p0", "p1", "p2", "p3", "p4")


def _req(call_id: int, agent: str = "p1", user: str = "hi", max_tokens: int = 150, model: str = "loop-model",
         team: str | None = None) -> ChatRequest:
    scopes = ((f"team:{team}",) if team else ()) + (f"agent:{agent}",)
    return ChatRequest(messages=(("user", user),), model=model, max_tokens=max_tokens,
                       meta=CallMeta(agent=agent, call_id=call_id, scopes=scopes))


class RandomUsageProvider:
    """In-process model: usage is a seeded function of the call (so cost never depends on timing),
    bounded by the hold; latency is drawn in arrival order from its own seed."""

    name = "fake"

    def __init__(self, usage_seed: int, latency_seed: int):
        self.usage_seed = usage_seed
        self.latency = random.Random(latency_seed)
        self.seen = 0

    async def complete(self, req: ChatRequest) -> ChatResponse:
        rng = random.Random(f"{self.usage_seed}:{req.meta.call_id}")
        prompt = rng.randint(0, estimate_tokens_upper(req.messages))
        cached = rng.randint(0, prompt)
        out = rng.randint(0, req.max_tokens)
        self.seen += 1
        await asyncio.sleep(self.latency.random() * 0.002)
        return ChatResponse(text=f"r{req.meta.call_id}", usage=Usage(prompt, out, cached), model=req.model,
                            provider=self.name)


def _plan(seed: int, n: int, batches: int) -> list[list[tuple[str, int]]]:
    rng = random.Random(seed)
    return [[(rng.choice(AGENTS), rng.randint(1, 300)) for _ in range(n)] for _ in range(batches)]


def _run_plan(client: Client, plan: list[list[tuple[str, int]]]) -> list[BaseException | ChatResponse]:
    """Each batch is one phase: its calls are gathered concurrently, batches run one after the other."""
    async def go():
        out, cid = [], 0
        for batch in plan:
            reqs = []
            for agent, mt in batch:
                cid += 1
                team = "red" if agent in ("p0", "p1") else "blue"
                reqs.append(_req(cid, agent, f"call {cid}", mt, team=team))
            out += await asyncio.gather(*(client.complete(r) for r in reqs), return_exceptions=True)
        return out

    with asyncio.Runner() as runner:
        return runner.run(go())


def _fake_client(budget: Budget, provider: RandomUsageProvider) -> Client:
    client = Client(budget, Ledger())
    client.add_endpoint("default", _llm(provider="fake"), "off", provider=provider)
    return client


def _assert_within_limits(budget: Budget, ledger: Ledger) -> None:
    df = ledger.frame()
    for scope, spent in budget.spent.items():
        lim = budget.limit(scope)
        assert lim is None or spent <= lim, f"{scope} spent {spent} > limit {lim}"
    assert all(v == 0 for v in budget.reserved.values()), budget.reserved
    # the ledger is the source of truth: spend per scope equals its rows' cost
    assert budget.spent["run"] == int(df["cost_nano"].sum())
    for agent in AGENTS:
        assert budget.spent[f"agent:{agent}"] == int(df.filter(df["agent"] == agent)["cost_nano"].sum())


def test_hand_computed_holds_admit_in_start_order():
    # est = len("x") + len("user") + 8 + 16 = 29 tokens; hold = 29*50 + 10*200 = 3450 nano-USD
    hold = 29 * 50 + 10 * 200
    budget = Budget(run_limit=2 * hold)
    client = _fake_client(budget, RandomUsageProvider(0, 0))

    async def go():
        reqs = [_req(i, user="x", max_tokens=10) for i in (1, 2, 3)]
        return await asyncio.gather(*(client.complete(r) for r in reqs), return_exceptions=True)

    with asyncio.Runner() as runner:
        out = runner.run(go())
    assert [type(o).__name__ for o in out] == ["ChatResponse", "ChatResponse", "BudgetDenied"]
    assert out[2].scope == "run" and out[2].needed == hold and out[2].available == 0
    denied = client.ledger.frame().filter(outcome="denied")
    assert denied["call_id"].to_list() == [3] and denied["denial_scope"].to_list() == ["run"]
    assert budget.reserved["run"] == 0 and budget.spent["run"] <= 2 * hold


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(run_limit=st.none() | st.integers(0, 4_000_000), agent_limit=st.none() | st.integers(0, 1_500_000),
       team_limit=st.none() | st.integers(0, 2_500_000), seed=st.integers(0, 2**20))
def test_hundred_concurrent_calls_never_overshoot_any_scope(run_limit, agent_limit, team_limit, seed):
    teams = {} if team_limit is None else {"red": team_limit, "blue": team_limit // 2}
    budget = Budget(run_limit=run_limit, agent_limit=agent_limit, team_limits=teams)
    provider = RandomUsageProvider(seed, seed + 1)
    client = _fake_client(budget, provider)
    out = _run_plan(client, _plan(seed, 100, 2))
    _assert_within_limits(budget, client.ledger)
    denied = [o for o in out if isinstance(o, BudgetDenied)]
    assert all(isinstance(o, (ChatResponse, BudgetDenied)) for o in out)
    assert provider.seen == len(out) - len(denied)  # denied calls never reach the model
    assert client.ledger.frame().filter(outcome="denied").height == len(denied)
    if run_limit is None and agent_limit is None and team_limit is None:
        assert not denied


def test_denials_do_not_depend_on_provider_latency():
    budget_args = dict(run_limit=3_000_000, agent_limit=900_000, team_limits={"red": 1_000_000})
    runs = []
    for latency_seed in (1, 99):
        budget = Budget(**budget_args)
        client = _fake_client(budget, RandomUsageProvider(7, latency_seed))
        out = _run_plan(client, _plan(3, 100, 3))
        df = client.ledger.frame()
        runs.append(({i for i, o in enumerate(out) if isinstance(o, BudgetDenied)},
                     df.select("call_id", "outcome", "denial_scope", "cost_nano").rows(), dict(budget.spent)))
    (denied_a, rows_a, spent_a), (denied_b, rows_b, spent_b) = runs
    assert 0 < len(denied_a) < 300  # the limits bind, so the comparison means something
    assert denied_a == denied_b and rows_a == rows_b and spent_a == spent_b


def test_hundred_concurrent_loopback_calls_never_overshoot():
    rng = random.Random(5)
    with LoopbackServer(responder=lambda body: "ok") as srv:
        client = build_client(_llm(srv.base_url), {"run_usd": "0.0004", "per_agent_usd": "0.0001"}, Ledger(), None)

        async def go():
            reqs = [_req(i, rng.choice(AGENTS), f"call {i}", rng.randint(1, 60)) for i in range(1, 101)]
            try:
                return await asyncio.gather(*(client.complete(r) for r in reqs), return_exceptions=True)
            finally:
                await client.endpoint("default").stack.inner.inner.inner.aclose()

        with asyncio.Runner() as runner:
            out = runner.run(go())
        n_sent = len(srv.chat_requests)
    denied = [o for o in out if isinstance(o, BudgetDenied)]
    assert 0 < len(denied) < 100
    assert n_sent == 100 - len(denied)
    assert all(isinstance(o, (ChatResponse, BudgetDenied)) for o in out)
    _assert_within_limits(client.budget, client.ledger)
    # loopback usage: prompt "user: call i" -> 3 tokens, reply "ok" -> 1 token, no prefix overlap beyond 2 blocks
    ok = client.ledger.frame().filter(outcome="ok")
    assert (ok["tokens_out"] == 1).all() and ok.height == n_sent


# ---------------------------------------------------------------- exhaustion policies
# messages (("user", "hi"),): est = 2 + 4 + 8 + 16 = 30 tokens -> 1500 nano-USD of input hold


def _one_call(client: Client, req: ChatRequest, act: bool = False):
    async def go():
        try:
            return await client.complete(req)
        finally:
            inner = client.endpoint("default").stack.inner
            while not hasattr(inner, "aclose"):
                inner = inner.inner
            await inner.aclose()

    with asyncio.Runner() as runner:
        return runner.run(go())


@pytest.fixture
def srv():
    with LoopbackServer(responder=lambda body: "ok") as s:
        yield s


def test_deny_raises_and_writes_a_denied_row(srv):
    client = build_client(_llm(srv.base_url), {"per_agent_usd": "0.00001", "on_exhaust": "deny"}, Ledger(), None)
    with pytest.raises(BudgetDenied) as e:
        _one_call(client, _req(1, "p1"))
    assert e.value.scope == "agent:p1" and e.value.needed == 1500 + 150 * 200 and e.value.available == 10_000
    row = client.ledger.frame().row(0, named=True)
    assert row["outcome"] == "denied" and row["denial_scope"] == "agent:p1" and row["attempt"] == 0
    assert row["cost_nano"] == 0 and srv.chat_requests == []


def test_shrink_sends_a_smaller_cap_that_fits(srv):
    # 11500 = 1500 input hold + 50 output tokens * 200
    client = build_client(_llm(srv.base_url), {"run_usd": "0.0000115", "on_exhaust": "shrink"}, Ledger(), None)
    resp = _one_call(client, _req(1))
    assert srv.chat_requests[0].body["max_tokens"] == 50
    assert client.ledger.frame()["max_tokens"].to_list() == [50]
    # "user: hi" = 8 bytes = 2 tokens in, "ok" = 1 token out
    assert resp.cost_nano == 2 * 50 + 1 * 200 == client.budget.spent["run"]


def test_shrink_below_min_output_tokens_is_denied(srv):
    # room for 15 output tokens < min_output_tokens 16
    client = build_client(_llm(srv.base_url), {"run_usd": "0.0000045", "on_exhaust": "shrink"}, Ledger(), None)
    with pytest.raises(BudgetDenied):
        _one_call(client, _req(1))
    assert srv.chat_requests == []


def test_downgrade_uses_the_fallback_model(srv):
    prices = {"big": {"input_per_mtok": "1.000", "output_per_mtok": "4.000"}, **PRICES}
    llm = _llm(srv.base_url, model="big", prices=prices, fallback_models=["small"])
    # big holds 30*1000 + 150*4000 = 630000; small (default price) holds 31500
    client = build_client(llm, {"run_usd": "0.0001", "on_exhaust": "downgrade"}, Ledger(), None)
    resp = _one_call(client, _req(1, model="big"))
    assert srv.chat_requests[0].body["model"] == "small"
    row = client.ledger.frame().row(0, named=True)
    assert row["model"] == "small" and row["outcome"] == "ok"
    assert resp.cost_nano == 2 * 50 + 200 == row["cost_nano"]


def test_halt_raises_budget_halt(srv):
    client = build_client(_llm(srv.base_url), {"run_usd": "0.00001", "on_exhaust": "halt"}, Ledger(), None)
    with pytest.raises(BudgetHalt) as e:
        _one_call(client, _req(1))
    assert e.value.scope == "run"
    assert client.ledger.frame()["outcome"].to_list() == ["denied"] and srv.chat_requests == []


def test_unknown_policy_is_rejected_naming_the_key():
    with pytest.raises(ValueError, match="on_exhaust"):
        Budget(policy="borrow")
