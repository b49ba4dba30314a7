"""A replaced quote's cancel event records the units it withdrew (it read 0: emitted after the book zeroed them)."""
from __future__ import annotations

import json

import polars as pl

import sim


def test_cancel_events_record_the_withdrawn_quantity():
    res = sim.run(["env=market", "llm=scripted", "env.n_traders=8", "env.ticks=8", "env.replace_quotes=true",
                   "run.dir=null", "run.progress=off", "seed=2"])
    cancels = [json.loads(p) for p in res.events.filter(pl.col("kind") == "cancel")["payload"]]
    assert cancels, "no quote was replaced in this run"
    assert all(c["qty"] > 0 for c in cancels), cancels
