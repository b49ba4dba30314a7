"""Traitors: the batch path (sim/batch.py, environments/traitors/batch.py) equals the per-agent path.

Same seed, same config, ``engine.batch_scripted`` on and off: identical events, ledger and
outcome, for every shipped scripted policy and a population mixing a model with scripted agents.
"""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import sim
from environments.traitors.baselines import BayesSuspicion, beliefs_many
from sim.testing.loopback import LoopbackServer

QUICK = ["env=traitors", "llm=scripted", "run.dir=null", "agent.reflection.enabled=false"]
CASES = [
    ["env.n_players=10", "env.n_traitors=3"],  # defaults: bayes faithful, bloc traitors, speeches, beliefs
    ["env.n_players=10", "env.n_traitors=3", "env.faithful_policy=random", "env.traitor_policy=random",
     "env.discussion_passes=0", "env.belief_probe=false", "env.reactions=false", "env.conclave=false"],
    ["env.n_players=12", "env.n_traitors=3", "env.faithful_policy=majority", "env.tie_break=first_voted"],
    ["env.n_players=9", "env.n_traitors=2", "env.faithful_policy=bayes", "env.traitor_policy=random",
     "env.recruitment=true", "env.belief_format=keyed", "env.exile_rule=majority"],
    ["env.n_players=30", "env.n_traitors=5", "env.discussion_passes=0", "env.belief_probe=false"],
    ["env.n_players=8", "env.n_traitors=2", "env.vote_visibility=open_sequential", "env.faithful_policy=majority"],
]


def both(over: list[str]) -> tuple["sim.RunResult", "sim.RunResult"]:
    return (sim.run(over + ["engine.batch_scripted=true"], progress=False),
            sim.run(over + ["engine.batch_scripted=false"], progress=False))


def assert_same(a: sim.RunResult, b: sim.RunResult, volatile: tuple[str, ...] = ()) -> None:
    assert a.events.height > 0
    assert a.events.equals(b.events)
    assert a.ledger.drop(list(volatile)).equals(b.ledger.drop(list(volatile)))
    assert a.metrics.equals(b.metrics)
    assert a.summary["outcome"] == b.summary["outcome"]
    assert a.summary["status"] == b.summary["status"]


@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_and_per_agent_paths_write_the_same_run(case, seed):
    a, b = both(QUICK + case + [f"seed={seed}"])
    assert_same(a, b)
    assert a.ledger.filter(pl.col("purpose") == "vote").height > 0


def test_mixed_population_llm_traitors_and_scripted_faithful():
    """A model answers the traitors (loopback server), the batch answers the faithful: same run both ways."""
    runs = []
    for batch in ("true", "false"):
        with LoopbackServer() as srv:  # a fresh server each: its prefix cache is part of the replies
            ep = (f"{{provider: openai, model: role-model, base_url: '{srv.base_url}', api_key_env: null, "
                  "schema_mode: json_schema, max_retries: 0, "
                  "prices: {role-model: {input_per_mtok: 1, output_per_mtok: 2}}}")
            runs.append(sim.run(QUICK + ["env.n_players=7", "env.n_traitors=2", "env.max_rounds=2", "seed=4",
                                         "env.discussion_passes=1", f"+agent.llm_by_role.traitor={ep}",
                                         f"engine.batch_scripted={batch}",
                                         "engine.concurrency=1"], progress=False))  # arrival order sets the cache
    a, b = runs
    assert_same(a, b, volatile=("latency_ms",))
    llm = a.ledger.filter(pl.col("provider") == "openai")
    traitors = set(a.summary["outcome"]["traitors"]) | set(a.summary["outcome"]["recruited"])
    assert llm.height > 0 and set(llm["agent"]) <= traitors
    assert a.ledger.filter(pl.col("provider") == "scripted").height > 0


def test_beliefs_many_equals_one_at_a_time():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(4, 40))
        players = [f"p{i}" for i in range(1, n + 1)]
        models = [BayesSuspicion(p, players, int(rng.integers(1, n // 3 + 1))) for p in players[:8]]
        for m in models:
            for _ in range(int(rng.integers(0, 4))):
                m.observe({p: bool(rng.random() < 0.5) for p in m.log_odds})
        ref = [m._beliefs() for m in models]
        assert beliefs_many(models) == ref
        assert [m.beliefs() for m in models] == ref  # the memo holds the same values


def test_memo_is_dropped_when_beliefs_change():
    m = BayesSuspicion("p1", ["p1", "p2", "p3", "p4"], 1)
    before = m.beliefs()
    m.observe({"p2": True, "p3": False, "p4": False})
    after = m.beliefs()
    assert after != before and after == m._beliefs()
    m.eliminate("p2", "traitor")
    assert m.beliefs() == {"p3": 0.0, "p4": 0.0}


def test_large_scripted_tables_run_and_model_tables_stay_capped():
    """Scripted tables go past the 60 a model may play (engine benchmarks run 1,000); a model's is refused."""
    from sim.config import ConfigError

    over = QUICK + ["env.n_players=200", "env.n_traitors=20", "env.discussion_passes=0",
                    "env.belief_probe=false", "run.max_ticks=1"]
    a, b = both(over)
    assert_same(a, b)
    assert int((a.events["kind"] == "vote").sum()) >= 200
    with pytest.raises(ConfigError, match="env.n_players=61: at most 60 when a model plays"):
        sim.run(["env=traitors", "llm=local", "run.dir=null", "env.n_players=61", "env.n_traitors=3"],
                progress=False)


def test_a_tables_rows_solved_together_equal_each_observer_alone():
    """One table's shifts solved as one array give each row the floats a lone observer gets (row order,
    partial observations, eliminations and the no-search rows included)."""
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(4, 60))
        players = [f"p{i}" for i in range(1, n + 1)]
        t = int(rng.integers(1, n // 3 + 1))
        table = BayesSuspicion.many(players, t)
        alone = {p: BayesSuspicion(p, players, t) for p in players}
        for _ in range(int(rng.integers(0, 6))):
            for p in players:
                tells = {x: bool(rng.random() < 0.5) for x in alone[p].log_odds if rng.random() < 0.9}
                table[p].observe(tells)
                alone[p].observe(tells)
            if rng.random() < 0.5:
                gone, role = players[int(rng.integers(n))], ("traitor" if rng.random() < 0.5 else None)
                for p in players:
                    table[p].eliminate(gone, role)
                    alone[p].eliminate(gone, role)
        order = [players[i] for i in rng.permutation(n)]
        got = beliefs_many([table[p] for p in order])
        assert got == [alone[p].beliefs() for p in order]
        assert all(table[p].log_odds == alone[p].log_odds for p in players)


def test_many_observers_vote_like_the_table_batch_at_300_players():
    """A large table's batch path (tells and votes as arrays, streams seeded as arrays) writes the per-agent run."""
    over = QUICK + ["env.n_players=300", "env.n_traitors=30", "env.discussion_passes=0", "env.belief_probe=false",
                    "env.reactions=false", "env.conclave=false", "env.max_rounds=2", "seed=3"]
    a, b = both(over)
    assert_same(a, b)
    assert int((a.events["kind"] == "vote").sum()) > 600


def test_tells_are_drawn_only_where_an_answer_reads_them():
    """Random faithful with no speeches or beliefs never read their tells: none are drawn (nothing changes)."""
    from sim.runner import Simulation
    from sim.montecarlo import batch_config

    lean = ["env.discussion_passes=0", "env.belief_probe=false", "env.traitor_policy=random", "seed=2"]
    for policy, drawn in (("random", False), ("bayes", True)):
        sim_ = Simulation(batch_config(QUICK + lean + [f"env.faithful_policy={policy}"]), None)
        sim_.run(progress=False)
        table = next(iter(sim_.env.suspicion.values())).table
        assert bool(table.k.any() or table.m.any()) is drawn


def _top_from_beliefs(table, rows):
    """The vote's top entries from solved beliefs: within 1e-12 of the row's highest (the reference)."""
    table.solve(rows)
    b = table.b[rows]
    best = np.fmax.reduce(b, axis=1)
    with np.errstate(invalid="ignore"):
        return table.tracked[rows] & ((best[:, None] - b) <= 1e-12)


@pytest.mark.parametrize("q_hi,q_lo", [(0.6, 0.4), (0.9, 0.1), (0.999, 0.001), (0.4, 0.6), (0.52, 0.5)])
def test_top_by_count_is_the_top_of_the_solved_beliefs(q_hi, q_lo):
    """Where the counts alone settle a row's most suspected (no beliefs solved), they are exactly the
    entries within 1e-12 of its highest belief; where they may not (near-saturated beliefs, q_hi <= q_lo,
    partial observations), the table says so (None) and the vote solves."""
    from environments.traitors.baselines import SuspicionTable

    rng = np.random.default_rng(11)
    settled = unsettled = 0
    for _ in range(40):
        n = int(rng.integers(5, 40))
        players = [f"p{i}" for i in range(1, n + 1)]
        traitors = set(rng.choice(players, size=max(1, n // 4), replace=False).tolist())
        table = SuspicionTable(players, len(traitors), q_hi, q_lo)
        for _ in range(int(rng.integers(1, 40))):
            rows = np.arange(n)
            table.count(rows)
            seen = table.tracked & (rng.random((n, n)) < np.where([p in traitors for p in table.pids], q_hi, q_lo))
            table.k += seen
            table.m += table.tracked & ~seen
            table.n_obs += 1
            table.changed(rows)
            if rng.random() < 0.3 and table.tracked.any():
                gone = table.pids[int(rng.integers(n))]
                table.eliminate(gone, "traitor" if gone in traitors and rng.random() < 0.7 else None)
            live = np.flatnonzero(table.tracked.any(axis=1))
            got = table.top_by_count(live)
            if got is None:
                unsettled += 1
                continue
            settled += 1
            assert (got == _top_from_beliefs(table, live)).all()
    if q_hi <= q_lo:  # beliefs fall with the count: never settled by it
        assert settled == 0
    else:
        assert settled > 0
    if q_hi >= 0.999:  # beliefs saturate within the rounds played: some rows left to the solve
        assert unsettled > 0


def test_batch_equals_per_agent_where_beliefs_saturate():
    """Near-certain tells over many rounds push beliefs to 0 and 1 (the counts do not settle the vote):
    the batch path still writes the per-agent run."""
    over = QUICK + ["env.n_players=40", "env.n_traitors=6", "env.discussion_passes=0", "env.belief_probe=false",
                    "env.reactions=false", "env.conclave=false", "env.tell_q_hi=0.995", "env.tell_q_lo=0.005",
                    "seed=4"]
    a, b = both(over)
    assert_same(a, b)


def test_counting_and_sorting_the_keys_give_the_same_beliefs(monkeypatch):
    """``solve`` counts (row, count) keys with bincount, or sorts them past ``KEY_COUNT_MAX``: the same floats,
    with counts at the top of their narrow type (255 rounds) included."""
    import environments.traitors.baselines as bl

    players = [f"p{i}" for i in range(1, 31)]
    k = np.random.default_rng(5).integers(0, 256, (30, 30))  # tells seen in 255 rounds
    beliefs = []
    for limit in (bl.KEY_COUNT_MAX, 0):
        monkeypatch.setattr(bl, "KEY_COUNT_MAX", limit)
        table = bl.SuspicionTable(players, 4)
        table.k[:] = np.where(table.tracked, k, 0)
        table.m[:] = np.where(table.tracked, 255 - k, 0)
        table.n_obs[:] = 255
        table.changed(np.arange(len(players)))
        table.solve(range(len(players)))
        beliefs.append(np.nan_to_num(table.b, nan=-1.0).copy())
    assert (beliefs[0] == beliefs[1]).all() and (beliefs[0] >= 0).sum() == 30 * 29


def test_top_by_count_near_its_bound_and_past_255_rounds():
    """Rows built so the top count sits near the bound's edge (log-odds of the top about 22-27, where
    beliefs start to saturate), close and far tell strengths, up to 300 rounds (counts widened past
    uint8): every settled row's mask is the solved beliefs' top, and some rows are left to the solve."""
    import math

    from environments.traitors.baselines import SuspicionTable

    rng = np.random.default_rng(17)
    settled = unsettled = 0
    with np.errstate(all="ignore"):
        for _ in range(150):
            n = int(rng.integers(3, 60))
            players = [f"p{i:03d}" for i in range(n)]
            q_lo = float(rng.choice([0.5, 0.0001, 0.3, 1e-6]))
            q_hi = q_lo + (1 - q_lo) * float(10.0 ** rng.uniform(-10, 0))
            if not q_lo < q_hi < 1:
                continue
            rounds = int(rng.integers(1, 301))
            table = SuspicionTable(players, int(rng.integers(1, n)), q_hi, q_lo)
            rows = np.arange(n)
            for _ in range(rounds):
                table.count(rows)
            d, tr = table.yes - table.no, table.tracked
            if not d > 0:  # q_hi and q_lo one rounding apart
                continue
            n_tr = tr.sum(axis=1)
            if rng.random() < 0.5:
                table.t_left[:] = np.where(rng.random(n) < 0.5, 1, n_tr - 1)
            for i in range(n):
                p = table.t_left[i] / n_tr[i]
                if not 0 < p < 1:  # no search: every belief 0 or 1
                    continue
                target = (rng.uniform(22, 27) + d - math.log(p / (1 - p))) / d
                k_max = int(min(rounds, max(1, math.floor(target))))
                k = np.clip(np.where(rng.random(n) < rng.random(), k_max, k_max - 1 - rng.integers(0, 2, n)), 0, rounds)
                k[rng.integers(n)] = k_max
                table.k[i] = np.where(tr[i], k, 0)
                table.m[i] = np.where(tr[i], rounds - k, 0)
            table.n_obs[:] = rounds
            table.changed(rows)
            for i in range(n):
                got = table.top_by_count(np.array([i]))
                if got is None:
                    unsettled += 1
                    continue
                settled += 1
                assert (got == _top_from_beliefs(table, np.array([i]))).all(), (n, q_hi, q_lo, rounds, i)
    assert settled > 100 and unsettled > 100
