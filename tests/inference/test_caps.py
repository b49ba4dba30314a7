"""Output caps from the action's schema, menus for the local grammar, and re-asks that are not repeats."""
from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel, Field, ValidationError, create_model

from environments.market.actions import order_model
from environments.taxation.actions import proposal_model, rate_percent_grid
from environments.traitors.actions import Speech, vote_model
from sim.inference.caps import (STRUCT_CHARS_PER_TOKEN, bounded_menus, max_json_chars, output_cap,
                                schema_tokens)
from sim.inference.client import REASK_MIN_TEMPERATURE, Client
from sim.inference.types import CallMeta, ChatRequest, json_schema
from sim.testing.loopback import LoopbackServer
from tests.llm_configs import openai_llm


def _longest_text(model: type[BaseModel], obj: dict) -> str:
    text = json.dumps(model.model_validate(obj).model_dump(), indent=2)
    return text


def test_the_longest_tax_proposal_fits_its_cap_but_not_96_tokens_at_the_measured_rate():
    """The issue's case: 7 brackets at 96 tokens. SmolLM2 spent 105 tokens on the compact form."""
    cls = proposal_model(7, rate_percent_grid(5))
    schema = cls.model_json_schema()
    longest = _longest_text(cls, {f"bracket_{k}_pct": 100 for k in range(1, 8)})
    assert max_json_chars(schema) >= len(longest)
    cap = output_cap(96, schema)
    assert cap > 96 and cap >= len(longest) / STRUCT_CHARS_PER_TOKEN
    assert cap >= 114  # the pretty-printed form measured 114 SmolLM2 tokens


def test_a_configured_cap_that_is_enough_is_kept():
    assert output_cap(120, Speech.model_json_schema()) == 120  # 160 characters of prose fit in 120
    assert output_cap(500, vote_model(["p1", "p2"]).model_json_schema()) == 500


def test_bounds_enums_lengths_and_arrays_set_the_longest_text():
    M = create_model("M", side=(str, Field(..., max_length=4)), n=(int, Field(0, ge=-100, le=5)),
                     xs=(list[bool], Field(..., max_length=3)))
    chars = max_json_chars(M.model_json_schema())
    longest = json.dumps({"side": "abcd", "n": -100, "xs": [False, False, False]})
    assert chars >= len(longest)


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"t": {"type": "string"}}},  # no maxLength
    {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}}}},  # no maxItems
    {"type": "object", "additionalProperties": {"type": "integer"}},  # a free map
])
def test_unbounded_schemas_leave_the_configured_cap(schema):
    assert schema_tokens(schema) is None
    assert output_cap(64, schema) == 64


def test_bounded_integers_become_menus_for_the_local_grammar():
    schema = order_model(200, 5).model_json_schema()
    menus = bounded_menus(schema)
    price, qty = menus["properties"]["price"], menus["properties"]["qty"]
    assert price["enum"] == list(range(0, 201)) and qty["enum"] == [0, 1, 2, 3, 4, 5]
    assert menus["properties"]["side"] == schema["properties"]["side"]  # the rest is untouched
    assert "enum" not in schema["properties"]["price"]  # a copy: the cached class schema is not changed


def test_a_range_too_wide_to_list_is_left_bounded():
    schema = order_model(10**7, 5).model_json_schema()
    assert "enum" not in bounded_menus(schema)["properties"]["price"]


def test_menus_accept_exactly_what_the_bounds_accept():
    cls = order_model(200, 5)
    menu = bounded_menus(cls.model_json_schema())["properties"]["qty"]["enum"]
    for q in range(-3, 10):
        try:
            cls.model_validate({"side": "buy", "price": 10, "qty": q})
            ok = True
        except ValidationError:
            ok = False
        assert ok is (q in menu)


def test_the_local_provider_sends_menus_in_its_grammar(monkeypatch):
    """The schema handed to llama-cpp (its grammar) lists the bounded values; no model is loaded."""
    from sim.inference.providers import local

    seen = {}

    class FakeLlama:
        _input_ids: list = []

        def set_seed(self, s):
            pass

        def create_chat_completion(self, **kw):
            seen.update(kw)
            return {"choices": [{"message": {"content": '{"side":"hold","price":0,"qty":0}'}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 4}}

    p = local.LocalProvider.__new__(local.LocalProvider)
    p.model, p._llm = "m", FakeLlama()
    req = ChatRequest(messages=(("user", "order?"),), model="m", schema=json_schema(order_model(200, 5)))
    asyncio.run(p.complete(req))
    sent = seen["response_format"]["schema"]["properties"]
    assert sent["qty"]["enum"] == [0, 1, 2, 3, 4, 5] and len(sent["price"]["enum"]) == 201


def test_a_reask_changes_the_seed_and_warms_the_temperature():
    """An invalid reply is re-asked with another seed (and temperature >= 0.5), not the identical request."""
    from sim.inference.budget import Budget
    from sim.inference.ledger import Ledger

    replies = iter(['{"side": "buy", "price": 10, "qty": 2000}', '{"side": "buy", "price": 10, "qty": 2}'])
    with LoopbackServer(responder=lambda body: next(replies)) as srv:
        client = Client(Budget(), Ledger())
        client.add_endpoint("default", openai_llm(srv.base_url, temperature=0.0))
        cls = order_model(200, 5)
        req = ChatRequest(messages=(("user", "order?"),), model="loop-model", max_tokens=64, temperature=0.0,
                          seed=1234, meta=CallMeta(agent="p1", purpose="order", call_id=1))
        res = asyncio.run(client.act(req, cls, lambda: cls(side="hold"), reasks=1))
        first, second = (r.body for r in srv.chat_requests)
    assert res.valid and res.action.qty == 2
    assert first["seed"] == 1234 and second["seed"] != 1234
    assert first["temperature"] == 0.0 and second["temperature"] == REASK_MIN_TEMPERATURE
