"""The batch seam (sim/batch.py): decided actions, the switch, and the per-agent path it must equal."""
from __future__ import annotations

import pytest

import sim
from sim.batch import Decided
from sim.config import ConfigError


def test_decided_reads_like_an_action():
    d = Decided(side="buy", price=5, qty=1)
    assert (d.side, d.price, d.qty) == ("buy", 5, 1)
    assert d.model_dump() == {"side": "buy", "price": 5, "qty": 1}
    assert d == Decided(side="buy", price=5, qty=1) and d != Decided(side="sell", price=5, qty=1)


def test_batch_switch_is_a_typed_engine_key():
    with pytest.raises(ConfigError, match="batch_scripted"):
        sim.run(["llm=scripted", "run.dir=null", "engine.batch_scripted=maybe"])


@pytest.mark.parametrize("env", ["traitors", "market"])
def test_quick_runs_are_identical_on_both_paths(env):
    from environments import registry

    over = [f"env={env}", "llm=scripted", "run.dir=null", "seed=11", *registry.env_class(env).quick]
    a = sim.run(over + ["engine.batch_scripted=true"], progress=False)
    b = sim.run(over + ["engine.batch_scripted=false"], progress=False)
    assert a.events.equals(b.events) and a.ledger.equals(b.ledger)
    assert a.summary["outcome"] == b.summary["outcome"]
