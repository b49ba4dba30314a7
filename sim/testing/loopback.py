"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests and benchmarks.

Standard library only. Replies are deterministic functions of the request, so
tests can assert exact token counts; faults are scripted per request so every
error path of a provider can be driven over a real socket (timeouts, 429s, 500s,
broken JSON) instead of a mocked transport.

    with LoopbackServer(latency_s=0.0) as srv:
        srv.script(["429", "ok"])
        client = AsyncOpenAI(base_url=srv.base_url, api_key="sk-local", max_retries=0)

Token units are "4 UTF-8 bytes of the prompt text", a stand-in for a tokenizer
that is cheap, deterministic and makes prefix-cache accounting checkable.
"""
from __future__ import annotations

import json
import math
import random
import socket
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable

from sim.inference.caps import resolve_ref

BYTES_PER_TOKEN = 4
NAMED_FAULTS = frozenset(
    {"ok", "timeout", "malformed", "bad_json_content", "no_usage", "no_cached", "no_choices",
     "overclaim", "echo_key", "echo_key_text", "length"}
)
OVERCLAIM_FACTOR = 1000  # an over-claiming server reports this many times the tokens it could have used
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


# ---------------------------------------------------------------- pure helpers


def is_fault(name: str) -> bool:
    """A named fault, or any HTTP status code 400-599 written as digits."""
    return name in NAMED_FAULTS or (name.isdigit() and 400 <= int(name) <= 599)


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The text the server 'tokenizes': role-tagged contents, one per line."""
    parts = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):  # content parts: keep only the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(f"{m.get('role', '')}: {content or ''}")
    return "\n".join(parts)


def count_tokens(text: str) -> int:
    """Deterministic token count: UTF-8 bytes / 4, rounded up."""
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)


def cached_prefix_tokens(prev: bytes, cur: bytes) -> int:
    """Whole tokens of ``cur`` that repeat the start of ``prev`` (prefix-cache hit).

    Only complete 4-byte blocks count, like a KV cache that reuses whole tokens.
    """
    n = min(len(prev), len(cur))
    i = 0
    while i < n and prev[i] == cur[i]:
        i += 1
    return i // BYTES_PER_TOKEN


def _minimal_number(schema: dict, integer: bool) -> int | float:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    step = 1 if integer else 0.5
    if lo is not None:
        v = math.ceil(lo) if integer else lo
    elif xlo is not None:
        v = math.floor(xlo) + 1 if integer else xlo + step
    elif hi is not None and hi < 0:
        v = math.floor(hi) if integer else hi
    elif xhi is not None and xhi <= 0:
        v = math.ceil(xhi) - 1 if integer else xhi - step
    else:
        v = 0
    return int(v) if integer else float(v)


def minimal_instance(schema: dict, root: dict | None = None) -> Any:
    """Smallest obvious value valid for a JSON schema (the common subset).

    const, first enum value, first anyOf/oneOf branch, required keys only,
    ``minItems`` copies, minimum of numeric ranges, ``minLength`` strings,
    local ``$ref``. Formats and patterns are not honoured.
    """
    root = schema if root is None else root
    schema = resolve_ref(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return minimal_instance(schema[key][0], root)
    if schema.get("allOf"):
        merged: dict = {}
        for part in schema["allOf"]:
            merged.update(resolve_ref(part, root))
        return minimal_instance(merged, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "null"
    if kind == "object":
        props = schema.get("properties", {})
        return {k: minimal_instance(props.get(k, {}), root) for k in schema.get("required", [])}
    if kind == "array":
        item = schema.get("items", {})
        return [minimal_instance(item, root) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind in ("integer", "number"):
        return _minimal_number(schema, kind == "integer")
    if kind == "boolean":
        return False
    return None


def schema_of(body: dict) -> dict | None:
    """The JSON schema a request's ``response_format`` asks for, if any."""
    rf = body.get("response_format")
    if not isinstance(rf, dict):
        return None
    if rf.get("type") == "json_schema":
        return (rf.get("json_schema") or {}).get("schema") or {}
    if rf.get("type") == "json_object":
        return rf.get("schema") or {}
    return None


def default_reply(body: dict) -> str:
    """Schema-valid JSON when a schema is asked for, else a short echo sentence."""
    schema = schema_of(body)
    if schema is not None:
        return json.dumps(minimal_instance(schema), separators=(",", ":"))
    last = next((m for m in reversed(body.get("messages", [])) if m.get("role") == "user"), {})
    words = str(last.get("content") or "").split()[:6]
    return "Loopback reply to: " + " ".join(words)


def usage_block(prompt: int, completion: int, cached: int | None) -> dict:
    u: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                         "total_tokens": prompt + completion}
    if cached is not None:
        u["prompt_tokens_details"] = {"cached_tokens": cached}
    return u


def cut_to_cap(text: str, cap: int) -> str:
    """The first ``cap`` loopback tokens of ``text`` (what a server stopped by max_tokens returns)."""
    return text.encode()[: cap * BYTES_PER_TOKEN].decode(errors="ignore")


def completion_body(rid: str, model: str, text: str, usage: dict | None, finish_reason: str = "stop") -> dict:
    body: dict[str, Any] = {
        "id": rid, "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason, "logprobs": None,
                     "message": {"role": "assistant", "content": text}}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def stream_events(rid: str, model: str, text: str, usage: dict | None) -> bytes:
    """Server-sent events of a streamed completion (usage chunk last, no choices)."""
    def chunk(choices: list, **extra: Any) -> str:
        data = {"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": choices, **extra}
        return "data: " + json.dumps(data) + "\n\n"

    mid = len(text) // 2
    events = [chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    events += [chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
               for piece in (text[:mid], text[mid:]) if piece]
    events.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if usage is not None:
        events.append(chunk([], usage=usage))
    events.append("data: [DONE]\n\n")
    return "".join(events).encode()


# ---------------------------------------------------------------- server


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict | None
    fault: str = "ok"  # what the server did with it


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply carries Content-Length
    server: "_Server"

    def setup(self) -> None:
        # Without TCP_NODELAY, keep-alive replies stall ~40 ms on Nagle + delayed ACK.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
        pass

    def _send(self, code: int, payload: bytes, ctype: str = "application/json",
              extra: dict[str, str] | None = None) -> None:
        # Headers and body in one write: a split write re-triggers the Nagle stall.
        head = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Status')}",
                f"Content-Type: {ctype}", f"Content-Length: {len(payload)}"]
        head += [f"{k}: {v}" for k, v in (extra or {}).items()]
        try:
            self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
        except OSError:  # the client gave up (e.g. after its timeout)
            self.close_connection = True

    def _send_json(self, code: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self._send(code, json.dumps(obj).encode(), extra=extra)

    def _read_body(self) -> dict | None:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _key_refused(self) -> bool:
        """With ``require_key`` set, a request without that bearer key gets a 401 (a bad key)."""
        want = self.server.owner.require_key
        if want is None or self.headers.get("Authorization") == f"Bearer {want}":
            return False
        self._send_json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                        "code": "invalid_api_key"}})
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.owner._record(ReceivedRequest("GET", self.path, headers, None))
        if self._key_refused():
            return
        if self.path.rstrip("/").endswith("/v1/models"):
            model = self.server.owner.served_model or "loopback"
            self._send_json(200, {"object": "list", "data": [
                {"id": model, "object": "model", "created": 0, "owned_by": "loopback"}]})
        else:
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner = self.server.owner
        if not self.path.rstrip("/").endswith("/v1/chat/completions"):
            owner._record(ReceivedRequest("POST", self.path, headers, body))
            self._send_json(404, {"error": {"message": "not found", "type": "not_found"}})
            return
        if self._key_refused():
            owner._record(ReceivedRequest("POST", self.path, headers, body, "401"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            owner._record(ReceivedRequest("POST", self.path, headers, body, "400"))
            self._send_json(400, {"error": {"message": "body must be JSON with messages",
                                            "type": "invalid_request_error"}})
            return
        fault, seq, cached = owner._admit(self.path, headers, body)
        owner._pause(owner.latency_s)
        self._reply(fault, seq, cached, body)

    def _reply(self, fault: str, seq: int, cached: int, body: dict) -> None:
        owner = self.server.owner
        rid = f"req-loopback-{seq}"
        extra = {"x-request-id": rid}
        if fault == "timeout":
            # Hang past the client's timeout; stop() cuts the wait short.
            if owner._pause(owner.hang_s):
                self.close_connection = True
                return
            fault = "ok"
        if fault.isdigit():
            code = int(fault)
            if code == 429:
                extra["retry-after"] = "0"
            kind = {429: "rate_limit_exceeded", 400: "invalid_request_error"}.get(code, "server_error")
            self._send_json(code, {"error": {"message": f"injected {code}", "type": kind, "code": kind}},
                            extra)
            return
        if fault == "echo_key":
            # like a gateway that quotes the credentials it rejected
            auth = self.headers.get("Authorization") or ""
            key = auth.split(" ", 1)[-1]
            self._send_json(401, {"error": {"message": f"Incorrect API key provided: {key}. Header was "
                                                       f"'Authorization: {auth}'", "type": "invalid_request_error",
                                            "code": "invalid_api_key"}}, extra)
            return
        if fault == "malformed":
            self._send(200, b'{"id": "broken", "choices": [', extra=extra)
            return
        model = owner.served_model or str(body.get("model", "loopback"))
        if fault == "no_choices":
            self._send_json(200, {"id": f"chatcmpl-loopback-{seq}", "object": "chat.completion",
                                  "created": 0, "model": model},
                            extra)
            return
        if fault == "bad_json_content":
            text = "I think I will vote for whoever seems shifty, honestly."
        elif fault == "echo_key_text":
            text = f"Your request carried: Authorization: {self.headers.get('Authorization') or ''}"
        elif owner.responder is None:
            text = default_reply(body)
        else:
            try:
                text = owner.responder(body)
            except Exception as exc:  # a broken test responder shows up as a 500, not a hang
                self._send_json(500, {"error": {"message": f"responder failed: {exc!r}",
                                                "type": "server_error"}}, extra)
                return
        prompt = count_tokens(prompt_text(body["messages"]))
        cap = body.get("max_tokens") or body.get("max_completion_tokens")
        finish = "stop"
        if fault == "length" or (owner.honour_cap and cap and count_tokens(text) > int(cap)):
            # stopped by the output cap: the text is cut where the tokens ran out
            text, finish = cut_to_cap(text, int(cap or 1)), "length"
        completion = max(1, count_tokens(text))
        if fault == "overclaim":  # far more than max_tokens allows, and a swollen prompt
            cap = body.get("max_tokens") or body.get("max_completion_tokens") or completion
            prompt, completion = prompt * OVERCLAIM_FACTOR, int(cap) * OVERCLAIM_FACTOR
        usage = None if fault == "no_usage" else usage_block(
            prompt, completion, None if fault == "no_cached" else cached)
        chat_id = f"chatcmpl-loopback-{seq}"
        if body.get("stream"):
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            self._send(200, stream_events(chat_id, model, text, usage if include else None),
                       ctype="text/event-stream", extra=extra)
        else:
            self._send_json(200, completion_body(chat_id, model, text, usage, finish), extra)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 100 clients connect at once; the default backlog is 5
    owner: "LoopbackServer"

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        # Our own thread bookkeeping: ThreadingMixIn does not join daemon threads.
        t = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                             name="loopback-conn", daemon=True)
        self.owner._opened(request, t)
        t.start()

    def shutdown_request(self, request: socket.socket) -> None:
        self.owner._closed(request)
        super().shutdown_request(request)


class LoopbackServer:
    """OpenAI-compatible chat server on 127.0.0.1 with scripted faults.

    Faults, consumed one per chat request in arrival order (``script``), else
    drawn with probability ``fail_rate`` from a seeded RNG (kind ``fail_kind``):
    ``ok``; an HTTP status such as ``"429"`` (with ``retry-after: 0``), ``"500"``,
    ``"400"``; ``timeout`` (hang ``hang_s`` seconds, then answer); ``malformed``
    (200 with a broken JSON body); ``bad_json_content`` (a valid completion whose
    text is not JSON); ``no_usage``; ``no_cached`` (usage without
    ``prompt_tokens_details``); ``no_choices``; ``overclaim`` (a valid reply whose
    usage claims ``OVERCLAIM_FACTOR`` times ``max_tokens`` completion tokens and
    as many times the prompt); ``echo_key`` (401 whose message quotes the key and
    the whole ``Authorization`` header); ``echo_key_text`` (a valid reply whose
    text quotes the ``Authorization`` header); ``length`` (the reply cut to ``max_tokens``
    tokens, ``finish_reason: length``).

    ``require_key``: every request (models list and chat) must carry ``Authorization:
    Bearer <require_key>``, else 401, as a server given a wrong key answers.
    ``honour_cap``: a reply longer than the request's ``max_tokens`` is cut there with
    ``finish_reason: length``, as a real server does (off: replies are never cut).
    """

    def __init__(self, latency_s: float = 0.0, *, fail_rate: float = 0.0, fail_kind: str = "500",
                 seed: int = 0, hang_s: float = 2.0,
                 responder: Callable[[dict], str] | None = None,
                 served_model: str | None = None, require_key: str | None = None,
                 honour_cap: bool = False) -> None:
        if not is_fault(fail_kind):
            raise ValueError(f"unknown fault {fail_kind!r}")
        self.latency_s = latency_s
        self.fail_rate = fail_rate
        self.fail_kind = fail_kind
        self.hang_s = hang_s
        self.responder = responder
        self.served_model = served_model
        self.require_key = require_key
        self.honour_cap = honour_cap
        self.requests: list[ReceivedRequest] = []
        self._rng = random.Random(seed)
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._prev_prompt = b""
        self._seq = 0
        self._conns: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "LoopbackServer":
        if self._server is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"loopback-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, wake hanging handlers, close idle keep-alive sockets, join."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns, threads = list(self._conns), list(self._threads)
        for conn in conns:  # unblocks handler threads parked in readline()
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in threads:
            thread.join()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- scripting and inspection
    def script(self, faults: Iterable[str]) -> None:
        """Queue faults for the next chat requests, in arrival order."""
        faults = list(faults)
        bad = [f for f in faults if not is_fault(f)]
        if bad:
            raise ValueError(f"unknown faults {bad}")
        with self._lock:
            self._script.extend(faults)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._script)

    @property
    def chat_requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]

    # -- called from handler threads
    def _opened(self, conn: socket.socket, thread: threading.Thread) -> None:
        with self._lock:
            self._conns.add(conn)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def _closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _record(self, rec: ReceivedRequest) -> None:
        with self._lock:
            self.requests.append(rec)

    def _admit(self, path: str, headers: dict[str, str], body: dict) -> tuple[str, int, int]:
        """Pick the fault, number the request, compute its prefix-cache hit: all in arrival order."""
        cur = prompt_text(body["messages"]).encode()
        with self._lock:
            if self._script:
                fault = self._script.popleft()
            elif self.fail_rate and self._rng.random() < self.fail_rate:
                fault = self.fail_kind
            else:
                fault = "ok"
            self._seq += 1
            cached = cached_prefix_tokens(self._prev_prompt, cur)
            self._prev_prompt = cur
            self.requests.append(ReceivedRequest("POST", path, headers, body, fault))
            return fault, self._seq, cached

    def _pause(self, seconds: float) -> bool:
        """Sleep unless stopping; True when the server is shutting down."""
        if seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)
