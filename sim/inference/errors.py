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


class ReplayMiss(InferenceError, ValueError):
    """Replay mode asked for a call that was never recorded.

    A ``ValueError`` so that a command line's ``except ValueError`` prints its
    one-line message as ``error: ...`` (exit 2) instead of a traceback.
    """

    outcome = "replay_miss"

    def __init__(self, key: str, meta_desc: str):
        super().__init__(one_line(
            f"replay cache has no recorded reply for call {meta_desc} (key {key[:16]}); "
            "the run's config, seed or code differs from the recording"
        ))
        self.key = key


class ReplayCacheError(ValueError):
    """A replay cache file that cannot be read at all (a folder, unreadable); names the file."""


def one_line(msg: str) -> str:
    """Messages meant for ``error: ...`` lines: newlines and runs of blanks become one space."""
    return " ".join(msg.split())


class ProviderUnreachable(ValueError):
    """The provider check before a run (``sim.inference.health``) failed: no run folder is made.

    A ``ValueError`` so that the command line prints its one line as ``error: ...`` (exit 2).
    """
