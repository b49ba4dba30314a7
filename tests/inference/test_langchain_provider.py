"""LangChainProvider: import paths, message conversion, usage mapping, errors, no hook leak."""
from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.tracers import context as lc_context

from sim.inference.errors import BadRequest, ProviderTimeout, RateLimited, ServerError
from sim.inference.providers.langchain_provider import LangChainProvider, import_object, to_messages
from sim.inference.types import ChatRequest, Provider, estimate_tokens_upper
from sim.testing.fake_chat import UsageFakeChatModel
from sim.testing.loopback import count_tokens

GENERIC = "langchain_core.language_models.fake_chat_models:GenericFakeChatModel"
FAKE = "sim.testing.fake_chat:UsageFakeChatModel"


def _req(user: str = "bid?", schema: dict | None = None) -> ChatRequest:
    return ChatRequest(messages=(("system", "You trade."), ("user", user)), model="req-model", schema=schema)


def test_import_path_forms():
    assert import_object(FAKE) is UsageFakeChatModel
    assert import_object("sim.testing.fake_chat.UsageFakeChatModel") is UsageFakeChatModel
    with pytest.raises(ValueError):
        import_object("nodots")
    with pytest.raises(TypeError):
        LangChainProvider("json:dumps", {})


def test_messages_convert_by_role_and_schema_joins_system_prompt():
    schema = {"type": "object", "required": ["vote"]}
    msgs = to_messages((("system", "Rules."), ("user", "hi"), ("assistant", "ok")), schema)
    assert [type(m) for m in msgs] == [SystemMessage, HumanMessage, AIMessage]
    assert msgs[0].content.startswith("Rules.") and json.dumps(schema, sort_keys=True) in msgs[0].content
    no_system = to_messages((("user", "hi"),), schema)
    assert isinstance(no_system[0], SystemMessage) and no_system[1].content == "hi"
    assert to_messages((("user", "hi"),), None) == [HumanMessage(content="hi")]
    with pytest.raises(BadRequest):
        to_messages((("tool", "x"),), None)


def test_usage_metadata_maps_to_usage_with_generic_fake():
    reply = AIMessage(content='{"bid": 3}', usage_metadata={
        "input_tokens": 11, "output_tokens": 3, "total_tokens": 14, "input_token_details": {"cache_read": 5}},
        response_metadata={"model_name": "served-model", "finish_reason": "length"})
    p = LangChainProvider(GENERIC, {"messages": iter([reply])})
    assert isinstance(p, Provider)
    resp = asyncio.run(p.complete(_req()))
    assert resp.text == '{"bid": 3}'
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.cached_tokens) == (11, 3, 5)
    assert resp.usage.source == "server"
    assert resp.model == "served-model" and resp.finish_reason == "length"
    assert resp.provider == "langchain" and resp.latency_ms > 0


def test_missing_usage_is_estimated():
    p = LangChainProvider(GENERIC, {"messages": iter(["plain text"])})
    req = _req()
    resp = asyncio.run(p.complete(req))
    assert resp.usage.source == "estimated"
    assert resp.usage.prompt_tokens == estimate_tokens_upper(req.messages)
    assert resp.usage.completion_tokens == len("plain text")
    assert resp.model == "req-model"  # no model name in the reply


def test_fake_model_usage_counts_the_schema_prompt_too():
    p = LangChainProvider(FAKE, {"reply": '{"vote": "p1"}', "cache_read": 2})
    schema = {"type": "object"}
    resp = asyncio.run(p.complete(_req(schema=schema)))
    sent = "\n".join(str(m.content) for m in to_messages(_req(schema=schema).messages, schema))
    assert resp.usage.prompt_tokens == count_tokens(sent)
    assert resp.usage.completion_tokens == count_tokens('{"vote": "p1"}')
    assert resp.usage.cached_tokens == 2


@pytest.mark.parametrize("fail, error", [
    ("timeout", ProviderTimeout), ("429", RateLimited), ("503", ServerError),
    ("400", BadRequest), ("boom", ServerError),
])
def test_errors_map_to_typed_errors(fail, error):
    p = LangChainProvider(FAKE, {"fail": fail})
    with pytest.raises(error):
        asyncio.run(p.complete(_req()))
    assert p.chat_model.calls == 1  # no retry inside the provider


def test_rate_limit_keeps_retry_after():
    p = LangChainProvider(FAKE, {"fail": "429"})
    with pytest.raises(RateLimited) as info:
        asyncio.run(p.complete(_req()))
    assert info.value.retry_after == 0.0


def test_one_handler_for_200_calls_no_hook_growth(monkeypatch):
    p = LangChainProvider(FAKE, {"model_name": "fake-a"})
    created: list[object] = []
    original_init = UsageMetadataCallbackHandler.__init__

    def counting_init(self) -> None:
        created.append(self)
        original_init(self)

    monkeypatch.setattr(UsageMetadataCallbackHandler, "__init__", counting_init)
    hooks = len(lc_context._configure_hooks)
    req = _req()

    async def many():
        return [await p.complete(req) for _ in range(200)]

    with asyncio.Runner() as runner:
        out = runner.run(many())
    assert len(lc_context._configure_hooks) == hooks
    assert created == []  # no handler per call
    per_call = out[0].usage
    totals = p.usage_totals["fake-a"]
    assert totals["input_tokens"] == 200 * per_call.prompt_tokens
    assert totals["output_tokens"] == 200 * per_call.completion_tokens


def test_concurrent_calls_share_the_handler():
    p = LangChainProvider(FAKE, {"model_name": "fake-b"})

    async def burst():
        return await asyncio.gather(*(p.complete(_req(user=f"u{i}")) for i in range(50)))

    out = asyncio.run(burst())
    assert p.usage_totals["fake-b"]["input_tokens"] == sum(r.usage.prompt_tokens for r in out)
