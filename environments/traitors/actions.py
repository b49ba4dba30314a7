"""Traitors actions as pydantic models; target sets are enums built per decision,
so the JSON schema sent to the model already rules out dead players and self-votes."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, create_model


class Speech(BaseModel):
    text: str = Field(..., min_length=1, max_length=600)


def vote_model(targets: list[str]) -> type[BaseModel]:
    lit = Literal[tuple(targets)]  # type: ignore[valid-type]
    return create_model("Vote", target=(lit, ...), reason=(str, Field("", max_length=200)))


def belief_model(others: list[str]) -> type[BaseModel]:
    probs = create_model("TraitorProb", **{p: (float, Field(..., ge=0.0, le=1.0)) for p in others})
    trust = create_model("TrustPoints", **{p: (int, Field(..., ge=0, le=10)) for p in others})
    return create_model("Belief", traitor_prob=(probs, ...), trust=(trust, ...))


class RecruitAnswer(BaseModel):
    accept: bool
