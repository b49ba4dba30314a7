"""Read-only views of the ledger: the only way environments, reports and pages read spend.

``totals`` (in ``ledger.py``) is the summary; ``spend_by`` groups spend by any
ledger columns (agent, phase, purpose, model, endpoint); ``RunningSpend`` is a
running total an environment may read every tick at O(new rows).
"""
from __future__ import annotations

import polars as pl

from .ledger import Ledger


SPEND_SCHEMA = {"attempts": pl.Int64, "ok_calls": pl.Int64, "tokens_in": pl.Int64, "tokens_out": pl.Int64,
                "tokens": pl.Int64, "usd": pl.Float64}


def spend_by(ledger: pl.DataFrame, *keys: str) -> pl.DataFrame:
    """Per group of ``keys``: attempts (ledger rows are attempts), ok calls, tokens and USD, sorted by the keys."""
    schema = {**{k: pl.Utf8 for k in keys}, **SPEND_SCHEMA}
    if ledger.height == 0 or any(k not in ledger.columns for k in keys):
        return pl.DataFrame(schema=schema)
    return (ledger.group_by(list(keys), maintain_order=True)
            .agg(pl.len().alias("attempts"),
                 (pl.col("outcome") == "ok").sum().alias("ok_calls"),
                 pl.col("tokens_in").sum(), pl.col("tokens_out").sum(),
                 (pl.col("tokens_in") + pl.col("tokens_out")).sum().alias("tokens"),
                 (pl.col("cost_nano").sum() / 1e9).alias("usd"))
            .with_columns([pl.col(k).cast(pl.Utf8) for k in keys])
            .cast(schema).sort(list(keys)))


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
