"""Content-addressed record/replay cache.

key = sha256(provider, model, messages, schema, sampling params, seed).
Modes: off, record (call, then store), replay (never call; a miss is an
error naming the call), reuse (hit if present, else call and store).
Stored as JSON lines appended with flush+fsync, so a killed run keeps every
reply it paid for; a torn last line is ignored when loading.
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from .errors import ReplayMiss
from .ledger import Ledger
from .prices import PriceTable
from .types import ChatRequest, ChatResponse, Provider, Usage

MODES = ("off", "record", "replay", "reuse")


class ReplayStore:
    def __init__(self, path: Path | None = None, sources: list[Path] = ()):
        self.path = Path(path) if path else None
        self.data: dict[str, dict] = {}
        self._lock = threading.Lock()
        for src in [*sources, *( [self.path] if self.path else [])]:
            self.load(src)

    def load(self, path: Path) -> int:
        path = Path(path)
        if not path.exists():
            return 0
        n = 0
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # torn last line of a killed run
                self.data.setdefault(rec["key"], rec)
                n += 1
        return n

    def get(self, key: str) -> dict | None:
        return self.data.get(key)

    def put(self, key: str, resp: ChatResponse) -> None:
        rec = {"key": key, "text": resp.text, "model": resp.model, "finish_reason": resp.finish_reason,
               "provider": resp.provider, "prompt_tokens": resp.usage.prompt_tokens,
               "completion_tokens": resp.usage.completion_tokens, "cached_tokens": resp.usage.cached_tokens,
               "usage_source": resp.usage.source, "latency_ms": resp.latency_ms}
        with self._lock:
            if key in self.data:
                return
            self.data[key] = rec
            if self.path:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                line = (json.dumps(rec, sort_keys=True) + "\n").encode()
                with open(self.path, "a+b") as f:
                    # after a torn last line (killed run), start a fresh line so this record stays readable
                    if f.seek(0, os.SEEK_END) > 0:
                        f.seek(-1, os.SEEK_END)
                        if f.read(1) != b"\n":
                            line = b"\n" + line
                    f.write(line)
                    f.flush()
                    os.fsync(f.fileno())


class ReplayLayer:
    def __init__(self, inner: Provider | None, store: ReplayStore, mode: str, prices: PriceTable, ledger: Ledger,
                 provider_name: str):
        if mode not in MODES:
            raise ValueError(f"llm.cache.mode={mode!r}: allowed {', '.join(MODES)}")
        self.inner = inner
        self.name = provider_name
        self.store = store
        self.mode = mode
        self.prices = prices
        self.ledger = ledger

    async def complete(self, req: ChatRequest) -> ChatResponse:
        if self.mode == "off":
            return await self.inner.complete(req)
        key = req.cache_key(self.name)
        if self.mode in ("replay", "reuse"):
            rec = self.store.get(key)
            if rec is not None:
                return self._hit(req, rec)
            if self.mode == "replay":
                m = req.meta
                self.ledger.row(req, self.name, req.model, self.prices.version, outcome="replay_miss",
                                error="no recorded reply")
                raise ReplayMiss(key, f"tick={m.tick} phase={m.phase} agent={m.agent} purpose={m.purpose}")
        resp = await self.inner.complete(req)
        self.store.put(key, resp)
        return resp

    def _hit(self, req: ChatRequest, rec: dict) -> ChatResponse:
        t0 = time.perf_counter()
        usage = Usage(rec["prompt_tokens"], rec["completion_tokens"], rec["cached_tokens"], rec["usage_source"])
        # Charge the recorded cost so budgets (and so denials) replay exactly.
        cost = self.prices.for_model(req.model).cost(usage)
        self.ledger.row(req, rec.get("provider") or self.name, req.model, self.prices.version, outcome="ok",
                        tokens_in=usage.prompt_tokens, tokens_cached=usage.cached_tokens,
                        tokens_out=usage.completion_tokens, usage_source=usage.source, cost_nano=cost,
                        cache_hit=True, latency_ms=(time.perf_counter() - t0) * 1000)
        return ChatResponse(text=rec["text"], usage=usage, model=rec["model"], finish_reason=rec["finish_reason"],
                            provider=rec.get("provider") or self.name, cost_nano=cost, cache_hit=True)
