"""Provider for any langchain-core ``BaseChatModel``, chosen by import path.

Usage is read from the returned ``AIMessage.usage_metadata``. One long-lived
``UsageMetadataCallbackHandler`` per provider also keeps per-model totals; it is
passed through ``config={"callbacks": [...]}`` on every call. We never use
``get_usage_metadata_callback()`` per call: each use registers a new global
configure hook that is never removed (langchain-core #32300).

Structured output is requested by putting the JSON schema in the system prompt,
which works with every chat model (``with_structured_output`` does not).
Sampling parameters (temperature, max tokens) are the model's own constructor
arguments, given in ``kwargs``.
"""
from __future__ import annotations

import asyncio
import importlib
import json
import time
from typing import Any

import openai
from langchain_core.callbacks import UsageMetadataCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from ..errors import BadRequest, InferenceError, ProviderTimeout, RateLimited, ServerError
from ..types import ChatRequest, ChatResponse, Usage, estimate_tokens_upper
from .openai_provider import map_openai_error

_ROLES = {"system": SystemMessage, "user": HumanMessage, "human": HumanMessage,
          "assistant": AIMessage, "ai": AIMessage}


def import_object(path: str) -> Any:
    """Import ``package.module:Name`` or ``package.module.Name``."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"not an import path: {path!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def schema_instruction(schema: dict) -> str:
    return ("Reply with a single JSON object, and nothing else, that is valid under this JSON schema:\n"
            + json.dumps(schema, sort_keys=True))


def to_messages(messages: tuple[tuple[str, str], ...], schema: dict | None) -> list[BaseMessage]:
    """(role, content) pairs as LangChain messages; the schema joins the first system message."""
    out: list[BaseMessage] = []
    for role, content in messages:
        cls = _ROLES.get(role)
        if cls is None:
            raise BadRequest(f"unsupported message role {role!r}")
        out.append(cls(content=content))
    if schema is not None:
        note = schema_instruction(schema)
        if out and isinstance(out[0], SystemMessage):
            out[0] = SystemMessage(content=f"{out[0].content}\n\n{note}")
        else:
            out.insert(0, SystemMessage(content=note))
    return out


def usage_from_message(msg: AIMessage, req: ChatRequest, text: str) -> Usage:
    """Usage from ``usage_metadata`` (cache reads are a subset of input tokens), else estimated."""
    um = getattr(msg, "usage_metadata", None)
    if not um:
        return Usage(prompt_tokens=estimate_tokens_upper(req.messages),
                     completion_tokens=len(text.encode()), cached_tokens=0, source="estimated")
    details = um.get("input_token_details") or {}
    return Usage(prompt_tokens=int(um.get("input_tokens") or 0),
                 completion_tokens=int(um.get("output_tokens") or 0),
                 cached_tokens=int(details.get("cache_read") or 0), source="server")


def map_langchain_error(exc: BaseException) -> InferenceError:
    """Timeouts, 429s and other 4xx by ``status_code``; anything else is a server error."""
    if isinstance(exc, InferenceError):
        return exc
    if isinstance(exc, openai.OpenAIError):  # e.g. langchain-openai's ChatOpenAI
        mapped = map_openai_error(exc)
        if mapped is not None:
            return mapped
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return ProviderTimeout(str(exc) or "timed out")
    status = getattr(exc, "status_code", None)
    if status == 429:
        retry = getattr(exc, "retry_after", None)
        return RateLimited(str(exc), retry_after=float(retry) if retry is not None else None)
    if isinstance(status, int) and 400 <= status < 500:
        return BadRequest(str(exc))
    return ServerError(f"{type(exc).__name__}: {exc}")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content blocks
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content)
    return str(content)


class LangChainProvider:
    """Wraps a LangChain chat model behind the ``Provider`` seam."""

    def __init__(self, model_path: str, kwargs: dict | None = None, name: str = "langchain",
                 timeout_s: float | None = None) -> None:
        cls = import_object(model_path)
        if not (isinstance(cls, type) and issubclass(cls, BaseChatModel)):
            raise TypeError(f"{model_path} is not a langchain-core BaseChatModel")
        self.name = name
        self.model_path = model_path
        self.timeout_s = timeout_s
        self.chat_model: BaseChatModel = cls(**(kwargs or {}))
        self._handler = UsageMetadataCallbackHandler()  # one per provider, never per call

    def __repr__(self) -> str:
        return f"LangChainProvider(name={self.name!r}, model_path={self.model_path!r})"

    @property
    def usage_totals(self) -> dict:
        """Per-model usage totals seen by the callback handler (models that report a name)."""
        return dict(self._handler.usage_metadata)

    async def complete(self, req: ChatRequest) -> ChatResponse:
        messages = to_messages(req.messages, req.schema)
        t0 = time.perf_counter()
        try:
            call = self.chat_model.ainvoke(messages, config={"callbacks": [self._handler]})
            msg = await (asyncio.wait_for(call, self.timeout_s) if self.timeout_s else call)
        except Exception as exc:  # CancelledError passes through
            mapped = map_langchain_error(exc)
            if mapped is exc:
                raise
            raise mapped from exc
        latency_ms = (time.perf_counter() - t0) * 1000.0
        text = _text_of(msg.content)
        meta = getattr(msg, "response_metadata", None) or {}
        return ChatResponse(
            text=text, usage=usage_from_message(msg, req, text),
            model=str(meta.get("model_name") or meta.get("model") or req.model),
            finish_reason=str(meta.get("finish_reason") or "stop"), provider=self.name,
            latency_ms=latency_ms, request_id=str(getattr(msg, "id", None) or ""),
        )
