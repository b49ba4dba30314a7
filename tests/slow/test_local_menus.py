"""The embedded model's numbers stay inside the market's bounds (menus in its grammar)."""
from __future__ import annotations

import json

import pytest

import sim

pytestmark = pytest.mark.slow


def test_embedded_model_orders_are_inside_the_bounds(tmp_path):
    res = sim.run(["env=market", "llm=local", "env.n_traders=2", "env.ticks=2", "env.max_price=200", "env.max_qty=5",
                   "agent.reflection.enabled=false", "seed=3", f"run.dir={tmp_path}"], progress=False)
    replies = [json.loads(line)["text"] for line in (tmp_path / "llm_cache.jsonl").read_text().splitlines()]
    orders = [json.loads(t) for t in replies if t.strip().startswith("{")]
    assert orders, replies
    # before the menus, 34% of the embedded model's orders were out of range (qty 2000, price 1843)
    assert all(0 <= o["price"] <= 200 and 0 <= o["qty"] <= 5 for o in orders), orders
    shares = res.summary["llm"]["valid_share_by_purpose"]
    assert set(shares) == {"order"} and shares["order"] is not None
