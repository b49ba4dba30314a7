"""OpenAIProvider against the real loopback server: usage, faults, keys, loops."""
from __future__ import annotations

import asyncio
import gc
import json
import warnings

import pytest

from sim.inference.errors import BadRequest, MalformedReply, ProviderTimeout, RateLimited, ServerError
from sim.inference.providers.openai_provider import OpenAIProvider, response_format, retry_after_s
from sim.inference.types import ChatRequest, Provider, estimate_tokens_upper
from sim.testing.loopback import LoopbackServer, count_tokens

KEY_ENV = "AGORA_TEST_OPENAI_KEY"
SECRET = "sk-test-6f1c9a-not-a-real-key"


@pytest.fixture
def srv():
    with LoopbackServer(hang_s=1.0) as s:
        yield s


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def _provider(srv: LoopbackServer, **kw) -> OpenAIProvider:
    kw.setdefault("api_key_env", None)
    return OpenAIProvider(srv.base_url, "loop-model", timeout_s=kw.pop("timeout_s", 5.0), **kw)


def _req(user: str = "hello", system: str = "You are a trader.", **kw) -> ChatRequest:
    return ChatRequest(messages=(("system", system), ("user", user)), model="loop-model", **kw)


def _call(p: OpenAIProvider, *reqs: ChatRequest):
    """Run requests in order on a fresh loop, closing the client in that loop."""
    async def go():
        try:
            return [await p.complete(r) for r in reqs]
        finally:
            await p.aclose()

    out = asyncio.run(go())
    return out[0] if len(out) == 1 else out


def test_provider_satisfies_protocol(srv):
    assert isinstance(_provider(srv), Provider)


def test_ok_call_reports_server_usage_and_prefix_cache(srv):
    p = _provider(srv)
    # prompt text "system: " + 32 a + "\nuser: " + 1 char = 48 bytes = 12 tokens
    a = _req(user="x", system="a" * 32)
    b = _req(user="y", system="a" * 32)

    first, second = _call(p, a, b)
    assert first.usage.prompt_tokens == 12 and first.usage.source == "server"
    assert first.usage.completion_tokens == count_tokens(first.text) > 0
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens == 11  # 47 shared bytes -> 11 whole tokens
    assert first.request_id == "req-loopback-1" and second.request_id == "req-loopback-2"
    assert first.model == "loop-model" and first.finish_reason == "stop"
    assert first.provider == "openai" and first.latency_ms > 0
    assert p.cached_missing == 0


@pytest.mark.parametrize("fault, error", [
    ("429", RateLimited), ("500", ServerError), ("503", ServerError), ("400", BadRequest),
    ("404", BadRequest), ("malformed", MalformedReply), ("no_choices", MalformedReply),
])
def test_each_fault_maps_to_its_error_with_exactly_one_http_request(srv, fault, error):
    srv.script([fault])
    with pytest.raises(error):
        _call(_provider(srv), _req())
    assert len(srv.chat_requests) == 1  # the SDK's hidden retries are off


def test_rate_limit_carries_retry_after(srv):
    srv.script(["429"])
    with pytest.raises(RateLimited) as info:
        _call(_provider(srv), _req())
    assert info.value.retry_after == 0.0


def test_hanging_server_is_a_timeout(srv):
    srv.script(["timeout"])
    with pytest.raises(ProviderTimeout):
        _call(_provider(srv, timeout_s=0.3), _req())
    assert len(srv.chat_requests) == 1


def test_connection_refused_is_a_server_error():
    with LoopbackServer() as s:
        url = s.base_url  # the port is closed once the server stops
    p = OpenAIProvider(url, "m", api_key_env=None, timeout_s=1.0)
    with pytest.raises(ServerError):
        _call(p, _req())


def test_bad_json_content_is_returned_not_raised(srv):
    srv.script(["bad_json_content"])
    resp = _call(_provider(srv), _req(schema={"type": "object"}))
    with pytest.raises(ValueError):
        json.loads(resp.text)


def test_missing_usage_is_estimated(srv):
    srv.script(["no_usage"])
    req = _req()
    resp = _call(_provider(srv), req)
    assert resp.usage.source == "estimated"
    assert resp.usage.prompt_tokens == estimate_tokens_upper(req.messages)
    assert resp.usage.completion_tokens == len(resp.text.encode())


def test_missing_cached_tokens_count_as_zero_and_are_noted(srv):
    srv.script(["ok", "no_cached"])
    p = _provider(srv)

    _, resp = _call(p, _req(), _req())
    assert resp.usage.cached_tokens == 0 and resp.usage.source == "server"
    assert p.cached_missing == 1


def test_key_comes_from_env_and_never_shows_in_repr(srv, key):
    p = _provider(srv, api_key_env=KEY_ENV)
    _call(p, _req())
    assert srv.chat_requests[0].headers["authorization"] == f"Bearer {key}"
    assert key not in repr(p) and key not in str(p)
    assert key not in repr(vars(p))


def test_local_server_without_key_gets_placeholder(srv):
    _call(_provider(srv, api_key_env=None), _req())
    assert srv.chat_requests[0].headers["authorization"] == "Bearer sk-local"


def test_missing_key_env_fails_at_construction(monkeypatch, srv):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ValueError, match=KEY_ENV):
        OpenAIProvider(srv.base_url, "m", api_key_env=KEY_ENV)


@pytest.mark.parametrize("cap_param, other", [("max_tokens", "max_completion_tokens"),
                                               ("max_completion_tokens", "max_tokens")])
def test_cap_parameter_selection(srv, cap_param, other):
    _call(_provider(srv, cap_param=cap_param), _req(max_tokens=37))
    body = srv.chat_requests[0].body
    assert body[cap_param] == 37 and other not in body


def test_request_body_carries_sampling_seed_and_extra_body(srv):
    p = _provider(srv, extra_body={"top_k": 5})
    _call(p, _req(temperature=0.2, top_p=0.5, seed=11))
    body = srv.chat_requests[0].body
    assert (body["temperature"], body["top_p"], body["seed"], body["top_k"]) == (0.2, 0.5, 11, 5)
    assert body["messages"][1] == {"role": "user", "content": "hello"}


SCHEMA = {"type": "object", "properties": {"bid": {"type": "integer", "minimum": 4}}, "required": ["bid"]}


@pytest.mark.parametrize("mode", ["json_schema", "json_object"])
def test_schema_modes_shape_the_request_and_get_valid_json(srv, mode):
    resp = _call(_provider(srv, schema_mode=mode), _req(schema=SCHEMA))
    assert srv.chat_requests[0].body["response_format"] == response_format(SCHEMA, mode)
    assert json.loads(resp.text) == {"bid": 4}


def test_schema_mode_none_sends_no_response_format(srv):
    _call(_provider(srv, schema_mode="none"), _req(schema=SCHEMA))
    assert "response_format" not in srv.chat_requests[0].body


def test_response_format_shapes():
    assert response_format(SCHEMA, "json_schema") == {
        "type": "json_schema", "json_schema": {"name": "action", "strict": True,
                                               "schema": {**SCHEMA, "additionalProperties": False,
                                                          "required": list(SCHEMA["properties"])}}}
    assert response_format(SCHEMA, "json_object") == {"type": "json_object", "schema": SCHEMA}
    assert response_format(None, "json_schema") is None
    with pytest.raises(ValueError):
        response_format(SCHEMA, "xml")


def test_retry_after_parsing():
    assert retry_after_s({"retry-after": "2"}) == 2.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after_s({}) is None


def test_hundred_concurrent_calls_under_one_runner():
    with LoopbackServer(latency_s=0.02) as s:
        p = OpenAIProvider(s.base_url, "m", api_key_env=None, timeout_s=20.0)
        reqs = [_req(user=f"agent {i}") for i in range(100)]

        async def tick():
            return await asyncio.gather(*(p.complete(r) for r in reqs))

        with asyncio.Runner() as runner:
            out = runner.run(tick())
            runner.run(p.aclose())
        assert len(out) == 100 and len(s.chat_requests) == 100
        assert len({r.request_id for r in out}) == 100
        assert all(r.usage.prompt_tokens > 0 for r in out)


def test_one_provider_across_ticks_of_one_runner(srv):
    p = _provider(srv)
    with asyncio.Runner() as runner:
        texts = [runner.run(p.complete(_req(user=f"tick {t}"))).text for t in range(3)]
        client = p._client
        runner.run(p.complete(_req()))
        assert p._client is client  # same loop -> same pooled client
        runner.run(p.aclose())
    assert texts == [f"Loopback reply to: tick {t}" for t in range(3)]


def test_fresh_event_loop_per_call_still_works(srv):
    # The pitfall: a client reused across asyncio.run() calls dies with "Event loop is closed".
    p = _provider(srv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # the dead loops' sockets are never closed
        for t in range(3):
            assert asyncio.run(p.complete(_req(user=f"t{t}"))).text == f"Loopback reply to: t{t}"
        del p
        gc.collect()


def test_constructor_validates_options(srv):
    with pytest.raises(ValueError):
        _provider(srv, cap_param="max_output_tokens")
    with pytest.raises(ValueError):
        _provider(srv, schema_mode="grammar")


def test_strict_schema_closes_every_object_and_requires_every_property():
    from environments.traitors.actions import belief_model
    from sim.inference.providers.openai_provider import strict_schema

    src = belief_model(["p2", "p3"]).model_json_schema()
    out = strict_schema(src)
    assert src != out and "additionalProperties" not in src  # the input is not modified

    def objects(node):
        if isinstance(node, dict):
            if node.get("type") == "object":
                yield node
            for v in node.values():
                yield from objects(v)
        elif isinstance(node, list):
            for v in node:
                yield from objects(v)

    objs = list(objects(out))
    assert len(objs) == 3  # Belief, TraitorPercent and TrustPoints (in $defs)
    for o in objs:
        assert o["additionalProperties"] is False and o["required"] == list(o["properties"])


def test_strict_schema_keeps_keywords_and_property_names():
    from pydantic import BaseModel, Field

    from sim.inference.providers.openai_provider import strict_schema

    class Odd(BaseModel):
        format: str = Field("x", max_length=5)  # a property *named* like a keyword
        n: int = Field(3, ge=1, le=9)

    out = strict_schema(Odd.model_json_schema())
    assert set(out["properties"]) == {"format", "n"} and out["required"] == ["format", "n"]
    assert out["properties"] == Odd.model_json_schema()["properties"]  # names and bounds untouched
