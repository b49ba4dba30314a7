"""Market actions: one order decision per trader per tick, and its validation against state.

The pydantic model bounds price and quantity per market, so the JSON schema sent to a model
(and the local model's grammar) already excludes out-of-range numbers; `check_order` then
checks what the schema cannot know: the trader's cash, units, role and remaining schedule.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, create_model

Side = Literal["buy", "sell", "hold"]


class OrderAction(BaseModel):
    """Unbounded form (tests and type hints); environments use `order_model`'s bounded one."""

    side: Side
    price: int = Field(0, ge=0)
    qty: int = Field(0, ge=0)


@lru_cache(maxsize=64)  # one class per market, not one per decision
def order_model(max_price: int, max_qty: int) -> type[BaseModel]:
    """An OrderAction whose price and qty are bounded for this market (0 allowed for hold)."""
    return create_model(
        "Order",
        side=(Side, ...),
        price=(int, Field(0, ge=0, le=max_price)),
        qty=(int, Field(0, ge=0, le=max_qty)),
    )


@dataclass(frozen=True, slots=True)
class TraderView:
    """What an order is checked against: resources the trader can commit right now.

    `cash` and `units` already include the escrow of the trader's own resting orders when
    a new quote replaces them. `remaining` is the induced schedule left (None: no schedule).
    """

    cash: int
    units: int
    max_price: int
    max_qty: int
    role: str | None = None  # "buyer" / "seller" in induced markets
    remaining: int | None = None


def check_order(action: BaseModel, view: TraderView) -> str | None:
    """None when the order can be placed as given; otherwise a one-line reason for a re-ask."""
    if action.side == "hold":
        return None
    if not 1 <= action.price <= view.max_price:
        return f"price must be an integer from 1 to {view.max_price} (got {action.price})"
    if not 1 <= action.qty <= view.max_qty:
        return f"qty must be an integer from 1 to {view.max_qty} (got {action.qty})"
    if view.role == "buyer" and action.side != "buy":
        return "you are a buyer: you may only buy (or hold)"
    if view.role == "seller" and action.side != "sell":
        return "you are a seller: you may only sell (or hold)"
    if view.remaining is not None and action.qty > view.remaining:
        return f"qty {action.qty} exceeds the {view.remaining} units left in your schedule"
    if action.side == "buy" and action.price * action.qty > view.cash:
        return (f"cannot afford {action.qty} x {action.price} = {action.price * action.qty} "
                f"with cash {view.cash}")
    if action.side == "sell" and action.qty > view.units:
        return f"cannot sell {action.qty} units: you hold {view.units}"
    return None


def affordable(side: str, price: int, qty: int, view: TraderView) -> int:
    """Largest qty <= `qty` the trader can commit on `side` at `price` (0: none)."""
    if price <= 0:
        return 0
    cap = view.cash // price if side == "buy" else view.units
    q = min(qty, cap, view.max_qty)
    if view.remaining is not None:
        q = min(q, view.remaining)
    return max(q, 0)
