"""Traitors actions as pydantic models.

Target sets and probability levels are enums built per decision, so the JSON
schema sent to the model (and the grammar the local model decodes with)
already rules out dead players, self-votes and out-of-range numbers, and
bounded string lengths keep replies inside the token cap.
"""
from __future__ import annotations

import functools
from typing import Literal

from pydantic import BaseModel, Field, conlist, create_model

PERCENTS = tuple(range(0, 101, 10))
POINTS = tuple(range(0, 11))


class Speech(BaseModel):
    text: str = Field(..., min_length=1, max_length=160)


def vote_model(targets: list[str]) -> type[BaseModel]:
    return _vote_model(tuple(targets))


@functools.lru_cache(maxsize=4096)  # building a pydantic model costs ~1 ms; the same targets recur
def _vote_model(targets: tuple[str, ...]) -> type[BaseModel]:
    lit = Literal[targets]  # type: ignore[valid-type]
    return create_model("Vote", target=(lit, ...))


def belief_model(others: list[str], fmt: str = "keyed") -> type[BaseModel]:
    return _belief_model(tuple(others), fmt)


@functools.lru_cache(maxsize=4096)
def _belief_model(others: tuple[str, ...], fmt: str) -> type[BaseModel]:
    """The belief probe's reply.

    ``keyed``: ``{"traitor_percent": {"p2": 30, ...}, "trust": {"p2": 1, ...}}``.
    ``list``: ``{"suspicion": [3, ...], "trust": [1, ...]}``, one entry per player in the
    listed order, suspicion in tenths (0-10). The same information in about a third of
    the output tokens, which is what a small local model spends most of its time on.
    """
    pts = Literal[POINTS]  # type: ignore[valid-type]
    if fmt == "list":
        n = len(others)
        row = conlist(pts, min_length=n, max_length=n)
        return create_model("BeliefList", suspicion=(row, ...), trust=(row, ...))
    pct = Literal[PERCENTS]  # type: ignore[valid-type]
    probs = create_model("TraitorPercent", **{p: (pct, ...) for p in others})
    trust = create_model("TrustPoints", **{p: (pts, ...) for p in others})
    return create_model("Belief", traitor_percent=(probs, ...), trust=(trust, ...))


def belief_values(action: BaseModel, others: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """(P(traitor) per player in [0, 1], raw trust points per player) from either format."""
    if hasattr(action, "suspicion"):
        return ({p: v / 10 for p, v in zip(others, action.suspicion)}, dict(zip(others, action.trust)))
    return ({p: v / 100 for p, v in action.traitor_percent.model_dump().items()}, action.trust.model_dump())


class RecruitAnswer(BaseModel):
    accept: bool
