"""Plain data that crosses the inference seam.

Every provider speaks OpenAI chat-completions semantics: a request is a list of
messages plus sampling parameters, a reply is text plus token usage. Metering
context (who asked, why, in which tick) rides along in ``CallMeta`` so that the
layers can write one ledger row per attempt without knowing about environments.
"""
from __future__ import annotations

import hashlib
import weakref
import json
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Protocol, runtime_checkable


@dataclass(frozen=True)
class CallMeta:
    """Who makes a call and why; copied into every ledger row."""

    agent: str = "engine"
    purpose: str = "call"  # e.g. speak, vote, belief, reflect, plan
    tick: int = 0
    phase: str = ""
    # budget scopes this call is charged against, besides the run scope,
    # e.g. ("team:traitors", "agent:p3")
    scopes: tuple[str, ...] = ()
    reask: int = 0  # 1 when this is the re-ask after an invalid reply
    # deterministic id assigned by the engine in agent order; ledger rows sort by it
    call_id: int = 0
    # which configured endpoint serves the call (per-role model mixes)
    endpoint: str = "default"


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs
    model: str
    max_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.9
    seed: int | None = None
    schema: dict | None = None  # JSON schema for structured output
    meta: CallMeta = field(default_factory=CallMeta)
    # Rule-based policy used by the scripted provider (and as the fallback).
    # Not part of the cache key; never sent to a model.
    scripted: Callable[[], Any] | None = field(default=None, compare=False, repr=False)
    # The decision's ground truth (``sim.engine.Truth``), set only for oracle tiers
    # (sim/inference/providers/oracle.py); never sent to a model, not part of the cache key.
    truth: Any = field(default=None, compare=False, repr=False)
    # prompt-token estimate taken once by the budget layer; the meter reuses it
    est_tokens_in: int | None = field(default=None, compare=False)
    # the worst case the budget layer holds for this call; the meter bills at most this
    reserved_nano: int | None = field(default=None, compare=False)

    def with_(self, **kw: Any) -> "ChatRequest":
        return replace(self, **kw)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": r, "content": c} for r, c in self.messages]

    def prompt_hash(self) -> str:
        h = hashlib.sha256()
        for r, c in self.messages:
            h.update(r.encode())
            h.update(b"\x00")
            h.update(c.encode())
            h.update(b"\x01")
        return h.hexdigest()[:16]

    def cache_key(self, provider: str) -> str:
        """Content address of a call: same inputs, same key, on any machine."""
        blob = json.dumps(
            {
                "provider": provider,
                "model": self.model,
                "messages": self.messages,
                "schema": self.schema,
                "max_tokens": self.max_tokens,
                "temperature": self.temperature,
                "top_p": self.top_p,
                "seed": self.seed,
            },
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # subset of prompt_tokens (OpenAI semantics)
    source: str = "server"  # server | estimated | none


@dataclass(frozen=True)
class ChatResponse:
    text: str
    usage: Usage
    model: str
    finish_reason: str = "stop"
    provider: str = ""
    latency_ms: float = 0.0
    cost_nano: int = 0  # filled by the metering layer
    cache_hit: bool = False
    request_id: str = ""


@runtime_checkable
class Provider(Protocol):
    """The one seam every model sits behind. Layers implement it too."""

    name: str

    async def complete(self, req: ChatRequest) -> ChatResponse: ...


def estimate_tokens_upper(messages: tuple[tuple[str, str], ...]) -> int:
    """Upper bound on prompt tokens for byte-level BPE tokenizers.

    Every token covers at least one byte, so UTF-8 bytes plus a per-message
    template allowance bounds the count from above without any tokenizer.
    """
    return sum(len(c.encode()) + len(r) + 8 for r, c in messages) + 16


_SCHEMAS: "weakref.WeakKeyDictionary[type, dict]" = weakref.WeakKeyDictionary()


def json_schema(action_cls: type) -> dict:
    """``action_cls.model_json_schema()``, computed once per class (treat the result as read-only)."""
    s = _SCHEMAS.get(action_cls)
    if s is None:
        s = _SCHEMAS[action_cls] = action_cls.model_json_schema()
    return s
