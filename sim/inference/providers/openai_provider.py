"""Provider for any OpenAI-compatible chat-completions endpoint.

One HTTP attempt per ``complete`` call: the SDK's own retries are switched off
(``max_retries=0``) because hidden retries would be invisible to the meter; the
retry layer above this one retries and writes one ledger row per attempt.

Event loops: an ``AsyncOpenAI`` client keeps pooled keep-alive connections bound
to the loop that opened them. The engine drives a run with ONE
``asyncio.Runner`` (``runner.run(tick())`` per tick), so the client is created
lazily inside that loop and reused for the whole run. If the provider is
called from a different loop (e.g. a fresh ``asyncio.run`` per tick), a new
client is made for it rather than failing with "Event loop is closed".
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import openai

from ..errors import BadRequest, InferenceError, MalformedReply, ProviderTimeout, RateLimited, ServerError
from ..types import ChatRequest, ChatResponse, Usage, estimate_tokens_upper

LOCAL_PLACEHOLDER_KEY = "sk-local"  # the SDK refuses to build a client without a key
CAP_PARAMS = ("max_tokens", "max_completion_tokens")
SCHEMA_MODES = ("json_schema", "json_object", "none")


def response_format(schema: dict | None, mode: str) -> dict | None:
    """The ``response_format`` body for a schema, in the shape a server expects.

    ``json_schema`` is OpenAI's strict structured output; ``json_object`` with an
    inline ``schema`` is what llama.cpp / llama-cpp-python servers accept.
    """
    if schema is None or mode == "none":
        return None
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "action", "schema": strict_schema(schema),
                                                       "strict": True}}
    if mode == "json_object":
        return {"type": "json_object", "schema": schema}
    raise ValueError(f"schema_mode must be one of {SCHEMA_MODES}, got {mode!r}")


_NAME_MAPS = ("properties", "$defs", "definitions")  # keys there are names, not keywords


def strict_schema(schema: Any) -> Any:
    """A copy of a JSON schema in the shape OpenAI's strict mode demands.

    Strict structured output rejects (HTTP 400) any object schema that does not
    list every property as required and forbid extra ones; pydantic's schemas
    do neither, so every object node gets ``additionalProperties: false`` and
    ``required`` = all its properties (a field with a default must then be
    given). Other keywords (lengths, bounds, enums) are sent as they are: guided
    decoders such as vLLM's enforce them. Whether api.openai.com accepts every
    one of them in strict mode was not checked from here (no network);
    ``llm.schema_mode=json_object`` or ``none`` avoids strict mode.
    """
    if isinstance(schema, list):
        return [strict_schema(x) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for k, v in schema.items():
        out[k] = {n: strict_schema(s) for n, s in v.items()} if k in _NAME_MAPS and isinstance(v, dict) \
            else strict_schema(v)
    if out.get("type") == "object" or "properties" in out:
        props = out.get("properties") or {}
        out["additionalProperties"] = False
        out["required"] = list(props)
    return out


def _http_client(timeout_s: float):
    """The SDK's aiohttp transport when installed (``openai[aiohttp]``), else None (httpx).

    Under a phase's burst of concurrent calls the default httpx transport spends
    its time scanning its connection pool; aiohttp keeps a 100-call tick near the
    bare network time (see benchmarks/peers.py).
    """
    try:
        return openai.DefaultAioHttpClient(timeout=timeout_s)
    except (ImportError, RuntimeError):
        return None


def retry_after_s(headers: Any) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms`` or numeric ``retry-after``)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) / scale)
        except ValueError:
            continue  # an HTTP date: leave the wait to the retry policy
    return None


def _refused(exc: BaseException) -> bool:
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 8:
        if isinstance(e, ConnectionRefusedError):
            return True
        e = e.__cause__ or e.__context__
        seen += 1
    return False


def map_openai_error(exc: BaseException) -> InferenceError | None:
    """The seam's typed error for an exception raised by the openai SDK (None if not one)."""
    if isinstance(exc, openai.APITimeoutError):  # subclass of APIConnectionError: test first
        if _refused(exc):  # the aiohttp transport reports a refused connection as a connect timeout
            return ServerError(f"connection error: {exc.__cause__ or exc}")
        return ProviderTimeout(str(exc))
    if isinstance(exc, openai.APIConnectionError):
        return ServerError(f"connection error: {exc}")
    if isinstance(exc, openai.APIResponseValidationError):
        return MalformedReply(str(exc))
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        if code == 429:
            return RateLimited(f"HTTP 429: {exc.message}", retry_after=retry_after_s(exc.response.headers))
        if code >= 500:
            return ServerError(f"HTTP {code}: {exc.message}")
        return BadRequest(f"HTTP {code}: {exc.message}")
    if isinstance(exc, json.JSONDecodeError):  # a 200 whose body is not JSON
        return MalformedReply(f"unparsable response body: {exc}")
    return None


def usage_from(raw_usage: Any, req: ChatRequest, text: str) -> tuple[Usage, bool]:
    """Normalised usage, plus whether the server left ``cached_tokens`` out.

    No usage at all -> byte upper-bound estimates, marked ``estimated``.
    """
    if raw_usage is None:
        est = Usage(prompt_tokens=estimate_tokens_upper(req.messages),
                    completion_tokens=len(text.encode()), cached_tokens=0, source="estimated")
        return est, True
    details = getattr(raw_usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    usage = Usage(prompt_tokens=int(raw_usage.prompt_tokens or 0),
                  completion_tokens=int(raw_usage.completion_tokens or 0),
                  cached_tokens=int(cached or 0), source="server")
    return usage, cached is None


class OpenAIProvider:
    """Chat completions over ``openai.AsyncOpenAI``; raises the seam's typed errors.

    The API key is read from the environment variable ``api_key_env`` when the
    client is built and is never stored on this object; ``api_key_env=None``
    means a local server that needs no key.
    """

    def __init__(self, base_url: str, model: str = "", api_key_env: str | None = "OPENAI_API_KEY",
                 timeout_s: float = 30.0, cap_param: str = "max_tokens", extra_body: dict | None = None,
                 name: str = "openai", schema_mode: str = "json_schema") -> None:
        if cap_param not in CAP_PARAMS:
            raise ValueError(f"cap_param must be one of {CAP_PARAMS}, got {cap_param!r}")
        if schema_mode not in SCHEMA_MODES:
            raise ValueError(f"schema_mode must be one of {SCHEMA_MODES}, got {schema_mode!r}")
        if api_key_env is not None and not os.environ.get(api_key_env):
            raise ValueError(f"environment variable {api_key_env} is not set (needed for {name} at {base_url})")
        self.name = name
        self.base_url = base_url
        self.model = model  # used when a request names no model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.cap_param = cap_param
        self.schema_mode = schema_mode
        self.extra_body = dict(extra_body or {})
        self.cached_missing = 0  # replies whose usage had no cached_tokens (counted as 0)
        self._client: openai.AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (f"OpenAIProvider(name={self.name!r}, base_url={self.base_url!r}, model={self.model!r}, "
                f"api_key_env={self.api_key_env!r}, cap_param={self.cap_param!r})")

    __str__ = __repr__

    def _client_for_loop(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            key = os.environ[self.api_key_env] if self.api_key_env else LOCAL_PLACEHOLDER_KEY
            self._client = openai.AsyncOpenAI(base_url=self.base_url, api_key=key, max_retries=0,
                                              timeout=self.timeout_s, http_client=_http_client(self.timeout_s))
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close pooled connections; call inside the loop that used the provider."""
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.close()

    def request_kwargs(self, req: ChatRequest) -> dict[str, Any]:
        """Arguments for ``chat.completions.create`` (pure; handy for tests and dry runs)."""
        kw: dict[str, Any] = {"model": req.model or self.model, "messages": req.message_dicts(),
                              "temperature": req.temperature, "top_p": req.top_p,
                              self.cap_param: req.max_tokens}
        if req.seed is not None:
            kw["seed"] = req.seed
        rf = response_format(req.schema, self.schema_mode)
        if rf is not None:
            kw["response_format"] = rf
        if self.extra_body:
            kw["extra_body"] = dict(self.extra_body)
        return kw

    async def complete(self, req: ChatRequest) -> ChatResponse:
        client = self._client_for_loop()
        kwargs = self.request_kwargs(req)
        t0 = time.perf_counter()
        try:
            completion = await client.chat.completions.create(**kwargs)
        except Exception as exc:  # CancelledError is a BaseException and passes through
            mapped = map_openai_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        latency_ms = (time.perf_counter() - t0) * 1000.0
        choices = getattr(completion, "choices", None)
        if not choices or getattr(choices[0], "message", None) is None:
            raise MalformedReply("response has no choices/message")
        choice = choices[0]
        text = choice.message.content or ""
        usage, cached_missing = usage_from(getattr(completion, "usage", None), req, text)
        self.cached_missing += cached_missing
        return ChatResponse(
            text=text, usage=usage, model=str(getattr(completion, "model", None) or kwargs["model"]),
            finish_reason=str(choice.finish_reason or ""), provider=self.name, latency_ms=latency_ms,
            request_id=str(getattr(completion, "_request_id", None) or ""),
        )
