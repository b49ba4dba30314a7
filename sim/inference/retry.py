"""Retries with exponential backoff and jitter (tenacity), one ledger row per attempt.

This is the innermost metering point: each attempt that reaches the provider
is priced here from the usage it returned, so failed attempts show up in the
ledger as plainly as successful ones. The SDKs' own hidden retries are off.

It is also where the outside world's text enters: reply texts and error
messages are scrubbed of secrets here, before any layer stores or shows them,
and a reply is billed at most the reservation its call holds, whatever usage
its server claims.
"""
from __future__ import annotations

import asyncio
import time

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from .errors import CallFailed, InferenceError, ProviderTimeout, RateLimited, ServerError
from .ledger import Ledger, reply_outcome
from .prices import PriceTable, bill
from .types import ChatRequest, ChatResponse, Provider

RETRYABLE = (ProviderTimeout, RateLimited, ServerError)


class RetryLayer:
    def __init__(self, inner: Provider, prices: PriceTable, ledger: Ledger, max_retries: int = 2,
                 timeout_s: float | None = None, backoff_s: float = 0.5, backoff_max_s: float = 8.0,
                 estimator=None):
        self.inner = inner
        self.name = inner.name
        self.prices = prices
        self.ledger = ledger
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.estimator = estimator

    async def _attempt(self, req: ChatRequest, n: int) -> ChatResponse:
        t0 = time.perf_counter()
        est = req.est_tokens_in
        if est is None:
            est = self.estimator(req) if self.estimator else 0
        try:
            if self.timeout_s:
                try:
                    resp = await asyncio.wait_for(self.inner.complete(req), self.timeout_s)
                except asyncio.TimeoutError:
                    raise ProviderTimeout(f"no reply within {self.timeout_s} s") from None
            else:
                resp = await self.inner.complete(req)
        except Exception as e:
            outcome = getattr(e, "outcome", "server_error")
            self.ledger.row(req, self.name, req.model, self.prices.version, attempt=n, outcome=outcome,
                            est_tokens_in=est, latency_ms=(time.perf_counter() - t0) * 1000,
                            reserved_nano=req.reserved_nano or 0,
                            # scrub before cutting: a key cut in half would no longer match
                            error=self.ledger.scrub(f"{type(e).__name__}: {e}")[:300])
            raise
        b = bill(self.prices.for_model(req.model), resp.usage, req.max_tokens, req.reserved_nano)
        u, claim = b.usage, resp.usage
        self.ledger.row(req, resp.provider or self.name, req.model, self.prices.version, attempt=n,
                        outcome=reply_outcome(resp.finish_reason),
                        est_tokens_in=est, tokens_in=u.prompt_tokens, tokens_cached=u.cached_tokens,
                        tokens_out=u.completion_tokens, usage_source=u.source, cost_nano=b.cost,
                        reserved_nano=req.reserved_nano or 0, claimed_tokens_in=claim.prompt_tokens,
                        claimed_tokens_out=claim.completion_tokens, claimed_cost_nano=b.claimed_cost,
                        overclaim=b.overclaim, latency_ms=resp.latency_ms or (time.perf_counter() - t0) * 1000)
        # the usage stays the server's claim (the cache records it; a replay bills it the same way)
        return ChatResponse(**{**resp.__dict__, "text": self.ledger.scrub(resp.text), "cost_nano": b.cost})

    async def complete(self, req: ChatRequest) -> ChatResponse:
        n = 0

        def wait(rs):
            exc = rs.outcome.exception() if rs.outcome else None
            ra = getattr(exc, "retry_after", None)
            # jitter scales with the backoff (tenacity's default adds up to 1 s to every wait)
            base = wait_exponential_jitter(multiplier=self.backoff_s, max=self.backoff_max_s,
                                           jitter=self.backoff_s)(rs)
            return max(base, float(ra)) if ra else base

        try:
            async for attempt in AsyncRetrying(stop=stop_after_attempt(self.max_retries + 1), wait=wait,
                                               retry=retry_if_exception_type(RETRYABLE), reraise=True):
                with attempt:
                    n += 1
                    return await self._attempt(req, n)
        except InferenceError as e:
            # non-retryable ones (400, malformed reply) too: callers handle one failure type
            # scrubbed, and not chained: the provider's raw message may quote a key
            raise CallFailed(self.ledger.scrub(f"{n} attempts failed; last: {type(e).__name__}: {e}"),
                             e.outcome) from None
        raise AssertionError("unreachable")
