"""One phase's scripted decisions as a batch, through the same seam as ``Environment.act_all``.

An environment that can decide for many scripted agents at once (arrays, one
call, the same seeded streams as each agent's fallback) asks through
``act_batch``. When every agent in the phase is scripted on a direct endpoint
(the Monte Carlo case) the batch is decided in one call and its rows are
written in bulk: the ledger rows ``Client.act_direct`` would write and the
``llm_call`` events ``act_all`` would emit, with the same call ids, in request
order. When some agents are scripted and some are not (a model, a human seat),
the batch decides for the scripted ones and every request still goes through
``act_all``, so call ids, events and LLM calls are exactly the per-agent path's.
``engine.batch_scripted=false`` selects the per-agent reference path
everywhere; tests/sim/test_batch.py and the environments' batch tests hold the
two paths to identical events, ledgers and outcomes.

A batch decider must return, for the agents it is given, the very actions their
per-agent fallbacks would return against the same state (valid by construction:
the bulk path writes ``ok`` rows without re-checking them).
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from itertools import repeat
from typing import TYPE_CHECKING, Any, Callable, Sequence

from pydantic import BaseModel

from sim.events import quote
from sim.inference.client import ActResult
from sim.inference.ledger import LedgerRow

if TYPE_CHECKING:
    from sim.engine import ActRequest, Environment, PlayerBase


class Decided:
    """A batch-decided action: its fields as attributes, and ``model_dump`` like a pydantic action.

    Building a pydantic class per target set costs about a millisecond, more than a whole
    batch; the bulk path hands these out instead, and the mixed path's ``act_direct``
    validates them into the request's action class like any scripted answer.
    """

    __slots__ = ("__dict__",)

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def model_dump(self) -> dict:
        return dict(self.__dict__)

    def __eq__(self, other) -> bool:
        return isinstance(other, Decided) and other.__dict__ == self.__dict__

    def __repr__(self) -> str:
        return f"Decided({self.__dict__})"


def batch_enabled(env: "Environment") -> bool:
    """Whether this run takes the batch path (``engine.batch_scripted``, on unless switched off)."""
    return env.svc is not None and env.svc.batch_scripted


def direct_mask(env: "Environment", agents: Sequence["PlayerBase"]) -> list[bool]:
    """Per agent: answered by the scripted policy on a direct endpoint (decided in place, no client)."""
    client = env.svc.client
    humans = env.svc.humans  # without human seats a scripted endpoint's agent is scripted (``policy_of``)
    seen: dict[str, bool] = {}
    out = []
    for a in agents:
        d = seen.get(a.endpoint)
        if d is None:
            ep = client.endpoint(a.endpoint)
            d = seen[a.endpoint] = ep.direct and ep.scripted
        out.append(d and (not humans or env.policy_of(a) == "scripted"))
    return out


def record_scripted(env: "Environment", agents: Sequence["PlayerBase"], purpose: str,
                    max_tokens: int | None = None) -> None:
    """The ledger rows and ``llm_call`` events of ``len(agents)`` valid scripted decisions, in bulk.

    The same rows ``act_all`` + ``Client.act_direct`` write one request at a time: one
    call id each in order, one ``ok`` ledger row, one private ``llm_call`` event (its payload
    text from a template: ``dumps`` of the same dict, keys in sorted order).
    """
    client = env.svc.client
    ledger = client.ledger
    n = len(agents)
    cid = client.next_call_id
    client.next_call_id += n
    tick, phase, run_id = env.tick, env.phase, ledger.run_id
    aids = [a.aid for a in agents]
    endpoints = [a.endpoint for a in agents]
    eps: dict[str, tuple] = {}
    for name in dict.fromkeys(endpoints):  # in order of first use, as one request at a time asks
        ep = client.endpoint(name)
        eps[name] = (ep.model, ep.price_version, int(max_tokens or ep.params.get("max_tokens") or 96))
    rows = [LedgerRow(c, 1, tick, phase, a, purpose, 0, "scripted", e, *eps[e][:2], "", 0, eps[e][2], run_id=run_id)
            for c, a, e in zip(range(cid, cid + n), aids, endpoints)]
    ledger.rows.extend(rows)
    head = '{"call_id":'
    tail = f',"purpose":{quote(purpose)},"reason":"","source":"scripted","valid":true}}'
    env.svc.events.extend_columns(tick, phase, aids, repeat("llm_call"), [f"{head}{c}{tail}" for c in range(cid, cid + n)],
                                  ["private:" + a for a in aids])


@contextmanager
def collector_paused():
    """The cyclic garbage collector held off for a bulk phase (reference counting still frees as usual).

    A bulk phase allocates tens of thousands of small objects that all live on (event rows,
    ledger rows, orders); each few hundred of them would start a collection, and some of those
    scan the whole heap (a 1,000-trader market's agents). Held off, the phase's objects are
    looked at once, by the first collection after it. Nested pauses keep the outer one's state.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def decide_bulk(env: "Environment", agents: Sequence["PlayerBase"], purpose: str, decide: Callable[[], Any],
                max_tokens: int | None = None) -> Any | None:
    """``decide()`` for a phase whose agents are all scripted on a direct endpoint, else None.

    The bulk half of ``act_batch`` for an environment that applies the decisions itself
    (whatever ``decide`` returns: columns, not one action object per agent): the ledger rows
    and ``llm_call`` events are written as ``act_batch`` writes them. On None the caller
    takes ``act_batch`` (mixed populations, the per-agent reference path).
    """
    if not agents or not batch_enabled(env) or not all(direct_mask(env, agents)):
        return None
    out = decide()
    record_scripted(env, agents, purpose, max_tokens)
    return out


def act_batch(env: "Environment", agents: Sequence["PlayerBase"], purpose: str,
              request_for: Callable[["PlayerBase"], "ActRequest"],
              decide: Callable[[list[int]], Sequence[BaseModel]],
              max_tokens: int | None = None) -> list[ActResult]:
    """One phase's decisions for ``agents`` (request order); the results ``act_all`` would return.

    ``request_for(agent)`` builds the per-agent request (reference path, models, humans);
    ``decide(positions)`` returns the scripted actions of ``agents[i]`` for those positions.
    """
    if not agents:
        return []
    if not batch_enabled(env):
        return env.act_all([request_for(a) for a in agents])
    mask = direct_mask(env, agents)
    if all(mask):
        actions = decide(list(range(len(agents))))
        record_scripted(env, agents, purpose, max_tokens)
        return [ActResult(act, True, "scripted") for act in actions]
    reqs = [request_for(a) for a in agents]
    pos = [i for i, m in enumerate(mask) if m]
    if pos:  # mixed: the batch answers the scripted ones through their requests' fallbacks
        for i, act in zip(pos, decide(pos)):
            reqs[i].fallback = _constant(act)
    return env.act_all(reqs)


def _constant(action: BaseModel) -> Callable[[], BaseModel]:
    return lambda: action


def act_each(env: "Environment", agents: Sequence["PlayerBase"], purpose: str,
             request_for: Callable[["PlayerBase"], "ActRequest"],
             decide: Callable[[list[int]], Sequence[BaseModel]],
             on_result: Callable[["PlayerBase", ActResult], None], max_tokens: int | None = None) -> None:
    """Agents act in turn, each result applied (``on_result``) before the next one acts.

    For turns whose scripted answers do not depend on the earlier turns (a reaction, a
    conclave line): when all are scripted on a direct endpoint the answers come from one
    ``decide`` call and each turn's rows are written in order; otherwise one ``act`` per turn.
    """
    if agents and batch_enabled(env) and all(direct_mask(env, agents)):
        for a, act in zip(agents, decide(list(range(len(agents))))):
            record_scripted(env, [a], purpose, max_tokens)
            on_result(a, ActResult(act, True, "scripted"))
        return
    for a in agents:
        on_result(a, env.act(request_for(a)))
