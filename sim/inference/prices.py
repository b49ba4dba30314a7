"""Price table: USD per 1M tokens in YAML, integer nano-USD per token in code.

$0.075 / 1M tokens = 75 nano-USD per token, exactly. Prices with more than
three decimals per million tokens would not be exact and are rejected at load.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Mapping

from .types import Usage

NANO_PER_USD = 1_000_000_000


def usd_to_nano(usd: float | str | Decimal | None) -> int | None:
    if usd is None:
        return None
    return int((Decimal(str(usd)) * NANO_PER_USD).to_integral_value())


def per_mtok_to_nano_per_token(value: Any, where: str) -> int:
    d = Decimal(str(value)) * 1000  # USD/1M tok -> nano-USD/tok
    if d != d.to_integral_value() or d < 0:
        raise ValueError(f"{where}={value!r}: prices need at most 3 decimals per 1M tokens and must be >= 0")
    return int(d)


@dataclass(frozen=True)
class ModelPrice:
    model: str
    input: int  # nano-USD per token
    cached_input: int
    output: int
    shadow: bool = False

    def cost(self, usage: Usage) -> int:
        cached = min(usage.cached_tokens, usage.prompt_tokens)
        return (usage.prompt_tokens - cached) * self.input + cached * self.cached_input + usage.completion_tokens * self.output

    def hold(self, est_input_tokens: int, max_output_tokens: int) -> int:
        """Worst case for one call: every input token uncached, every output token used."""
        return est_input_tokens * self.input + max_output_tokens * self.output


@dataclass(frozen=True)
class Bill:
    """What one reply is charged, next to what its server claimed."""

    usage: Usage  # the billed usage: counts made possible (no negatives, output <= max_tokens)
    cost: int  # nano-USD charged; never above the call's reservation
    claimed_cost: int  # the server's usage at list price
    overclaim: bool  # the server's usage was impossible for this call


def bill(price: ModelPrice, usage: Usage, max_tokens: int, reserved: int | None) -> Bill:
    """Charge a reply at most its worst case, whatever its server reports.

    ``reserved`` is the hold the budget layer took for the call (None when no
    budget layer is above: then only the counts are bounded). Only usage the
    server reported (``source == "server"``) can be an over-claim; an estimate
    is an upper bound of our own making and is merely capped.
    """
    p = max(0, usage.prompt_tokens)
    billed = replace(usage, prompt_tokens=p, completion_tokens=max(0, min(usage.completion_tokens, max_tokens)),
                     cached_tokens=min(max(0, usage.cached_tokens), p))
    claimed = price.cost(usage)
    cost = price.cost(billed)
    u = usage
    impossible = u.completion_tokens > max_tokens or min(u.prompt_tokens, u.completion_tokens, u.cached_tokens) < 0
    if reserved is not None and cost > reserved:
        cost, impossible = reserved, True
    return Bill(billed, cost, claimed, impossible and usage.source == "server")


class PriceTable:
    def __init__(self, prices: Mapping[str, Mapping[str, Any]], version: str):
        self.version = str(version)
        self.models: dict[str, ModelPrice] = {}
        for name, p in (prices or {}).items():
            where = f"llm.prices.{name}"
            try:
                self.models[name] = ModelPrice(
                    model=name,
                    input=per_mtok_to_nano_per_token(p["input_per_mtok"], f"{where}.input_per_mtok"),
                    cached_input=per_mtok_to_nano_per_token(
                        p["input_per_mtok"] if p.get("cached_input_per_mtok") is None else p["cached_input_per_mtok"],
                        f"{where}.cached_input_per_mtok"),
                    output=per_mtok_to_nano_per_token(p["output_per_mtok"], f"{where}.output_per_mtok"),
                    shadow=bool(p.get("shadow", False)),
                )
            except KeyError as e:
                raise ValueError(f"{where}: missing {e.args[0]}") from None

    def for_model(self, model: str) -> ModelPrice:
        if model in self.models:
            return self.models[model]
        if "default" in self.models:
            d = self.models["default"]
            return ModelPrice(model, d.input, d.cached_input, d.output, d.shadow)
        raise KeyError(f"no price for model {model!r} in llm.prices (known: {', '.join(sorted(self.models))}); "
                       "add it or a 'default' entry")
