"""The two-tier cascade's closed forms (docs/compute-economics.md, section 2) through the real engine.

The decision is a Traitors faithful's banishment vote (6 players, 2 traitors voting as a scripted bloc;
no speeches, probes or reactions, so the faithful's votes are every metered call). Each faithful runs
the cascade small -> large with the oracle scorer (t, f). Per decision the closed forms are

    P(accept S) = a_S t + (1 - a_S) f,  accuracy q = a_S t + (1 - P(accept S)) a_L,
    expected cost = c_S + (1 - P(accept S)) c_L,

and, since both tiers answer right uniformly over the alive traitors and wrong uniformly over the other
alive faithful, and the scorer judges only right/wrong, the cascade is an oracle voter of accuracy q:
the exact faithful-win recursion W(f, t) at q gives the win probability, and the same recursion over the
expected number of faithful votes per game, V(f, t) = f + b V(f-1, t-1) + (1 - b) V(f-2, t), gives the
expected spend per game V c. Cost-of-pass of a faithful win = V c / W, all closed form; the engine's
games (``sim.montecarlo.run_batch``) must cover it within their intervals (``sim.frontier.cost_of_pass``),
and over independent seed blocks the 95% intervals must cover it about 95% of the time.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import polars as pl
import pytest

from environments.traitors.oracle_baseline import p_banish_traitor, p_faithful_win_oracle
from sim.frontier import cost_of_pass
from sim.montecarlo import batch_config, run_batch
from sim.runner import Simulation
from sim.stats import wilson_interval

N_PLAYERS, N_TRAITORS = 6, 2
A_S, A_L, TPR, FPR = 0.55, 0.92, 0.9, 0.2  # conf/llm/oracle.yaml tiers; the scorer set below
C_S, C_L = 100_000, 10_000_000  # nano-USD per call of the small and the large tier (conf/llm/oracle.yaml)

OVERRIDES = [
    "env=traitors", f"env.n_players={N_PLAYERS}", f"env.n_traitors={N_TRAITORS}", "env.traitor_policy=bloc",
    "env.discussion_passes=0", "env.belief_probe=false", "env.reactions=false", "env.conclave=false",
    "llm=oracle", "llm.model=small", "agent.llm_by_role={traitor: {provider: scripted, model: scripted}}",
    "deliberation=cascade", "deliberation.tiers=[small,large]", "deliberation.scorer.kind=oracle",
    f"deliberation.scorer.tpr={TPR}", f"deliberation.scorer.fpr={FPR}", "deliberation.thresholds=[0.5]",
    "agent.reflection.enabled=false", "budget=unlimited", "run.checkpoint=false", "run.dir=null",
]

# closed forms, per decision
P_ACCEPT = A_S * TPR + (1 - A_S) * FPR
Q = A_S * TPR + (1 - P_ACCEPT) * A_L
COST_NANO = C_S + (1 - P_ACCEPT) * C_L


@lru_cache(maxsize=None)
def expected_votes(f: int, t: int, q: float) -> float:
    """E[faithful votes in a game from (f, t)]: every alive faithful votes once a round; the banishment
    law b(f, t, q) of the exact recursion, then the night's murder of a faithful."""
    if t == 0 or t >= f:
        return 0.0
    b = p_banish_traitor(f, t, q)
    return f + b * expected_votes(f - 1, t - 1, q) + (1 - b) * expected_votes(f - 2, t, q)


def game_closed_form(q: float = Q, cost_nano: float = COST_NANO) -> tuple[float, float, float]:
    """(P(faithful win), E[USD per game], cost-of-pass in USD per faithful win) for oracle voters (q, c)."""
    w = p_faithful_win_oracle(N_PLAYERS, N_TRAITORS, q)
    usd = expected_votes(N_PLAYERS - N_TRAITORS, N_TRAITORS, q) * cost_nano / 1e9
    return w, usd, usd / w


def test_the_closed_forms_are_the_references():
    assert (P_ACCEPT, Q, COST_NANO / 1e9) == (pytest.approx(0.585), pytest.approx(0.877, abs=5e-4),
                                            pytest.approx(4.25e-3, rel=1e-3))
    # votes per game: at least the first round's four faithful, at most 4 + 3 + 2 rounds' worth
    v = expected_votes(N_PLAYERS - N_TRAITORS, N_TRAITORS, Q)
    assert 4 < v < 4 + 3 + 2
    assert expected_votes(3, 1, 1.0) == 3  # a perfect faithful bloc banishes the lone traitor in round 1


@pytest.fixture(scope="module")
def cfg() -> dict:
    return batch_config(OVERRIDES)


def _inside(k: int, n: int, p: float, z: float = 3.29) -> bool:
    lo, hi = wilson_interval(k, n, z=z)  # 99.9%: several checks share one seeded stream
    return lo <= p <= hi


def test_per_decision_accuracy_escalation_and_cost_match_the_closed_form(cfg):
    records, spent_by_ledger, spent_by_summary = [], [], []
    for seed in range(300):
        s = Simulation({**cfg, "seed": seed}, None)
        res = s.run(progress=False)
        assert res.summary["status"] == "completed"
        cost = {row.call_id: 0 for row in s.client.ledger.rows}
        for row in s.client.ledger.rows:
            cost[row.call_id] += row.cost_nano
        for r in s.env.deliberations:
            records.append({**r, "ledger_nano": sum(cost[c] for c in r["call_ids"])})
        spent_by_ledger.append(sum(cost.values()))
        spent_by_summary.append(res.summary["llm"]["cost_nano"])
    d = pl.DataFrame(records)
    n = d.height
    assert n > 1000
    # every deliberated decision is a faithful's vote under the cascade, priced from the ledger
    assert set(d["purpose"]) == {"vote"} and set(d["role"]) == {"faithful"} and set(d["policy"]) == {"cascade"}
    assert (d["nano_usd"] == d["ledger_nano"]).all()
    # the faithful's votes are all the spend: the games' ledgers hold nothing else that costs
    assert spent_by_ledger == spent_by_summary and sum(spent_by_ledger) == int(d["nano_usd"].sum())
    escalated = d["tiers_tried"].list.len() == 2
    assert set(map(tuple, d["tiers_tried"].to_list())) == {("small",), ("small", "large")}
    assert (d.filter(escalated)["nano_usd"] == C_S + C_L).all() and (d.filter(~escalated)["nano_usd"] == C_S).all()

    assert _inside(int(escalated.sum()), n, 1 - P_ACCEPT), (int(escalated.sum()), n)
    assert _inside(int(d["correct"].sum()), n, Q), (int(d["correct"].sum()), n)
    # the escalated decisions are the large tier's, the accepted ones right with P(right | accept)
    esc = d.filter(escalated)
    assert _inside(int(esc["correct"].sum()), esc.height, A_L)
    acc = d.filter(~escalated)
    assert _inside(int(acc["correct"].sum()), acc.height, A_S * TPR / P_ACCEPT)
    # expected nano-USD per decision: a 99.9% normal interval of the ledger's mean
    c = d["ledger_nano"].to_numpy().astype(float)
    half = 3.29 * c.std(ddof=1) / np.sqrt(n)
    assert abs(c.mean() - COST_NANO) <= half, (c.mean(), COST_NANO, half)
    # and the check tells the cascade from either tier alone
    assert not _inside(int(d["correct"].sum()), n, A_L) and not _inside(int(d["correct"].sum()), n, A_S)


BLOCKS, GAMES = 100, 30  # coverage: BLOCKS independent seed blocks of GAMES games each
SEED0 = 10_000  # clear of the seeds above


@pytest.fixture(scope="module")
def games(cfg) -> pl.DataFrame:
    out = run_batch([], range(SEED0, SEED0 + BLOCKS * GAMES), cfg=cfg)
    assert out.height == BLOCKS * GAMES and set(out["status"]) == {"completed"}
    assert set(out["winner"]) <= {"faithful", "traitors"}
    return out.with_columns(win=(pl.col("winner") == "faithful").cast(pl.Float64),
                            block=(pl.col("seed") - SEED0) // GAMES)


def test_win_rate_spend_and_cost_of_pass_match_the_exact_recursion(games):
    w, usd, cop = game_closed_form()
    n = games.height
    wins = int(games["win"].sum())
    assert _inside(wins, n, w), (wins, n, w)
    spend = games["usd"].to_numpy()
    half = 3.29 * spend.std(ddof=1) / np.sqrt(n)
    assert abs(spend.mean() - usd) <= half, (spend.mean(), usd, half)
    for method in ("fieller", "bootstrap"):
        r = cost_of_pass(spend, games["win"].to_numpy(), method, level=0.999, boot=2000, seed=1)
        assert r.lo <= cop <= r.hi, (method, r, cop)
        # the brief's form too: the engine's mean spend over the exact win probability
        assert r.lo <= spend.mean() / w <= r.hi, (method, r, spend.mean() / w)
    # the interval tells the closed form from near misses: voters as accurate as the large tier at the
    # cascade's cost (the small tier's accepted errors forgotten), or escalations priced at P(accept)
    r = cost_of_pass(spend, games["win"].to_numpy(), level=0.999)
    assert not r.lo <= usd / p_faithful_win_oracle(N_PLAYERS, N_TRAITORS, A_L) <= r.hi
    assert not r.lo <= game_closed_form(Q, C_S + P_ACCEPT * C_L)[2] <= r.hi
    assert not _inside(wins, n, p_faithful_win_oracle(N_PLAYERS, N_TRAITORS, A_L))


@pytest.mark.parametrize("method", ["fieller", "bootstrap"])
def test_cost_of_pass_intervals_cover_the_closed_form_over_seed_blocks(games, method):
    cop = game_closed_form()[2]
    covered, finite = 0, 0
    for k, block in enumerate(games.partition_by("block", maintain_order=True)):
        assert block.height == GAMES
        r = cost_of_pass(block["usd"].to_numpy(), block["win"].to_numpy(), method, boot=1000, seed=k)
        assert 0 <= r.lo <= r.value <= r.hi
        covered += r.lo <= cop <= r.hi
        finite += np.isfinite(r.hi)
    assert finite == BLOCKS  # every block won some games: the intervals are bounded
    assert covered / BLOCKS >= 0.90, covered / BLOCKS
