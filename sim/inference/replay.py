"""Content-addressed record/replay cache.

key = sha256(provider, model, messages, schema, sampling params, seed).
Modes: off, record (call, then store), replay (never call; a miss is an
error naming the call), reuse (hit if present, else call and store).
Stored as JSON lines appended with flush+fsync, so a killed run keeps every
reply it paid for.

A cache file is data from outside: every line is checked before it is used.
A torn line (JSON cut off by a kill) is skipped quietly; any other unusable
line (not an object, no key, no text or usage, wrong types, not UTF-8) and any
repeat of a key within one file is skipped, counted, and reported in one
warning that names the line numbers. The first record of a key wins.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from pathlib import Path

from .errors import ReplayCacheError, ReplayMiss, one_line
from .ledger import Ledger, reply_outcome
from .prices import PriceTable, bill
from .scrub import Scrubber
from .types import ChatRequest, ChatResponse, Provider, Usage

MODES = ("off", "record", "replay", "reuse")
log = logging.getLogger("agora.inference")


def parse_record(line: bytes) -> dict | str:
    """A cache line as a record with every field ``_hit`` reads, or why it is unusable."""
    try:
        rec = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError:
        return "not UTF-8"
    except json.JSONDecodeError as e:
        # the document ended early: a write cut off by a kill, not a bad record
        # (a string or an object left open at the end of the line)
        cut = e.pos >= len(line.rstrip()) or e.msg.startswith("Unterminated string")
        return "torn" if cut else "not JSON"
    if not isinstance(rec, dict):
        return f"not an object ({type(rec).__name__})"
    if not isinstance(rec.get("key"), str) or not rec["key"]:
        return "no key"
    if not isinstance(rec.get("text"), str):
        return "no text"
    for k in ("prompt_tokens", "completion_tokens"):
        if not _is_int(rec.get(k)):
            return f"no usage ({k})"
    out = {"key": rec["key"], "text": rec["text"], "prompt_tokens": rec["prompt_tokens"],
           "completion_tokens": rec["completion_tokens"]}
    cached = rec.get("cached_tokens", 0)
    if not _is_int(cached):
        return "cached_tokens is not an integer"
    out["cached_tokens"] = cached
    for k, default in (("usage_source", "server"), ("model", ""), ("finish_reason", "stop"), ("provider", "")):
        v = rec.get(k, default)
        if v is None:
            v = default
        if not isinstance(v, str):
            return f"{k} is not a string"
        out[k] = v
    return out


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _numbers(lines: list[int], most: int = 20) -> str:
    shown = ", ".join(map(str, lines[:most]))
    return shown + (f" and {len(lines) - most} more" if len(lines) > most else "")


class ReplayStore:
    def __init__(self, path: Path | None = None, sources: list[Path] = (), scrub: Scrubber | None = None):
        self.path = Path(path) if path else None
        self.data: dict[str, dict] = {}
        self.scrub = scrub or Scrubber()
        # per file: line numbers (1-based) skipped as malformed / as repeats of a key in that file
        self.malformed: dict[str, list[int]] = {}
        self.duplicates: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        for src in [*sources, *( [self.path] if self.path else [])]:
            self.load(src)

    def load(self, path: Path) -> int:
        """Add a file's records; returns how many were usable. Raises ReplayCacheError if unreadable."""
        path = Path(path)
        if not path.exists():
            return 0
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise ReplayCacheError(one_line(f"replay cache {path}: cannot be read ({e.strerror or e})")) from None
        n, bad, dup, torn, seen = 0, [], [], [], set()
        for i, line in enumerate(raw.split(b"\n"), 1):
            if not line.strip():
                continue
            rec = parse_record(line)
            if rec == "torn":
                torn.append(i)
                continue
            if isinstance(rec, str):
                bad.append(i)
                continue
            if rec["key"] in seen:
                dup.append(i)
                continue
            seen.add(rec["key"])
            self.data.setdefault(rec["key"], rec)  # a key in an earlier file wins
            n += 1
        if bad or dup:
            self.malformed[str(path)], self.duplicates[str(path)] = bad, dup
            parts = [f"{len(bad)} malformed (lines {_numbers(bad)})"] if bad else []
            parts += [f"{len(dup)} repeating an earlier key (lines {_numbers(dup)})"] if dup else []
            log.warning("replay cache %s: skipped %s; %d records usable", path, " and ".join(parts), n)
        if torn:
            log.info("replay cache %s: skipped %d torn line(s) of a killed run (lines %s)", path, len(torn),
                     _numbers(torn))
        return n

    def get(self, key: str) -> dict | None:
        return self.data.get(key)

    def put(self, key: str, resp: ChatResponse) -> None:
        rec = {"key": key, "text": self.scrub(resp.text), "model": resp.model, "finish_reason": resp.finish_reason,
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
                # yield once, as a live call does: the calls started with this one reserve their budget
                # before it settles, so budget denials replay as they happened (a resume, agora replay)
                await asyncio.sleep(0)
                return self._hit(req, rec)
            if self.mode == "replay":
                m = req.meta
                self.ledger.row(req, self.name, req.model, self.prices.version, outcome="replay_miss",
                                reserved_nano=req.reserved_nano or 0, error="no recorded reply")
                raise ReplayMiss(key, f"call_id={m.call_id} tick={m.tick} phase={m.phase} agent={m.agent} "
                                      f"purpose={m.purpose}")
        resp = await self.inner.complete(req)
        self.store.put(key, resp)
        return resp

    def _hit(self, req: ChatRequest, rec: dict) -> ChatResponse:
        t0 = time.perf_counter()
        claim = Usage(rec["prompt_tokens"], rec["completion_tokens"], rec.get("cached_tokens", 0),
                      rec.get("usage_source") or "server")
        # Bill the recording exactly as the live run was billed, so budgets (and so denials) replay exactly.
        b = bill(self.prices.for_model(req.model), claim, req.max_tokens, req.reserved_nano)
        u = b.usage
        provider = rec.get("provider") or self.name
        self.ledger.row(req, provider, req.model, self.prices.version,
                        outcome=reply_outcome(rec.get("finish_reason") or "stop"),
                        tokens_in=u.prompt_tokens, tokens_cached=u.cached_tokens, tokens_out=u.completion_tokens,
                        usage_source=u.source, cost_nano=b.cost, reserved_nano=req.reserved_nano or 0,
                        est_tokens_in=req.est_tokens_in or 0,
                        claimed_tokens_in=claim.prompt_tokens, claimed_tokens_out=claim.completion_tokens,
                        claimed_cost_nano=b.claimed_cost, overclaim=b.overclaim, cache_hit=True,
                        latency_ms=(time.perf_counter() - t0) * 1000)
        return ChatResponse(text=self.store.scrub(rec["text"]), usage=claim, model=rec.get("model") or req.model,
                            finish_reason=rec.get("finish_reason") or "stop", provider=provider, cost_nano=b.cost,
                            cache_hit=True)
