"""The event log: every observable thing is one typed row with a visibility.

Schema (see docs/events.md): seq, tick, phase, actor, kind, payload (JSON, keys
sorted), visibility (public | team:<name> | private:<agent id>).
"""
from __future__ import annotations

import json
from functools import partial
from itertools import count, repeat
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple

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


# ``dumps`` of one string (the encoder's own string function): for payload text built from templates
quote: Callable[[str], str] = json.encoder.encode_basestring

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


# ``Event._make`` without its Python frame: a tuple of the seven fields as an Event
_new_event = partial(tuple.__new__, Event)


class Rows(list):
    """An append-only list of log rows whose oldest rows may have left memory for Parquet parts.

    ``len``, indices and slices count every row ever appended, so cursors such as
    ``rows[delivered:]`` keep their meaning after old rows are dropped (``forget``); reading
    into the dropped prefix (iterating from the start, a slice below ``base``) reads those
    parts back, one at a time. Appends stay plain ``list`` appends. Small runs never drop a row.
    """

    __slots__ = ("base", "parts", "decode")

    def __init__(self, decode: Callable[[pl.DataFrame], list]):
        super().__init__()
        self.base = 0  # rows no longer held in memory (they are in ``parts``)
        self.parts: list[tuple[int, int, Path]] = []  # (first row, rows, file) of every part written
        self.decode = decode  # a part's frame -> its rows

    def __len__(self) -> int:
        return self.base + list.__len__(self)

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if start >= self.base and step == 1:
                return list.__getitem__(self, slice(start - self.base, max(stop - self.base, 0)))
            return list(self._range(start, stop))[::step] if step > 0 else list(self)[i]
        if i < 0:
            i += len(self)
        if i < self.base:
            if i < 0:
                raise IndexError("list index out of range")
            return next(self._range(i, i + 1))
        return list.__getitem__(self, i - self.base)

    def __iter__(self) -> Iterator:
        return self._range(0, len(self)) if self.base else list.__iter__(self)

    def __reversed__(self) -> Iterator:
        yield from list.__reversed__(self)
        for start, n, path in reversed(self.parts):  # only reached by a search the memory did not satisfy
            if start < self.base:
                yield from reversed(self.decode(pl.read_parquet(path))[: min(n, self.base - start)])

    def _range(self, a: int, b: int) -> Iterator:
        """Rows a..b-1: those below ``base`` from their parts, the rest from memory."""
        for start, n, path in self.parts:
            if a >= self.base or start >= b:
                break
            if start + n > a and start < self.base:
                rows = self.decode(pl.read_parquet(path))
                yield from rows[max(a - start, 0):min(b, self.base) - start]
        yield from list.__getitem__(self, slice(max(a - self.base, 0), max(b - self.base, 0)))

    def add_part(self, start: int, n: int, path: Path) -> None:
        """Rows start..start+n-1 are also in ``path`` (in memory until ``forget``)."""
        if n:
            self.parts.append((start, n, Path(path)))

    def adopt(self, parts: list[tuple[Path, int]]) -> None:
        """Start an empty list from parts already written (a resumed run): every row stays on disk."""
        assert not self and not self.parts, "adopt starts an empty list"
        for path, n in parts:
            self.add_part(self.base, n, path)
            self.base += n

    def written(self) -> int:
        """Rows covered by parts (a prefix): the most ``forget`` may drop."""
        return self.parts[-1][0] + self.parts[-1][1] if self.parts else 0

    def forget(self, upto: int) -> None:
        """Drop rows below ``upto`` from memory; they must already be in parts."""
        upto = min(upto, self.written(), len(self))
        if upto > self.base:
            list.__delitem__(self, slice(0, upto - self.base))
            self.base = upto

    def held(self) -> int:
        """Rows held in memory."""
        return list.__len__(self)

    def frames(self, to_frame: Callable[[list], pl.DataFrame], start: int = 0,
               stop: int | None = None) -> list[pl.DataFrame]:
        """Rows start..stop-1 as frames: the dropped ones read from their parts, the rest built by ``to_frame``."""
        stop = len(self) if stop is None else min(stop, len(self))
        out = []
        for first, n, path in self.parts:
            if first >= self.base or first >= stop:
                break
            if first + n > start:
                lo, hi = max(start - first, 0), min(stop, self.base) - first
                out.append(pl.read_parquet(path).slice(lo, hi - lo))
        out.append(to_frame(list.__getitem__(self, slice(max(start - self.base, 0), max(stop - self.base, 0)))))
        return out


def _events_of(df: pl.DataFrame) -> list["Event"]:
    return [Event(*r) for r in df.select(list(SCHEMA)).iter_rows()]


class EventLog:
    """Append-only; flushed to Parquet parts by the run, whose old rows may then leave memory (``Rows``)."""

    def __init__(self) -> None:
        self.rows: Rows = Rows(_events_of)
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
        seq = len(rows)
        for actor, payload, visibility in items:
            if not (visibility == PUBLIC or visibility.startswith(("team:", "private:"))):
                raise ValueError(f"bad visibility {visibility!r}: use public, team:<name> or private:<id>")
            rows.append(Event(seq, tick, phase, actor, kind, dumps(payload), visibility))
            seq += 1

    def extend_encoded(self, tick: int, phase: str, rows: Iterable[tuple[str, str, str, str]]) -> None:
        """Append ``(actor, kind, payload text, visibility)`` rows whose payloads are already ``dumps`` text.

        The batch paths build a phase's payloads as text from templates (one ``dumps`` per event
        cost more than the decision); the caller guarantees the text is ``dumps(payload)`` and
        the visibility well formed (its tests hold it to the per-agent path's bytes). Rows go to
        the same ``Rows`` list as ``emit``'s, so spilling to parts is unchanged.
        """
        rows = list(rows)
        if rows:
            self.extend_columns(tick, phase, *zip(*rows))

    def extend_columns(self, tick: int, phase: str, actors: Iterable[str], kinds: Iterable[str],
                       payloads: Iterable[str], visibilities: Iterable[str]) -> None:
        """``extend_encoded`` from its columns (the shortest one sets how many rows): zipped into
        Event rows in C, no Python call per row."""
        self.rows.extend(map(_new_event, zip(count(len(self.rows)), repeat(tick), repeat(phase), actors, kinds,
                                             payloads, visibilities)))

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self, start: int = 0, stop: int | None = None) -> pl.DataFrame:
        if start >= self.rows.base:
            return _frame(self.rows[start:stop])
        return pl.concat(self.rows.frames(_frame, start, stop), how="vertical")

    @staticmethod
    def empty_frame() -> pl.DataFrame:
        return pl.DataFrame(schema=SCHEMA)


def _frame(rows: list[Event]) -> pl.DataFrame:
    cols = list(zip(*rows)) if rows else [[] for _ in SCHEMA]  # Event fields are SCHEMA's order
    return pl.DataFrame(dict(zip(SCHEMA, cols)), schema=SCHEMA)


def filter_visible(events: pl.DataFrame, viewer: str, teams: Iterable[str] = ()) -> pl.DataFrame:
    """Rows of an event frame that ``viewer`` (member of ``teams``) could see."""
    allowed = ["public", f"private:{viewer}", *[f"team:{t}" for t in teams]]
    return events.filter(pl.col("visibility").is_in(allowed))


def payloads(events: pl.DataFrame, kind: str) -> list[dict[str, Any]]:
    sub = events.filter(pl.col("kind") == kind)
    return [json.loads(p) | {"_tick": t} for p, t in zip(sub["payload"], sub["tick"])]
