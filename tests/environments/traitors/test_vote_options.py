"""A model sees its vote options in its own seeded order (SmolLM2 voted for the first one listed)."""
from __future__ import annotations

import json

import sim
from sim.testing.loopback import LoopbackServer, schema_of

QUICK = ["env=traitors", "run.dir=null", "agent.reflection.enabled=false", "env.n_players=8", "env.n_traitors=2",
         "env.max_rounds=2", "env.discussion_passes=0", "env.belief_probe=false", "env.reactions=false"]


def _vote_orders(srv: LoopbackServer) -> list[list[str]]:
    out = []
    for r in srv.chat_requests:
        schema = schema_of(r.body or {}) or {}
        target = json.dumps(schema)
        if '"target"' in target:
            enum = (schema.get("properties") or {}).get("target", {}).get("enum")
            if enum:
                out.append(list(enum))
    return out


def _run(seed: int) -> tuple[list[list[str]], "sim.RunResult"]:
    with LoopbackServer() as srv:
        ep = (f"{{provider: openai, model: m, base_url: '{srv.base_url}', api_key_env: null, "
              "schema_mode: json_schema, max_retries: 0, prices: {m: {input_per_mtok: 1, output_per_mtok: 2}}}")
        res = sim.run(QUICK + ["llm=scripted", f"seed={seed}", f"+agent.llm_by_role.faithful={ep}",
                               "engine.concurrency=1"], progress=False)
        return _vote_orders(srv), res


def test_model_vote_options_are_shuffled_per_agent_and_seeded():
    orders, res = _run(3)
    assert len(orders) >= 5
    seat = [sorted(o, key=lambda p: int(p[1:])) for o in orders]
    assert all(sorted(o) == sorted(s) for o, s in zip(orders, seat))  # a permutation of the valid targets
    assert sum(o != s for o, s in zip(orders, seat)) >= len(orders) // 2  # not seat order for most voters
    assert len({o[0] for o in orders}) > 1  # "first listed" is not one player for everyone
    again, res2 = _run(3)
    assert again == orders and res2.events.equals(res.events)  # seeded: the same run shows the same orders
