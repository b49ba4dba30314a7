"""Traitors actions as pydantic models.

Target sets and probability levels are enums built per decision, so the JSON
schema sent to the model (and the grammar the local model decodes with)
already rules out dead players, self-votes and out-of-range numbers, and
bounded string lengths keep replies inside the token cap.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, create_model

PERCENTS = tuple(range(0, 101, 10))
POINTS = tuple(range(0, 11))


class Speech(BaseModel):
    text: str = Field(..., min_length=1, max_length=160)


def vote_model(targets: list[str]) -> type[BaseModel]:
    lit = Literal[tuple(targets)]  # type: ignore[valid-type]
    return create_model("Vote", target=(lit, ...))


def belief_model(others: list[str]) -> type[BaseModel]:
    pct = Literal[PERCENTS]  # type: ignore[valid-type]
    pts = Literal[POINTS]  # type: ignore[valid-type]
    probs = create_model("TraitorPercent", **{p: (pct, ...) for p in others})
    trust = create_model("TrustPoints", **{p: (pts, ...) for p in others})
    return create_model("Belief", traitor_percent=(probs, ...), trust=(trust, ...))


class RecruitAnswer(BaseModel):
    accept: bool
