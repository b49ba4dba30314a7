"""Read-only views of the ledger: the only way environments, reports and pages read spend.

``totals`` (in ``ledger.py``) is the summary; ``spend_by`` groups spend by any
ledger column (agent, phase, purpose, model, endpoint); ``scope_spend`` splits
it by budget scope the way the budget layer charges it; ``RunningSpend`` is a
running total an environment may read every tick at O(new rows).
"""
from __future__ import annotations

import polars as pl

from .ledger import Ledger


def spend_by(ledger: pl.DataFrame, *keys: str) -> pl.DataFrame:
    """Attempts, answered calls, tokens and USD per group of ``keys`` (ledger rows are attempts)."""
    if ledger.height == 0:
        return pl.DataFrame(schema={**{k: pl.Utf8 for k in keys}, "attempts": pl.UInt32, "calls": pl.UInt32,
                                    "tokens_in": pl.Int64, "tokens_out": pl.Int64, "usd": pl.Float64})
    return (ledger.group_by(list(keys), maintain_order=True)
            .agg(pl.len().alias("attempts"),
                 pl.col("outcome").is_in(["ok", "invalid_output"]).sum().cast(pl.UInt32).alias("calls"),
                 pl.col("tokens_in").sum(), pl.col("tokens_out").sum(),
                 (pl.col("cost_nano").sum() / 1e9).alias("usd"))
            .sort(list(keys)))


def scope_spend(ledger: pl.DataFrame, teams_of: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """USD per budget scope: ``run``, ``agent:<id>`` and ``team:<name>`` (an agent's teams from ``teams_of``)."""
    out: dict[str, float] = {"run": float(ledger["cost_nano"].sum()) / 1e9 if ledger.height else 0.0}
    for row in spend_by(ledger, "agent").iter_rows(named=True):
        out[f"agent:{row['agent']}"] = row["usd"]
        for t in teams_of.get(row["agent"], ()):
            out[f"team:{t}"] = out.get(f"team:{t}", 0.0) + row["usd"]
    return out


class RunningSpend:
    """The run's spend so far, updated from the rows added since the last read."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self._seen = 0
        self._nano = 0

    def nano(self) -> int:
        rows = self.ledger.rows
        self._nano += sum(r.cost_nano for r in rows[self._seen:])
        self._seen = len(rows)
        return self._nano

    def usd(self) -> float:
        return self.nano() / 1e9
