"""Market: the batch path (environments/market/batch.py) equals the per-agent path.

Same seed, ``engine.batch_scripted`` on and off: identical events, ledger, metrics and outcome
for ZI-U, ZI-C, momentum and fundamental traders in both setups, and with a model trading
among scripted traders.
"""
from __future__ import annotations

import polars as pl
import pytest

import sim
from sim.testing.loopback import LoopbackServer

BASE = ["env=market", "llm=scripted", "run.dir=null", "agent.reflection.enabled=false"]
CASES = [
    ["env.setup=induced", "env.trader_policy=zic", "env.n_traders=20", "env.ticks=30"],
    ["env.setup=induced", "env.trader_policy=ziu", "env.n_traders=21", "env.ticks=30", "env.units_each=2"],
    ["env.setup=induced", "env.trader_policy=zic", "env.n_traders=12", "env.ticks=20", "env.replace_quotes=false",
     "env.value_range=[50,120]", "env.cost_range=[40,200]", "env.max_price=150"],
    ["env.setup=asset", "env.trader_policy=mix", "env.n_traders=30", "env.ticks=25"],
    ["env.setup=asset", "env.trader_policy=mix", "env.n_traders=11", "env.ticks=30", "env.volatility_pct=5",
     "env.momentum_window=2"],
    ["env.setup=asset", "env.trader_policy=fundamental", "env.n_traders=15", "env.ticks=20", "env.shock_size=30",
     "env.replace_quotes=false"],
    ["env.setup=asset", "env.trader_policy=ziu", "env.n_traders=16", "env.ticks=15", "env.max_qty=3"],
    ["env.setup=asset", "env.trader_policy=zic", "env.n_traders=200", "env.ticks=8"],
    # above SMALL traders the induced decisions are arrays (below, plain integers on pre-seeded streams)
    ["env.setup=induced", "env.trader_policy=zic", "env.n_traders=80", "env.ticks=8"],
    ["env.setup=induced", "env.trader_policy=ziu", "env.n_traders=70", "env.ticks=6", "env.replace_quotes=false"],
]


def assert_same(a, b, volatile: tuple[str, ...] = ()) -> None:
    assert a.events.height > 0
    assert a.events.equals(b.events)
    assert a.ledger.drop(list(volatile)).equals(b.ledger.drop(list(volatile)))
    assert a.metrics.equals(b.metrics, null_equal=True)
    assert a.summary["outcome"] == b.summary["outcome"]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("seed", [0, 3])
def test_batch_and_per_agent_paths_write_the_same_run(case, seed):
    over = BASE + case + [f"seed={seed}"]
    a = sim.run(over + ["engine.batch_scripted=true"], progress=False)
    b = sim.run(over + ["engine.batch_scripted=false"], progress=False)
    assert_same(a, b)
    assert a.events.filter(pl.col("kind") == "trade").height > 0


def test_mixed_population_one_model_trader_among_scripted():
    runs = []
    for batch in ("true", "false"):
        with LoopbackServer(responder=lambda body: '{"side": "buy", "price": 120, "qty": 1}') as srv:
            ep = (f"{{provider: openai, model: m, base_url: '{srv.base_url}', api_key_env: null, "
                  "schema_mode: json_schema, max_retries: 0, prices: {m: {input_per_mtok: 1, output_per_mtok: 2}}}")
            runs.append(sim.run(BASE + ["env.setup=induced", "env.trader_policy=zic", "env.n_traders=8",
                                        "env.ticks=4", "seed=2", f"+agent.llm_by_role.buyer={ep}",
                                        "engine.concurrency=1", f"engine.batch_scripted={batch}"], progress=False))
    a, b = runs
    assert_same(a, b, volatile=("latency_ms",))
    answered = a.ledger.filter((pl.col("provider") == "openai") & (pl.col("outcome") == "ok"))
    assert answered.height > 0 and a.summary["status"] == "completed"
    assert a.ledger.filter(pl.col("provider") == "scripted").height > 0


def _played(over: list[str]):
    from sim.config import compose, to_dict
    from sim.runner import Simulation

    s = Simulation(to_dict(compose(BASE + over)), None)
    s.run(progress=False)
    return s


def test_outcome_surplus_kept_per_fill_equals_the_trades_frame():
    from environments.market import metrics as mm

    s = _played(["env.setup=induced", "env.trader_policy=ziu", "env.n_traders=16", "env.ticks=20", "seed=4"])
    env = s.env
    assert len(env.fills) > 0
    frame_surplus = mm.realised_surplus(env.trades_frame(), env.values, env.costs)
    assert s.result.summary["outcome"]["realised_surplus"] == frame_surplus


def test_streams_seeded_many_ticks_at_once_draw_as_each_ticks_own():
    """``policy_streams`` seeds a small market's next ticks in one pass; each tick's streams, in any
    trader order, are still ``rng_for("policy", tick, trader)``."""
    import numpy as np

    from environments.market import batch as mb

    s = _played(["env.setup=induced", "env.trader_policy=zic", "env.n_traders=20", "env.ticks=2", "seed=9"])
    env = s.env
    rev = list(reversed(env.order))
    idx = np.array([env.index[x] for x in rev])
    for tick in (1, 2, 3, 1 + mb.SEED_BATCH // 20, 2 + mb.SEED_BATCH // 20):  # across a re-seed
        env.tick = tick
        got = mb.policy_streams(env, rev, idx).integers(0, 1000)
        want = [int(env.rng_for("policy", tick, x).integers(0, 1000)) for x in rev]
        assert got.tolist() == want
