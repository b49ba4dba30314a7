"""Secrets never reach a run file: one scrubber for every text the inference seam writes.

A server may echo the request's ``Authorization`` header or the key itself in an
error body or even in a reply. Every error string and stored text passes through
``Scrubber`` before it becomes a ledger row, a cache record or a reply handed to
an agent (and from there to events and memories). It removes the exact values of
the keys the run was given, and anything shaped like a bearer token or an
``sk-`` key, so a key nobody registered is still caught by its shape.
"""
from __future__ import annotations

import os
import re
from typing import Iterable

REDACTED = "[redacted]"
# Shorter registered values are not scrubbed by value: a local server's key such as
# "none" or "local" would otherwise be cut out of ordinary model text.
MIN_SECRET_LEN = 8
_SHAPES = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+|\b(sk)-[A-Za-z0-9_-]{3,}")


class Scrubber:
    def __init__(self, secrets: Iterable[str | None] = ()):
        self._secrets: list[str] = []
        for s in secrets:
            self.add(s)

    def add(self, secret: str | None) -> None:
        if isinstance(secret, str) and len(secret) >= MIN_SECRET_LEN and secret not in self._secrets:
            self._secrets.append(secret)
            self._secrets.sort(key=len, reverse=True)  # a key that contains another goes first

    def add_env(self, names: Iterable[str | None]) -> None:
        """Register the values of the named environment variables (unset ones are skipped)."""
        for name in names:
            if name:
                self.add(os.environ.get(str(name)))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for s in self._secrets:
            if s in text:
                text = text.replace(s, REDACTED)
        return _SHAPES.sub(_redact_shape, text)

    def __reduce__(self):  # a pickled scrubber (e.g. inside a checkpoint) carries no values
        return (Scrubber, ())

    def __repr__(self) -> str:  # never print the values
        return f"Scrubber({len(self._secrets)} secrets)"


def _redact_shape(m: re.Match) -> str:
    if m.group(1):
        return f"{m.group(1)} {REDACTED}"
    return f"{m.group(2)}-{REDACTED}"
