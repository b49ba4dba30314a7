"""Taxation actions as pydantic models built per run.

Choices are Literal enums, so the JSON schema sent to the model already limits workers to
the hours menu and the planner to the rate grid; nothing free-form can reach the state.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, create_model


def hours_menu(hours_cap: int, step: int) -> list[int]:
    """0, step, 2 step, ... up to and including the cap (the cap is always offered)."""
    menu = list(range(0, hours_cap + 1, step))
    if menu[-1] != hours_cap:
        menu.append(hours_cap)
    return menu


def labor_model(menu: list[int]) -> type[BaseModel]:
    """A worker's choice: hours from the menu."""
    return create_model("LaborChoice", hours=(Literal[tuple(menu)], ...))  # type: ignore[valid-type]


def rate_percent_grid(step_pct: int) -> list[int]:
    """Marginal rates in whole percent, 0..100 in steps of ``step_pct``."""
    grid = list(range(0, 101, step_pct))
    if grid[-1] != 100:
        grid.append(100)
    return grid


def bracket_field(k: int) -> str:
    """Field name of bracket k (1-based) in the planner's proposal."""
    return f"bracket_{k}_pct"


def proposal_model(n_brackets: int, grid_pct: list[int]) -> type[BaseModel]:
    """The planner's proposal: one absolute marginal rate (percent) per bracket.

    No free-text reason field: small models spend their token cap on it and get cut off.
    """
    lit = Literal[tuple(grid_pct)]  # type: ignore[valid-type]
    fields = {bracket_field(k): (lit, ...) for k in range(1, n_brackets + 1)}
    return create_model("TaxProposal", **fields)


def proposal_rates(action: BaseModel, n_brackets: int) -> list[float]:
    """Proposal -> rates as fractions, in bracket order."""
    return [getattr(action, bracket_field(k)) / 100.0 for k in range(1, n_brackets + 1)]
