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


def _share(num: int, den: int) -> float | None:
    return None if den == 0 else round(num / den, 4)


def decision_health(ledger: pl.DataFrame, llm_endpoints: set[str] | list[str],
                    roles: dict[str, str] | None = None, per_agent_limit: int = 500) -> dict:
    """How a run's model decisions went, from the ledger: one decision is one ``call_id`` of an LLM endpoint.

    ``fallback_share``: decisions the scripted fallback answered (denied, failed, invalid or
    truncated replies), overall, per role and per agent; ``valid_share_by_purpose``: decisions a
    model answered with a valid action (after re-asks); ``first_try_valid_share_by_purpose``:
    valid at the first ask. Agents are listed when there are at most ``per_agent_limit``.
    """
    empty = {"decisions": 0, "fallbacks": 0, "fallback_share": None, "fallback_share_by_role": {},
             "fallback_share_by_agent": {}, "fallback_reasons": {}, "valid_share_by_purpose": {},
             "first_try_valid_share_by_purpose": {}}
    if ledger.height == 0 or not llm_endpoints:
        return empty
    rows = ledger.filter(pl.col("endpoint").is_in(list(llm_endpoints)))
    if rows.height == 0:
        return empty
    accepted = pl.col("outcome").is_in(["ok", "truncated"]) & (pl.col("error") == "")
    per = (rows.group_by("call_id")
           .agg(pl.col("agent").first(), pl.col("purpose").first(),
                (pl.col("outcome") == "fallback").any().alias("fell_back"),
                pl.col("error").filter(pl.col("outcome") == "fallback").first().alias("reason"),
                (accepted & (pl.col("reask") == 0)).any().alias("first_try")))
    role_of = roles or {}
    per = per.with_columns(pl.col("agent").replace_strict(role_of, default="", return_dtype=pl.Utf8).alias("role"))

    def shares(key: str, value: str) -> dict:
        g = per.group_by(key).agg(pl.len().alias("n"), pl.col(value).sum().alias("k")).sort(key)
        return {str(r[key]): _share(int(r["k"]), int(r["n"])) for r in g.iter_rows(named=True) if r[key] != ""}

    per = per.with_columns((~pl.col("fell_back")).alias("valid"))
    n, k = per.height, int(per["fell_back"].sum())
    reasons = per.filter(pl.col("fell_back")).group_by("reason").len().sort("reason")
    agents = per["agent"].n_unique()
    return {"decisions": n, "fallbacks": k, "fallback_share": _share(k, n),
            "fallback_share_by_role": shares("role", "fell_back"),
            "fallback_share_by_agent": shares("agent", "fell_back") if agents <= per_agent_limit else {},
            "fallback_reasons": {str(r["reason"]): int(r["len"]) for r in reasons.iter_rows(named=True)},
            "valid_share_by_purpose": shares("purpose", "valid"),
            "first_try_valid_share_by_purpose": shares("purpose", "first_try")}
