"""The loopback server over real sockets: replies, faults, keep-alive, clean stop."""
from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from sim.testing.loopback import (
    LoopbackServer,
    cached_prefix_tokens,
    count_tokens,
    minimal_instance,
    prompt_text,
)


def _post(conn: http.client.HTTPConnection, body: dict, headers: dict | None = None):
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    return resp, resp.read()


def _chat(content: str = "hi", **extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


def _loopback_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("loopback-")]


def _wait_until(pred, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.002)


# ---------------------------------------------------------------- pure helpers


def test_count_tokens_rounds_bytes_up():
    assert count_tokens("") == 0
    assert count_tokens("abcd") == 1
    assert count_tokens("abcde") == 2
    assert count_tokens("é") == 1  # 2 UTF-8 bytes


def test_cached_prefix_counts_whole_shared_blocks():
    assert cached_prefix_tokens(b"", b"abcdefgh") == 0
    assert cached_prefix_tokens(b"abcdefgh", b"abcdefgh") == 2
    assert cached_prefix_tokens(b"abcdefXY", b"abcdefgh") == 1  # 6 shared bytes -> 1 whole block
    assert cached_prefix_tokens(b"zbcdefgh", b"abcdefgh") == 0


def test_prompt_text_tags_roles_one_line_each():
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    assert prompt_text(msgs) == "system: be brief\nuser: hi"


def test_minimal_instance_follows_schema_constraints():
    schema = {
        "type": "object",
        "properties": {
            "action": {"enum": ["vote", "pass"]},
            "amount": {"type": "integer", "minimum": 3, "maximum": 9},
            "price": {"type": "number", "exclusiveMinimum": 1.0},
            "target": {"type": ["string", "null"], "minLength": 2},
            "tags": {"type": "array", "items": {"type": "boolean"}, "minItems": 2},
            "kind": {"const": "bid"},
            "ref": {"$ref": "#/$defs/Who"},
            "optional": {"type": "string"},
        },
        "required": ["action", "amount", "price", "target", "tags", "kind", "ref"],
        "$defs": {"Who": {"type": "object", "properties": {"id": {"type": "integer", "maximum": -4}},
                          "required": ["id"]}},
    }
    assert minimal_instance(schema) == {
        "action": "vote", "amount": 3, "price": 1.5, "target": "xx",
        "tags": [False, False], "kind": "bid", "ref": {"id": -4},
    }


def test_minimal_instance_takes_first_anyof_branch():
    assert minimal_instance({"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]}) == 1


# ---------------------------------------------------------------- over HTTP


@pytest.fixture
def srv():
    with LoopbackServer(hang_s=5.0) as s:
        yield s


def test_base_url_and_models_endpoint(srv):
    assert srv.base_url == f"http://127.0.0.1:{srv.port}/v1"
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
    conn.request("GET", "/v1/models")
    resp = conn.getresponse()
    data = json.loads(resp.read())
    assert resp.status == 200 and data["data"][0]["id"] == "loopback"
    conn.close()


def test_ok_reply_usage_and_prefix_cache(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
    _, raw1 = _post(conn, _chat("a" * 10))
    _, raw2 = _post(conn, _chat("a" * 10 + "b"))
    first, second = json.loads(raw1), json.loads(raw2)
    # "user: " + 10 a = 16 bytes = 4 tokens; + "b" = 17 bytes = 5 tokens
    assert first["usage"]["prompt_tokens"] == 4
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
    assert second["usage"]["prompt_tokens"] == 5
    assert second["usage"]["prompt_tokens_details"]["cached_tokens"] == 4
    text = first["choices"][0]["message"]["content"]
    assert first["usage"]["completion_tokens"] == count_tokens(text)
    conn.close()


def test_schema_reply_is_a_valid_minimal_instance(srv):
    schema = {"type": "object", "properties": {"vote": {"enum": ["p2", "p3"]}}, "required": ["vote"]}
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
    rf = {"type": "json_schema", "json_schema": {"name": "action", "schema": schema, "strict": True}}
    _, raw = _post(conn, _chat(response_format=rf))
    assert json.loads(json.loads(raw)["choices"][0]["message"]["content"]) == {"vote": "p2"}
    conn.close()


def test_responder_overrides_content(srv):
    srv.responder = lambda body: body["messages"][-1]["content"].upper()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
    _, raw = _post(conn, _chat("shout"))
    assert json.loads(raw)["choices"][0]["message"]["content"] == "SHOUT"
    conn.close()


def test_script_is_consumed_in_arrival_order_on_one_keepalive_socket(srv):
    srv.script(["429", "500", "malformed", "bad_json_content", "ok"])
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
    statuses, bodies, socks = [], [], set()
    for _ in range(5):
        resp, raw = _post(conn, _chat(), headers={"Authorization": "Bearer k"})
        statuses.append(resp.status)
        bodies.append(raw)
        socks.add(id(conn.sock))
        if resp.status == 429:
            assert resp.getheader("retry-after") == "0"
    assert statuses == [429, 500, 200, 200, 200]
    assert len(socks) == 1  # keep-alive: one connection served all five
    with pytest.raises(ValueError):
        json.loads(bodies[2])
    content = json.loads(bodies[3])["choices"][0]["message"]["content"]
    with pytest.raises(ValueError):
        json.loads(content)
    assert [r.fault for r in srv.chat_requests] == ["429", "500", "malformed", "bad_json_content", "ok"]
    assert srv.chat_requests[0].headers["authorization"] == "Bearer k"
    assert srv.pending == 0
    conn.close()


def test_unknown_fault_is_rejected(srv):
    with pytest.raises(ValueError):
        srv.script(["explode"])
    with pytest.raises(ValueError):
        LoopbackServer(fail_kind="explode")


def test_fail_rate_is_seeded():
    def faults(seed: int) -> list[str]:
        with LoopbackServer(fail_rate=0.5, fail_kind="503", seed=seed) as s:
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=2)
            for _ in range(12):
                _post(conn, _chat())
            conn.close()
            return [r.fault for r in s.chat_requests]

    a, b = faults(7), faults(7)
    assert a == b
    assert {"503", "ok"} == set(a)


def test_streaming_sends_usage_chunk_last(srv):
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
    resp, raw = _post(conn, _chat("stream me", stream=True, stream_options={"include_usage": True}))
    assert resp.getheader("content-type") == "text/event-stream"
    events = [e[len("data: "):] for e in raw.decode().split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == count_tokens("user: stream me")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks[:-1])
    assert text == "Loopback reply to: stream me"
    conn.close()


def test_stop_wakes_hanging_requests_and_closes_idle_connections():
    srv = LoopbackServer(hang_s=30.0).start()
    idle = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
    _post(idle, _chat())  # leaves a keep-alive handler thread parked in readline()
    srv.script(["timeout"])
    outcome: list[BaseException | int] = []

    def hang() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=5)
        try:
            outcome.append(_post(conn, _chat())[0].status)
        except Exception as exc:  # the server closes the socket without replying
            outcome.append(exc)

    client = threading.Thread(target=hang)
    client.start()
    _wait_until(lambda: len(srv.chat_requests) == 2)
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 1.0  # not the 30 s hang
    client.join(2)
    assert outcome and isinstance(outcome[0], Exception)
    assert _loopback_threads() == []
    idle.close()


def test_keepalive_round_trips_do_not_stall_on_nagle(srv):
    # A split header/body write without TCP_NODELAY costs ~40 ms per request on
    # a kept-alive socket; 30 of them would take over a second.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=2)
    _post(conn, _chat())  # connect outside the timed part
    t0 = time.perf_counter()
    for _ in range(30):
        _post(conn, _chat())
    assert time.perf_counter() - t0 < 0.6
    conn.close()
