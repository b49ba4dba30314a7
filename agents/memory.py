"""An agent's memory stream: what it was allowed to see, scored for retrieval.

Retrieval follows Generative Agents (Park et al. 2023): each memory's score is
``w_rec*recency + w_imp*importance + w_rel*relevance``, each component min-max normalised over
the stream. Storage is columnar numpy (grown by doubling) so one retrieval over 10k memories is
a few vector operations, not a Python loop.

Visibility is enforced here only by ``observe_events``; anything passed to ``add`` directly is
assumed to be visible already. This module makes no LLM calls: reflection is only *triggered*
and *fed* from here; the agent class writes the reflection text.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from agents.embeddings import Embedder, LexicalEmbedder, l2_normalise_rows
from sim.events import visible_to  # the one visibility rule; re-exported for callers of this module

OBSERVATION = "observation"
REFLECTION = "reflection"
IMPORTANCE_MAX = 10.0
DEFAULT_IMPORTANCE = 3.0
_NO_SEQ = -1  # source_seq sentinel in the int64 column


# ---------------------------------------------------------------- pure scoring functions


def recency(ticks: np.ndarray, now: int, decay: float = 0.99) -> np.ndarray:
    """``decay ** (now - tick)``; ticks in the future count as ``now`` (score 1)."""
    age = np.maximum(now - np.asarray(ticks), 0)
    return np.exp(age * math.log(decay))  # == decay**age, ~3x faster than np.power here


def normalise(x: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]. A constant vector (or a single value) maps to zeros.

    Why zeros: a component that does not separate the candidates cannot change their order,
    and zero (not 0.5, as Generative Agents uses) keeps it from inflating the reported score.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return x
    lo, hi = x.min(), x.max()
    if not hi > lo:  # also catches NaN ranges
        return np.zeros_like(x)
    return (x - lo) / (hi - lo)


def relevance(query_vec: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine of each row of ``matrix`` (rows unit-length or zero) with the query.

    Hashed lexical queries touch only a few dimensions, so we gather just those columns; with the
    column-major matrix ``MemoryStream`` keeps, that reads a few contiguous columns instead of
    the whole ``n x d`` block.
    """
    q = np.asarray(query_vec, dtype=np.float32).ravel()
    n = float(np.linalg.norm(q))
    if n == 0.0 or matrix.shape[0] == 0:
        return np.zeros(matrix.shape[0], dtype=np.float32)
    q = q / n
    nz = np.flatnonzero(q)
    if nz.size * 4 < q.size:
        return matrix[:, nz] @ q[nz]
    return matrix @ q


def combine(rec: np.ndarray, imp: np.ndarray, rel: np.ndarray, weights: tuple[float, float, float],
            minmax: bool = True) -> np.ndarray:
    """Weighted sum of the three components, each min-max normalised first when ``minmax``."""
    f = normalise if minmax else (lambda a: np.asarray(a, dtype=np.float64))
    w_rec, w_imp, w_rel = weights
    return w_rec * f(rec) + w_imp * f(imp) + w_rel * f(rel)


def top_k(score: np.ndarray, tiebreak_tick: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best: score desc, then tick desc (more recent), then index asc.

    ``argpartition`` finds the k-th best score in O(n); every candidate tied with it is kept so
    the exact tie-break can be applied to that small set.
    """
    n = score.size
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        kth = np.argpartition(score, n - k)[n - k]
        cand = np.flatnonzero(score >= score[kth])
    else:
        cand = np.arange(n)
    order = np.lexsort((cand, -tiebreak_tick[cand], -score[cand]))
    return cand[order[:k]]


# ---------------------------------------------------------------- event rendering


def _getter(row: Any) -> Any:
    """Field access for an event row: a dict (polars ``iter_rows(named=True)``) or an object
    (``sim.events.Event``); decided once per row, since deliveries scan every new event per agent."""
    return row.__getitem__ if type(row) is dict or isinstance(row, Mapping) else row.__getattribute__


def _value_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))


def render_event(tick: int, kind: str, actor: str | None, payload: str | Mapping[str, Any]) -> str:
    """Deterministic one-line text, e.g. ``[t3 speech] p2: I trust p5``.

    A payload ``text`` is used verbatim; otherwise the payload's fields as sorted ``key=value``.
    """
    data = json.loads(payload) if isinstance(payload, str) else dict(payload or {})
    if not isinstance(data, dict):
        data = {"value": data}
    if isinstance(data.get("text"), str):
        body = data["text"]
    else:
        body = " ".join(f"{k}={_value_text(data[k])}" for k in sorted(data))
    return f"[t{tick} {kind}] {actor or '-'}: {body}".rstrip()


# ---------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    index: int
    tick: int
    importance: float  # 0-10, as stored
    text: str
    kind: str
    source_seq: int | None
    cites: tuple[int, ...]
    last_access: int
    score: float | None = None  # set only on records returned by ``retrieve``


@dataclass(frozen=True)
class RetrievalConfig:
    """Weights of the three components (Generative Agents uses 1, 1, 1) and the recency decay.

    ``recency_of`` is ``"access"`` (Generative Agents: retrieving a memory refreshes it) or
    ``"creation"``; ``minmax=False`` uses raw components (recency, importance/10, cosine).
    """

    w_recency: float = 1.0
    w_importance: float = 1.0
    w_relevance: float = 1.0
    decay: float = 0.99
    recency_of: str = "access"
    minmax: bool = True

    def __post_init__(self) -> None:
        if self.recency_of not in ("access", "creation"):
            raise ValueError("recency_of must be 'access' or 'creation'")
        if not 0.0 < self.decay <= 1.0:
            raise ValueError("decay must be in (0, 1]")

    @property
    def weights(self) -> tuple[float, float, float]:
        return self.w_recency, self.w_importance, self.w_relevance


# ---------------------------------------------------------------- the stream


class MemoryStream:
    """Append-only memories of one agent, columnar for fast scoring."""

    def __init__(self, embedder: Embedder | None = None, config: RetrievalConfig | None = None,
                 capacity: int = 8) -> None:  # small: 64 rows of embeddings (128 KiB) per agent cost more than a game
        self.embedder: Embedder = embedder if embedder is not None else LexicalEmbedder()
        self.config = config or RetrievalConfig()
        cap = max(int(capacity), 1)
        self._n = 0
        self._tick = np.zeros(cap, dtype=np.int64)
        self._importance = np.zeros(cap, dtype=np.float32)
        self._last_access = np.zeros(cap, dtype=np.int64)
        self._source_seq = np.full(cap, _NO_SEQ, dtype=np.int64)
        # Column-major so a sparse query reads whole contiguous columns (see ``relevance``).
        self._emb = np.zeros((cap, self.embedder.dim), dtype=np.float32, order="F")
        self.texts: list[str] = []
        self.kinds: list[str] = []
        self.cites: list[tuple[int, ...]] = []
        self.importance_since_reflection = 0.0
        self._seen_seqs: set[int] = set()

    # -- storage

    def __len__(self) -> int:
        return self._n

    @property
    def capacity(self) -> int:
        return self._tick.size

    def _reserve(self, extra: int) -> None:
        need = self._n + extra
        cap = self.capacity
        if need <= cap:
            return
        while cap < need:
            cap *= 2
        n = self._n
        for name in ("_tick", "_importance", "_last_access", "_source_seq"):
            old = getattr(self, name)
            new = np.full(cap, _NO_SEQ if name == "_source_seq" else 0, dtype=old.dtype)
            new[:n] = old[:n]
            setattr(self, name, new)
        emb = np.zeros((cap, self._emb.shape[1]), dtype=np.float32, order="F")
        emb[:n] = self._emb[:n]
        self._emb = emb

    def extend(self, texts: Sequence[str], ticks: Sequence[int], importances: Sequence[float],
               kind: str = OBSERVATION, source_seqs: Sequence[int | None] | None = None,
               cites: Sequence[tuple[int, ...]] | None = None, vectors: np.ndarray | None = None) -> list[int]:
        """Append several memories with one embedder call; returns their indices.

        ``vectors`` (already L2-normalised, one row per text) skips the embedder.
        """
        m = len(texts)
        if not (len(ticks) == len(importances) == m):
            raise ValueError("texts, ticks and importances must have the same length")
        imp = np.asarray(importances, dtype=np.float64)
        if m and (np.isnan(imp).any() or imp.min() < 0 or imp.max() > IMPORTANCE_MAX):
            raise ValueError(f"importance must be in [0, {IMPORTANCE_MAX}]")
        seqs = list(source_seqs) if source_seqs is not None else [None] * m
        cts = [tuple(int(c) for c in cs) for cs in cites] if cites is not None else [()] * m
        for cs in cts:
            if any(c < 0 or c >= self._n for c in cs):
                raise IndexError(f"cites {cs} must refer to existing memories (0..{self._n - 1})")
        if m == 0:
            return []
        vecs = l2_normalise_rows(self.embedder.embed(list(texts))) if vectors is None else vectors
        if vecs.shape != (m, self._emb.shape[1]):
            raise ValueError(f"embedder returned {vecs.shape}, expected {(m, self._emb.shape[1])}")
        self._reserve(m)
        sl = slice(self._n, self._n + m)
        self._tick[sl] = ticks
        self._importance[sl] = imp
        self._last_access[sl] = ticks
        self._source_seq[sl] = [_NO_SEQ if s is None else int(s) for s in seqs]
        self._emb[sl] = vecs
        self.texts.extend(texts)
        self.kinds.extend([kind] * m)
        self.cites.extend(cts)
        self._seen_seqs.update(int(s) for s in seqs if s is not None)
        if kind == OBSERVATION:
            self.importance_since_reflection += float(imp.sum())
        start, self._n = self._n, self._n + m
        return list(range(start, self._n))

    def add(self, text: str, tick: int, importance: float = DEFAULT_IMPORTANCE, kind: str = OBSERVATION,
            source_seq: int | None = None, cites: tuple[int, ...] = ()) -> int:
        """Append one memory; returns its index."""
        return self.extend([text], [tick], [importance], kind, [source_seq], [cites])[0]

    def observe_events(self, events_rows: Iterable[Any], viewer_id: str, viewer_teams: Iterable[str] = (),
                       importance: Mapping[str, float] | None = None,
                       default_importance: float = DEFAULT_IMPORTANCE, shared: dict | None = None) -> list[int]:
        """Append the events this viewer may see (skipping seqs already stored); returns new indices.

        Rows need ``seq, tick, kind, actor, payload, visibility``. ``importance`` maps event kind
        to a 0-10 importance; kinds not in it get ``default_importance``. ``shared`` is a dict
        the caller passes to every agent of one delivery: each event is then rendered and
        embedded once (per embedder) instead of once per agent that sees it.
        """
        teams = frozenset(viewer_teams)
        table = importance or {}
        cache = None if shared is None else shared.setdefault((self.embedder.name, int(self.embedder.dim)), {})
        texts, ticks, imps, seqs = [], [], [], []
        batch: set[int] = set()  # dedupes repeats within this call too
        for row in events_rows:
            # one type check per row, not per field: deliveries scan every new event for every agent
            field = _getter(row)
            seq = int(field("seq"))
            if seq in self._seen_seqs or seq in batch or not visible_to(field("visibility"), viewer_id, teams):
                continue
            batch.add(seq)
            kind, tick = field("kind"), int(field("tick"))
            hit = cache.get(seq) if cache is not None else None
            texts.append(hit[0] if hit else render_event(tick, kind, field("actor"), field("payload")))
            ticks.append(tick)
            imps.append(float(table.get(kind, default_importance)))
            seqs.append(seq)
        vecs = None
        if cache is not None and seqs:
            todo = [i for i, s in enumerate(seqs) if s not in cache]
            if todo:
                new = l2_normalise_rows(self.embedder.embed([texts[i] for i in todo]))
                for i, v in zip(todo, new):
                    cache[seqs[i]] = (texts[i], v)
            vecs = np.stack([cache[s][1] for s in seqs])
        return self.extend(texts, ticks, imps, OBSERVATION, seqs, vectors=vecs)

    # -- reading

    def record(self, i: int, score: float | None = None) -> MemoryRecord:
        if not 0 <= i < self._n:
            raise IndexError(i)
        seq = int(self._source_seq[i])
        return MemoryRecord(int(i), int(self._tick[i]), float(self._importance[i]), self.texts[i],
                            self.kinds[i], None if seq == _NO_SEQ else seq, self.cites[i],
                            int(self._last_access[i]), score)

    def records(self) -> list[MemoryRecord]:
        return [self.record(i) for i in range(self._n)]

    def _recency_ticks(self) -> np.ndarray:
        src = self._last_access if self.config.recency_of == "access" else self._tick
        return src[: self._n]

    def scores(self, query: str | None, now: int) -> np.ndarray:
        """Retrieval score of every memory (no side effects); ``query=None`` drops relevance."""
        n = self._n
        cfg = self.config
        rec = recency(self._recency_ticks(), now, cfg.decay)
        imp = self._importance[:n].astype(np.float64) / IMPORTANCE_MAX
        if query is None or cfg.w_relevance == 0.0:
            rel = np.zeros(n)
        else:
            rel = relevance(self.embedder.embed([query])[0], self._emb[:n])
        return combine(rec, imp, rel, cfg.weights, cfg.minmax)

    def retrieve(self, query: str | None, now: int, k: int = 5) -> list[MemoryRecord]:
        """Top-k memories for ``query`` at tick ``now``, best first; marks them accessed at ``now``."""
        if self._n == 0 or k <= 0:
            return []
        s = self.scores(query, now)
        idx = top_k(s, self._recency_ticks(), k)
        self._last_access[idx] = np.maximum(self._last_access[idx], now)
        return [self.record(int(i), float(s[i])) for i in idx]

    # -- reflection trigger

    def needs_reflection(self, threshold: float) -> bool:
        """True once the observations since the last reflection carry ``threshold`` importance
        (Generative Agents reflects at 150 on the 0-10 scale)."""
        return self.importance_since_reflection >= threshold

    def add_reflection(self, text: str, cites: Sequence[int], tick: int,
                       importance: float = DEFAULT_IMPORTANCE) -> int:
        """Store an (LLM-written) reflection citing earlier memories; resets the trigger."""
        i = self.extend([text], [tick], [importance], REFLECTION, [None], [tuple(cites)])[0]
        self.importance_since_reflection = 0.0
        return i

    def reflection_prompt_items(self, n: int) -> list[tuple[int, MemoryRecord]]:
        """The n memories to reflect on: best by normalised recency (of creation) + importance,
        returned oldest first so the prompt reads as a timeline. Does not count as an access."""
        if self._n == 0 or n <= 0:
            return []
        ticks = self._tick[: self._n]
        rec = recency(ticks, int(ticks.max()), self.config.decay)
        imp = self._importance[: self._n].astype(np.float64)
        idx = top_k(normalise(rec) + normalise(imp), ticks, n)
        idx = idx[np.lexsort((idx, ticks[idx]))]
        return [(int(i), self.record(int(i))) for i in idx]

    # -- checkpointing

    def to_state(self) -> dict[str, Any]:
        """Plain dict of python/numpy values (copies), picklable, restorable by ``from_state``."""
        n = self._n
        c = self.config
        return {
            "version": 1,
            "embedder": {"name": self.embedder.name, "dim": int(self.embedder.dim)},
            "config": {"w_recency": c.w_recency, "w_importance": c.w_importance, "w_relevance": c.w_relevance,
                       "decay": c.decay, "recency_of": c.recency_of, "minmax": c.minmax},
            "tick": self._tick[:n].copy(),
            "importance": self._importance[:n].copy(),
            "last_access": self._last_access[:n].copy(),
            "source_seq": self._source_seq[:n].copy(),
            "embeddings": np.ascontiguousarray(self._emb[:n]),
            "texts": list(self.texts),
            "kinds": list(self.kinds),
            "cites": [tuple(cs) for cs in self.cites],
            "importance_since_reflection": float(self.importance_since_reflection),
            "seen_seqs": sorted(self._seen_seqs),
        }

    @classmethod
    def from_state(cls, d: Mapping[str, Any], embedder: Embedder | None = None) -> "MemoryStream":
        """Rebuild a stream; the embedder must match the saved one's name and width, because the
        stored vectors are reused rather than recomputed."""
        emb = embedder if embedder is not None else LexicalEmbedder(int(d["embedder"]["dim"]))
        if (emb.name, int(emb.dim)) != (d["embedder"]["name"], int(d["embedder"]["dim"])):
            raise ValueError(f"state was embedded with {d['embedder']}, got {emb.name}/{emb.dim}")
        n = len(d["texts"])
        s = cls(emb, RetrievalConfig(**d["config"]), capacity=max(n, 1))
        s._tick[:n] = d["tick"]
        s._importance[:n] = d["importance"]
        s._last_access[:n] = d["last_access"]
        s._source_seq[:n] = d["source_seq"]
        s._emb[:n] = d["embeddings"]
        s.texts, s.kinds = list(d["texts"]), list(d["kinds"])
        s.cites = [tuple(cs) for cs in d["cites"]]
        s.importance_since_reflection = float(d["importance_since_reflection"])
        s._seen_seqs = set(int(x) for x in d["seen_seqs"])
        s._n = n
        return s
