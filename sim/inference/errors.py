"""Typed failures of the inference seam. Each maps to a ledger ``outcome``."""
from __future__ import annotations


class InferenceError(Exception):
    outcome = "failed"


class ProviderTimeout(InferenceError):
    outcome = "timeout"


class RateLimited(InferenceError):
    outcome = "rate_limited"

    def __init__(self, msg: str = "rate limited", retry_after: float | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


class ServerError(InferenceError):
    outcome = "server_error"


class BadRequest(InferenceError):
    """4xx other than 429: retrying cannot help."""

    outcome = "bad_request"


class MalformedReply(InferenceError):
    """The server answered, but not with a chat completion we can read."""

    outcome = "server_error"


class CallFailed(InferenceError):
    """All attempts failed; the agent takes its scripted fallback."""

    def __init__(self, msg: str, last_outcome: str):
        super().__init__(msg)
        self.outcome = last_outcome


class BudgetDenied(InferenceError):
    outcome = "denied"

    def __init__(self, scope: str, needed: int, available: int):
        super().__init__(f"budget scope {scope!r} cannot cover {needed} nano-USD (available {available})")
        self.scope = scope
        self.needed = needed
        self.available = available


class BudgetHalt(InferenceError):
    """A scope with policy ``halt`` ran out: the run ends as aborted_budget."""

    outcome = "denied"

    def __init__(self, scope: str):
        super().__init__(f"budget scope {scope!r} exhausted (policy halt)")
        self.scope = scope


class ReplayMiss(InferenceError):
    outcome = "replay_miss"

    def __init__(self, key: str, meta_desc: str):
        super().__init__(
            f"replay cache has no recorded reply for call {meta_desc} (key {key[:16]}); "
            "the run's config, seed or code differs from the recording"
        )
        self.key = key
