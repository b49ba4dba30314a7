"""Ledger views: one group-by for every reader, and a running total at O(new rows)."""
import polars as pl
import pytest

from sim.inference.ledger import Ledger, LedgerRow
from sim.inference.views import RunningSpend, spend_by

LED = pl.DataFrame({"agent": ["p1", "p1", "p2", "p2"], "phase": ["a", "b", "a", "a"],
                    "tokens_in": [10, 20, 5, 0], "tokens_out": [1, 2, 3, 0],
                    "cost_nano": [1_000, 2_000, 500, 0], "outcome": ["ok", "invalid_output", "ok", "denied"]})


def test_spend_by_one_and_two_keys():
    a = spend_by(LED, "agent")
    assert a.to_dicts()[0] == {"agent": "p1", "attempts": 2, "ok_calls": 1, "tokens_in": 30, "tokens_out": 3,
                               "tokens": 33, "usd": pytest.approx(3e-6)}
    two = spend_by(LED, "agent", "phase")
    assert two.select("agent", "phase", "attempts").rows() == [("p1", "a", 1), ("p1", "b", 1), ("p2", "a", 2)]
    assert spend_by(pl.DataFrame(), "agent").height == 0
    assert spend_by(LED, "nosuch").height == 0


def _row(i, cost):
    return LedgerRow(call_id=i, attempt=1, tick=1, phase="a", agent="p1", purpose="x", reask=0, provider="openai",
                     endpoint="default", model="m", price_version="v", prompt_hash="h", cost_nano=cost)


def test_running_spend_adds_only_new_rows():
    led = Ledger()
    run = RunningSpend(led)
    assert run.nano() == 0
    led.rows += [_row(1, 100), _row(2, 50)]
    assert run.nano() == 150
    led.rows.append(_row(3, 7))
    assert run.usd() == pytest.approx(157e-9)


def test_totals_of_rows_equal_the_frame_totals():
    """The summary's totals from rows in memory are the same figures as from the ledger frame."""
    from sim.inference.ledger import OUTCOMES, _frame, totals, totals_of_rows

    rows = []
    for i, outcome in enumerate([*OUTCOMES, "ok", "ok", "denied", "fallback", "truncated"]):
        rows.append(LedgerRow(call_id=i, attempt=0, tick=i // 3, phase="p", agent=f"a{i % 4}", purpose="vote",
                              reask=0, provider="openai", endpoint="default", model="m", price_version="v",
                              prompt_hash="h", tokens_in=10 + i, tokens_cached=i % 5, tokens_out=3 * i,
                              cost_nano=1000 * i + 7, outcome=outcome, cache_hit=i % 3 == 0,
                              overclaim=i % 7 == 0))
    assert totals_of_rows(rows) == totals(_frame(rows))
    assert totals_of_rows([]) == totals(_frame([]))
    assert totals_of_rows(rows)["overclaims"] > 0 and totals_of_rows(rows)["cache_hits"] > 0
