"""The batch runner: many in-memory games of one config, one frame of outcomes (sim/montecarlo.py)."""
from __future__ import annotations

import polars as pl

import sim
from sim.cli import main
from sim.montecarlo import outcome_row, run_batch, seed_sweep

TRAITORS = ["env=traitors", "llm=scripted", "env.n_players=8", "env.n_traitors=2", "env.discussion_passes=0",
            "env.belief_probe=false", "agent.reflection.enabled=false"]
MARKET = ["env=market", "llm=scripted", "env.setup=induced", "env.trader_policy=zic", "env.n_traders=10",
          "env.ticks=15", "agent.reflection.enabled=false"]


def test_each_row_is_that_seeds_single_run_outcome():
    for over in (TRAITORS, MARKET):
        out = run_batch(over, [3, 5, 8])
        assert out["seed"].to_list() == [3, 5, 8] and set(out["status"]) == {"completed"}
        for row in out.iter_rows(named=True):
            single = sim.run(over + ["run.dir=null", f"seed={row['seed']}"], progress=False)
            want = outcome_row(single.summary)
            assert {k: row[k] for k in want if k != "wall_s"} == {k: v for k, v in want.items() if k != "wall_s"}


def test_worker_processes_give_the_same_frame():
    one = run_batch(TRAITORS, range(6), workers=1)
    two = run_batch(TRAITORS, range(6), workers=2)
    assert one.drop("wall_s").equals(two.drop("wall_s"))
    assert "winner" in one.columns and one["winner"].null_count() == 0


def test_run_many_keeps_its_results_and_adds_a_frame():
    runs = sim.run_many(TRAITORS + ["run.dir=null"], [1, 2])
    assert [r.summary["seed"] for r in runs] == [1, 2] and runs[0].events.height > 0
    assert isinstance(runs.frame, pl.DataFrame) and runs.frame["seed"].to_list() == [1, 2]
    assert runs.frame["winner"].to_list() == [r.summary["outcome"]["winner"] for r in runs]


def test_only_an_in_memory_seed_sweep_is_a_batch():
    fixed, seeds, workers = seed_sweep(["seed=range(3)", "run.dir=null", "env.n_players=6", "env.n_traitors=1",
                                        "hydra.launcher.n_jobs=2"])
    assert seeds == [0, 1, 2] and workers == 2 and "env.n_players=6" in fixed
    assert seed_sweep(["seed=range(3)"]) is None  # run.dir=auto: Hydra writes one folder per run
    assert seed_sweep(["seed=range(3)", "env.n_traitors=1,2", "run.dir=null"]) is None
    assert seed_sweep(["run.dir=null", "env.n_players=12"]) is None


def test_cli_seed_sweep_in_memory_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "-m", "seed=range(4)", "run.dir=null", *TRAITORS]) == 0
    out = capsys.readouterr().out
    assert "4 games: completed 4" in out and "faithful win rate" in out
    assert not any(tmp_path.iterdir())


def test_ledger_totals_count_every_outcome_like_the_frame_filters():
    """``totals`` counts outcomes with one value_counts; the same numbers as filtering the frame."""
    import polars as pl

    from sim.inference.ledger import OUTCOMES, REPLIED, Ledger, LedgerRow, totals

    lg = Ledger()
    for i, o in enumerate(list(OUTCOMES) * 2 + ["ok"] * 5):
        lg.rows.append(LedgerRow(call_id=i, attempt=1, tick=1, phase="x", agent="p1", purpose="vote", reask=0,
                                 provider="scripted", endpoint="e", model="m", price_version="v", prompt_hash="h",
                                 outcome=o, cost_nano=i))
    f = lg.frame()
    got = totals(f)
    oc = f["outcome"]
    assert got["calls"] == int(oc.is_in(list(REPLIED)).sum()) == 11
    assert got["attempts"] == f.filter(~pl.col("outcome").is_in(["denied", "fallback"])).height == 21
    assert got["failed"] == int(oc.is_in(["timeout", "rate_limited", "server_error", "bad_request"]).sum()) == 8
    assert (got["denied"], got["fallbacks"], got["invalid"], got["truncated"]) == (2, 2, 2, 2)
    assert got["cost_nano"] == sum(range(25))
    assert lg.frame([]).height == 0 and lg.frame([]).schema == f.schema  # the shared empty frame is a copy
    assert f["call_id"].to_list() == sorted(f["call_id"].to_list())


def test_finished_games_do_not_stay_in_memory():
    """mesa keys its agent-id counters by model; a batch of games must not keep every game alive."""
    import gc
    import weakref

    from sim.montecarlo import batch_config
    from sim.runner import Simulation

    cfg = batch_config(["env=traitors", "llm=scripted", "env.n_players=6", "env.n_traitors=1"])
    sims = [Simulation({**cfg, "seed": s}, None) for s in range(3)]
    refs = []
    for s in sims:
        s.run(progress=False)
        refs.append(weakref.ref(s.env))
    del sims, s
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
