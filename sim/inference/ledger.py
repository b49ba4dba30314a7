"""The ledger: one row per attempt (including denied, failed and fallback ones).

Rows are appended as attempts finish, which under concurrency is timing
order; ``frame`` sorts them by the engine's deterministic ``call_id`` and the
attempt number so the file does not depend on network timing.

``reserved_nano`` is the worst case the budget layer computed for the call a row
belongs to: held while its attempts ran; on a denied row, the amount that could
not be held; on a fallback row, that of the call it replaces. It is 0 only where
the worst case is 0 (a free scripted policy on the direct path).
``claimed_*`` are the server's own figures; ``tokens_out`` and ``cost_nano`` are
what was billed, which never exceeds ``reserved_nano`` (``overclaim`` marks a
reply whose usage was impossible: more output tokens than ``max_tokens``, a
negative count, or a cost above the reservation).
"""
from __future__ import annotations

import operator
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Sequence

import polars as pl

from sim.events import Rows

from .scrub import Scrubber
from .types import ChatRequest

OUTCOMES = ("ok", "truncated", "denied", "timeout", "rate_limited", "server_error", "bad_request",
            "invalid_output", "fallback", "replay_miss")
# attempts a model answered (billed replies): the one definition of "calls" for the CLI, report and pages
REPLIED = ("ok", "truncated", "invalid_output")


def reply_outcome(finish_reason: str | None) -> str:
    """``truncated`` when the server stopped at the output cap (``finish_reason=length``), else ``ok``.

    A cut reply is its own outcome, whatever its text: the cap, not the model, ended it.
    """
    return "truncated" if finish_reason == "length" else "ok"

SCHEMA = {
    "call_id": pl.Int64, "attempt": pl.Int64, "tick": pl.Int64, "phase": pl.Utf8, "agent": pl.Utf8,
    "purpose": pl.Utf8, "reask": pl.Int64, "provider": pl.Utf8, "endpoint": pl.Utf8, "model": pl.Utf8,
    "price_version": pl.Utf8, "prompt_hash": pl.Utf8, "est_tokens_in": pl.Int64, "max_tokens": pl.Int64,
    "tokens_in": pl.Int64, "tokens_cached": pl.Int64, "tokens_out": pl.Int64, "usage_source": pl.Utf8,
    "reserved_nano": pl.Int64, "cost_nano": pl.Int64, "latency_ms": pl.Float64, "outcome": pl.Utf8,
    "cache_hit": pl.Boolean, "denial_scope": pl.Utf8, "error": pl.Utf8, "run_id": pl.Utf8,
    "claimed_tokens_in": pl.Int64, "claimed_tokens_out": pl.Int64, "claimed_cost_nano": pl.Int64,
    "overclaim": pl.Boolean,
}


@dataclass(slots=True)  # ~365 bytes a row instead of ~1.7 kB: long runs hold millions of them
class LedgerRow:
    call_id: int
    attempt: int
    tick: int
    phase: str
    agent: str
    purpose: str
    reask: int
    provider: str
    endpoint: str
    model: str
    price_version: str
    prompt_hash: str
    est_tokens_in: int = 0
    max_tokens: int = 0
    tokens_in: int = 0
    tokens_cached: int = 0
    tokens_out: int = 0
    usage_source: str = "none"
    reserved_nano: int = 0
    cost_nano: int = 0
    latency_ms: float = 0.0
    outcome: str = "ok"
    cache_hit: bool = False
    denial_scope: str = ""
    error: str = ""
    run_id: str = ""
    claimed_tokens_in: int = 0
    claimed_tokens_out: int = 0
    claimed_cost_nano: int = 0
    overclaim: bool = False


_ROW = operator.attrgetter(*SCHEMA)
_FIELDS = tuple(f.name for f in fields(LedgerRow))


def rows_of(df: pl.DataFrame) -> list[LedgerRow]:
    """Ledger rows back from a frame (a part, a resumed run); columns it lacks keep their defaults."""
    keep = [k for k in _FIELDS if k in df.columns]
    return [LedgerRow(**dict(zip(keep, r))) for r in df.select(keep).iter_rows()]


def _frame(rows: list[LedgerRow]) -> pl.DataFrame:
    # row-wise in one call: per-column lists cost one polars Series each (30 of them); no rows: a copy
    # of one empty frame (building the schema costs ~0.3 ms, a run asks for empty frames several times)
    return pl.DataFrame([_ROW(r) for r in rows], schema=SCHEMA, orient="row") if rows else _EMPTY.clear()


SORT_KEYS = ["call_id", "reask", "attempt"]
_SORT_KEY = operator.attrgetter(*SORT_KEYS)
_EMPTY = pl.DataFrame(schema=SCHEMA)


class Ledger:
    def __init__(self, run_id: str = ""):
        self.run_id = run_id
        self.rows: Rows = Rows(rows_of)  # old rows may live in parts only (sim.events.Rows)
        self._lock = threading.Lock()  # the local provider settles from worker threads
        self.flushed = 0
        self.t0 = time.perf_counter()
        # every error string passes through it; the client registers the run's keys here
        self.scrub = Scrubber()

    def row(self, req: ChatRequest, provider: str, model: str, price_version: str, **fields: Any) -> LedgerRow:
        m = req.meta
        if fields.get("error"):
            fields["error"] = self.scrub(fields["error"])
        r = LedgerRow(call_id=m.call_id, attempt=fields.pop("attempt", 1), tick=m.tick, phase=m.phase,
                      agent=m.agent, purpose=m.purpose, reask=m.reask, provider=provider, endpoint=m.endpoint,
                      model=model, price_version=price_version, prompt_hash=req.prompt_hash(),
                      max_tokens=req.max_tokens, run_id=self.run_id, **fields)
        with self._lock:
            self.rows.append(r)
        return r

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self, rows: list[LedgerRow] | None = None) -> pl.DataFrame:
        """Rows (default: all, those that left memory read back from their parts) by call, re-ask, attempt."""
        if rows is None and self.rows.base:
            df = pl.concat(self.rows.frames(_frame), how="vertical")
        else:
            rows = self.rows if rows is None else rows
            if len(rows) <= 1000:  # a small game's ledger: Python's stable sort, no polars query (~0.2 ms)
                return _frame(sorted(rows, key=_SORT_KEY))
            df = _frame(rows)
        return df.sort(SORT_KEYS, maintain_order=True)

    def take_pending_frame(self) -> tuple[int, pl.DataFrame]:
        """(first row, frame) of the rows not yet flushed; they count as flushed from now on."""
        with self._lock:
            start = self.flushed
            rows = self.rows[start:]
            self.flushed = len(self.rows)
        return start, self.frame(rows)

    def forget(self, upto: int) -> None:
        """Drop flushed rows below ``upto`` from memory (they are in parts)."""
        with self._lock:
            self.rows.forget(min(upto, self.flushed))


def merge_totals(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Totals of two disjoint sets of rows (every count is additive; usd follows cost)."""
    out = {k: a[k] + b[k] for k in a if k != "usd"}
    out["usd"] = out["cost_nano"] / 1e9
    return out


def totals(ledger: pl.DataFrame) -> dict[str, Any]:
    """Summary totals, computed from the ledger (the only source of truth)."""
    if ledger.height == 0:
        return _totals(0, {}, 0, 0, 0, 0, 0, 0)
    # one count per outcome (is_in and filter each cost a query plan: ~0.3 ms for a small game's ledger)
    n = {o: int(c) for o, c in ledger["outcome"].value_counts().iter_rows()}
    return _totals(ledger.height, n, int(ledger["cost_nano"].sum()), int(ledger["tokens_in"].sum()),
                   int(ledger["tokens_cached"].sum()), int(ledger["tokens_out"].sum()),
                   int(ledger["cache_hit"].sum()),
                   int(ledger["overclaim"].sum()) if "overclaim" in ledger.columns else 0)


def totals_of_rows(rows: Sequence[LedgerRow]) -> dict[str, Any]:
    """``totals`` of rows still in memory, without building their frame (same figures: tested)."""
    n: dict[str, int] = {}
    cost = t_in = t_cached = t_out = hits = over = 0
    for r in rows:
        n[r.outcome] = n.get(r.outcome, 0) + 1
        cost += r.cost_nano
        t_in += r.tokens_in
        t_cached += r.tokens_cached
        t_out += r.tokens_out
        hits += bool(r.cache_hit)
        over += bool(r.overclaim)
    return _totals(len(rows), n, cost, t_in, t_cached, t_out, hits, over)


def _totals(height: int, counts: dict[str, int], cost: int, t_in: int, t_cached: int, t_out: int,
            hits: int, over: int) -> dict[str, Any]:
    n = {o: 0 for o in OUTCOMES} | counts
    return {
        "calls": sum(n[o] for o in REPLIED),
        "attempts": height - n["denied"] - n["fallback"],
        "tokens_in": t_in,
        "tokens_cached": t_cached,
        "tokens_out": t_out,
        "cost_nano": cost,
        "usd": cost / 1e9,
        "denied": n["denied"],
        "failed": sum(n[o] for o in ("timeout", "rate_limited", "server_error", "bad_request")),
        "invalid": n["invalid_output"],
        "truncated": n["truncated"],
        "fallbacks": n["fallback"],
        "cache_hits": hits,
        # replies whose server-reported usage was impossible; billed at most their reservation
        "overclaims": over,
    }
