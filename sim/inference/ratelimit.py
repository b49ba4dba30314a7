"""Token-bucket rate limit (requests and tokens per minute) plus a concurrency bound.

Shared by every agent that uses the same endpoint. Waiting here changes only
timing, never results: admission to the budget happened before.
"""
from __future__ import annotations

import asyncio
import time

from .types import ChatRequest, ChatResponse, Provider, estimate_tokens_upper


class TokenBucket:
    def __init__(self, per_minute: float | None, clock=time.monotonic):
        self.rate = None if not per_minute else per_minute / 60.0
        self.capacity = per_minute or 0.0
        self.tokens = self.capacity
        self.clock = clock
        self.t = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now

    def wait_time(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken; takes it (possibly into debt) now."""
        if self.rate is None:
            return 0.0
        self._refill()
        amount = min(amount, self.capacity)
        self.tokens -= amount
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class RateLimitLayer:
    def __init__(self, inner: Provider, rpm: float | None = None, tpm: float | None = None,
                 concurrency: int | None = None):
        self.inner = inner
        self.name = inner.name
        self.requests = TokenBucket(rpm)
        self.tokens = TokenBucket(tpm)
        self.concurrency = concurrency
        self._sem: asyncio.Semaphore | None = None
        self._loop = None

    def _semaphore(self) -> asyncio.Semaphore | None:
        if not self.concurrency:
            return None
        loop = asyncio.get_running_loop()
        if self._sem is None or self._loop is not loop:
            self._sem, self._loop = asyncio.Semaphore(self.concurrency), loop
        return self._sem

    async def complete(self, req: ChatRequest) -> ChatResponse:
        wait = max(self.requests.wait_time(1),
                   self.tokens.wait_time(estimate_tokens_upper(req.messages) // 4 + req.max_tokens))
        if wait > 0:
            await asyncio.sleep(wait)
        sem = self._semaphore()
        if sem is None:
            return await self.inner.complete(req)
        async with sem:
            return await self.inner.complete(req)
