"""What an LLM household or forecaster may answer: bounded integer menus.

Literal enums put every allowed value in the JSON schema, so the embedded model's grammar
cannot produce a propensity off the 0.02 grid or a forecast out of range.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, create_model

PCT_GRID = tuple(range(0, 101, 2))  # propensities in percent: 0, 2, ..., 100
INFLATION_RANGE = (-10, 30)  # forecast menus, whole percent
UNEMPLOYMENT_RANGE = (0, 50)

Decision: type[BaseModel] = create_model(
    "Decision",
    work_pct=(Literal[PCT_GRID], ...),  # type: ignore[valid-type]
    consume_pct=(Literal[PCT_GRID], ...),  # type: ignore[valid-type]
)

Forecast: type[BaseModel] = create_model(
    "Forecast",
    inflation_pct=(Literal[tuple(range(INFLATION_RANGE[0], INFLATION_RANGE[1] + 1))], ...),  # type: ignore[valid-type]
    unemployment_pct=(Literal[tuple(range(UNEMPLOYMENT_RANGE[0], UNEMPLOYMENT_RANGE[1] + 1))], ...),  # type: ignore
)


def decision(work: float, consume: float) -> BaseModel:
    """A Decision from grid propensities in [0, 1]."""
    return Decision(work_pct=int(round(work * 100)), consume_pct=int(round(consume * 100)))


def forecast(inflation: float, unemployment: float) -> BaseModel:
    """A Forecast from fractions, rounded to whole percent and clipped to the menus."""
    lo, hi = INFLATION_RANGE
    ulo, uhi = UNEMPLOYMENT_RANGE
    return Forecast(inflation_pct=int(min(max(round(inflation * 100), lo), hi)),
                    unemployment_pct=int(min(max(round(unemployment * 100), ulo), uhi)))
