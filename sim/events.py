"""The event log: every observable thing is one typed row with a visibility.

Schema (see docs/events.md): seq, tick, phase, actor, kind, payload (JSON, keys
sorted), visibility (public | team:<name> | private:<agent id>).
"""
from __future__ import annotations

import json
from typing import Any, Iterable, NamedTuple

import polars as pl

SCHEMA = {
    "seq": pl.Int64,
    "tick": pl.Int64,
    "phase": pl.Utf8,
    "actor": pl.Utf8,
    "kind": pl.Utf8,
    "payload": pl.Utf8,
    "visibility": pl.Utf8,
}

PUBLIC = "public"


def team(name: str) -> str:
    return f"team:{name}"


def private(agent_id: str) -> str:
    return f"private:{agent_id}"


def visible_to(visibility: str, viewer: str, teams: Iterable[str] = ()) -> bool:
    """Whether an agent may see an event; the one rule memories are filled by."""
    if visibility == PUBLIC:
        return True
    kind, _, who = visibility.partition(":")
    if kind == "private":
        return who == viewer
    if kind == "team":
        return who in teams
    return False


def dumps(payload: dict[str, Any]) -> str:
    """Canonical payload text: sorted keys, compact, UTF-8 kept.

    Same bytes as ``json.dumps(payload, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False, default=_default)``, through one C encoder built once
    (``json.dumps`` builds a new one per call, which is most of its cost on small
    payloads); the pure-Python encoder where the C one is missing.
    """
    if _C_ENCODE is not None:
        return "".join(_C_ENCODE(payload, 0))
    return _ENCODER.encode(payload)


def _default(o: Any) -> Any:
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    if hasattr(o, "model_dump"):
        return o.model_dump()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)
_C_ENCODE = (json.encoder.c_make_encoder(None, _default, json.encoder.encode_basestring, None, ":", ",", True, False,
                                         True) if json.encoder.c_make_encoder is not None else None)


class Event(NamedTuple):
    """One row of the log (a named tuple: immutable, and ~6x cheaper to create than a frozen dataclass)."""

    seq: int
    tick: int
    phase: str
    actor: str
    kind: str
    payload: str
    visibility: str

    def data(self) -> dict[str, Any]:
        return json.loads(self.payload)


class EventLog:
    """Append-only, in memory; flushed to Parquet parts by the run directory."""

    def __init__(self) -> None:
        self.rows: list[Event] = []
        self.flushed = 0  # rows already written to disk

    def emit(self, tick: int, phase: str, actor: str, kind: str, payload: dict[str, Any] | None = None,
             visibility: str = PUBLIC) -> Event:
        if not (visibility == PUBLIC or visibility.startswith(("team:", "private:"))):
            raise ValueError(f"bad visibility {visibility!r}: use public, team:<name> or private:<id>")
        ev = Event(len(self.rows), tick, phase, actor, kind, dumps(payload or {}), visibility)
        self.rows.append(ev)
        return ev

    def emit_many(self, tick: int, phase: str, kind: str,
                  items: Iterable[tuple[str, dict[str, Any], str]]) -> None:
        """Append one event per ``(actor, payload, visibility)``, in order (a batch of ``emit``)."""
        rows = self.rows
        for actor, payload, visibility in items:
            if not (visibility == PUBLIC or visibility.startswith(("team:", "private:"))):
                raise ValueError(f"bad visibility {visibility!r}: use public, team:<name> or private:<id>")
            rows.append(Event(len(rows), tick, phase, actor, kind, dumps(payload), visibility))

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self, start: int = 0, stop: int | None = None) -> pl.DataFrame:
        rows = self.rows[start:stop]
        cols = list(zip(*rows)) if rows else [[] for _ in SCHEMA]  # Event fields are SCHEMA's order
        return pl.DataFrame(dict(zip(SCHEMA, cols)), schema=SCHEMA)

    @staticmethod
    def empty_frame() -> pl.DataFrame:
        return pl.DataFrame(schema=SCHEMA)


def filter_visible(events: pl.DataFrame, viewer: str, teams: Iterable[str] = ()) -> pl.DataFrame:
    """Rows of an event frame that ``viewer`` (member of ``teams``) could see."""
    allowed = ["public", f"private:{viewer}", *[f"team:{t}" for t in teams]]
    return events.filter(pl.col("visibility").is_in(allowed))


def payloads(events: pl.DataFrame, kind: str) -> list[dict[str, Any]]:
    sub = events.filter(pl.col("kind") == kind)
    return [json.loads(p) | {"_tick": t} for p, t in zip(sub["payload"], sub["tick"])]
