"""Deliberation policies at the act seam, checked against the closed forms of oracle tiers.

The decision is a taxation worker's binary labour choice (hours menu [0, 100]): the oracle
tiers' closed forms for a binary decision hold exactly there.
"""
from __future__ import annotations

from math import comb

import polars as pl
import pytest

import sim
from sim.deliberation import Deliberation, PolicyConfig
from sim.runner import Simulation, replay
from sim.config import ConfigError, compose, to_dict
from sim.stats import wilson_interval

BINARY = ["env=taxation", "env.hours_step=100", "env.n_workers=40", "env.ticks=8", "llm=oracle",
          "llm.model=small", "budget=unlimited", "agent.reflection.enabled=false"]
C_S, C_L = 100_000, 10_000_000  # nano-USD per call of the small and the large tier (conf/llm/oracle.yaml)


def records(*overrides: str, path=None) -> pl.DataFrame:
    cfg = to_dict(compose([*BINARY, *overrides, f"run.dir={path}" if path else "run.dir=null"]))
    s = Simulation(cfg, None)
    s.run(progress=False)
    return pl.DataFrame(s.env.deliberations)


def inside(successes: int, n: int, p: float) -> bool:
    # 99.9%: several of these checks run on one seeded stream; a 99% interval would fail on some stream
    # (seed 0's first-tier draws happen to be 2.5 sd lucky; the draws match the oracle's exactly)
    lo, hi = wilson_interval(successes, n, z=3.29)
    return lo <= p <= hi


def test_majority_of_n_matches_its_closed_form():
    d = records("deliberation=best_of_n", "deliberation.n=5")
    exact = sum(comb(5, j) * 0.55 ** j * 0.45 ** (5 - j) for j in range(3, 6))
    assert exact == pytest.approx(0.593, abs=5e-4)
    assert len(d) == 320 and inside(int(d["correct"].sum()), len(d), exact)
    assert (d["samples"] == 5).all() and (d["nano_usd"] == 5 * C_S).all()


def test_two_tier_cascade_accuracy_and_cost_match_the_closed_form():
    d = records("deliberation=cascade", "deliberation.scorer.tpr=0.9", "deliberation.scorer.fpr=0.2")
    p_accept = 0.55 * 0.9 + 0.45 * 0.2
    accuracy = 0.55 * 0.9 + (1 - p_accept) * 0.92
    assert (p_accept, accuracy) == (pytest.approx(0.585), pytest.approx(0.877, abs=1e-3))
    escalated = d["tiers_tried"].list.len() == 2
    assert inside(int(escalated.sum()), len(d), 1 - p_accept)
    assert inside(int(d["correct"].sum()), len(d), accuracy)
    # each decision costs c_S, or c_S + c_L when escalated: the mean is the closed form's given the escalations
    assert set(d["nano_usd"].unique().to_list()) <= {C_S, C_S + C_L}
    assert d.filter(escalated)["nano_usd"].min() == C_S + C_L


def _reference_stake(*overrides: str) -> float:
    """The median stake of tick 1's labour choices (tick 1's state, and so its stakes, do not depend on
    what any policy chose)."""
    d = records("deliberation=voc_gate", "env.ticks=1", *overrides)
    assert d["stake"].n_unique() > 1  # the stake is the worker's utility at risk, not a constant
    return sorted(d["stake"].to_list())[len(d) // 2]


@pytest.mark.parametrize("factor, tier", [(0.999, "small"), (1.001, "large")])
def test_voc_gate_switches_exactly_at_its_threshold(factor, tier):
    # (a_L - a_S) G = c_L - c_S with G = stake x usd_per_stake: put the median decision at factor x G*
    s_ref = _reference_stake()
    usd = (C_L - C_S) / 1e9 / (0.92 - 0.55) / s_ref * factor
    d = records("deliberation=voc_gate", "env.ticks=1", f"deliberation.usd_per_stake={usd!r}")
    assert d.filter(pl.col("stake") == s_ref)["tiers_tried"].to_list()[0] == [tier]
    for stake, tried in zip(d["stake"].to_list(), d["tiers_tried"].to_list()):  # every decision by its stake
        assert tried == (["large"] if (0.92 - 0.55) * stake * usd > (C_L - C_S) / 1e9 else ["small"])


def test_compute_tax_moves_the_switch_point():
    s_ref = _reference_stake()
    usd = (C_L - C_S) / 1e9 / (0.92 - 0.55) / s_ref * 1.5
    d = records("deliberation=voc_gate", "env.ticks=1", f"deliberation.usd_per_stake={usd!r}",
                "deliberation.compute_tax=0.6")
    assert d.filter(pl.col("stake") == s_ref)["tiers_tried"].to_list()[0] == ["small"]  # 1.5 G* < G* (1 + 0.6)
    for stake, tried in zip(d["stake"].to_list(), d["tiers_tried"].to_list()):
        assert tried == (["large"] if (0.92 - 0.55) * stake * usd > (C_L - C_S) / 1e9 * 1.6 else ["small"])


P3 = 0.55 ** 3 + 3 * 0.55 ** 2 * 0.45  # majority of 3 samples of the small tier on a binary choice


@pytest.mark.parametrize("factor, n", [(0.999, 1), (1.001, 3)])
def test_voc_gate_more_samples_switches_exactly_at_its_threshold(factor, n):
    # extra=samples: 3 samples iff (P_maj(a, 3) - a) G > (3 - 1) c_S
    s_ref = _reference_stake()
    usd = 2 * C_S / 1e9 / (P3 - 0.55) / s_ref * factor
    ov = ("deliberation.extra=samples", "deliberation.samples=3", "deliberation.tiers=[small]", "env.ticks=1")
    d = records("deliberation=voc_gate", *ov, f"deliberation.usd_per_stake={usd!r}")
    assert d.filter(pl.col("stake") == s_ref)["samples"].to_list() == [n]
    for stake, samples in zip(d["stake"].to_list(), d["samples"].to_list()):
        assert samples == (3 if (P3 - 0.55) * stake * usd > 2 * C_S / 1e9 else 1)
    assert (d["tiers_tried"].list.len() == 1).all() and (d["nano_usd"] == d["samples"] * C_S).all()


def test_voc_gate_more_samples_buys_the_majority_closed_form():
    from sim.deliberation import majority_accuracy

    assert majority_accuracy(0.55, 3) == pytest.approx(P3) and majority_accuracy(0.55, 5) == pytest.approx(0.593, abs=5e-4)
    assert majority_accuracy(0.55, 2) == pytest.approx(0.55)  # an even n with a fair tie-break buys nothing
    d = records("deliberation=voc_gate", "deliberation.extra=samples", "deliberation.samples=3",
                "deliberation.tiers=[small]", "deliberation.usd_per_stake=1000")
    assert (d["samples"] == 3).all() and inside(int(d["correct"].sum()), len(d), P3)
    never = records("deliberation=voc_gate", "deliberation.extra=samples", "deliberation.tiers=[small]",
                    "deliberation.usd_per_stake=0", "env.ticks=2")
    assert (never["samples"] == 1).all() and (never["nano_usd"] == C_S).all()
    with pytest.raises(ConfigError, match="two tiers"):
        compose([*BINARY, "deliberation=voc_gate", "deliberation.tiers=[small]"])  # the tier form needs two


@pytest.mark.parametrize("threshold, tier", [(0.5, "small"), (0.3, "large")])
def test_router_sends_small_when_the_predicted_gap_is_under_its_threshold(threshold, tier):
    d = records("deliberation=router", f"deliberation.router_threshold={threshold}")
    assert d["tiers_tried"].to_list() == [[tier]] * len(d)  # gap 0.92 - 0.55 = 0.37


def test_latent_budget_is_a_persona_trait():
    d = records("deliberation=latent_budget", "deliberation.budgets=[1,3,5]", "deliberation.budget_weights=[0.5,0,0.5]")
    per_agent = d.group_by("agent").agg(pl.col("budget").n_unique().alias("k"), pl.col("budget").first())
    assert (per_agent["k"] == 1).all()  # drawn once per run
    assert set(per_agent["budget"].to_list()) == {1, 5}  # the zero-weight budget is never drawn
    assert (d["samples"] == d["budget"]).all()


def test_selection_rules():
    deliberation = Deliberation.__new__(Deliberation)

    class P:  # the parts of a plan that select reads
        ids = [11]

        class env:
            root_seed = 0

        cfg = PolicyConfig(policy="best_of_n", keep_top=1)

    acts = [{"x": 1}, {"x": 2}, {"x": 2}, {"x": 3}]

    class A:
        def __init__(self, d):
            self.d = d

        def model_dump(self, mode=None):
            return self.d

    a = [A(x) for x in acts]
    assert deliberation.select(P, a, [], "majority") == 1
    assert deliberation.select(P, a, [0.1, 0.2, 0.3, 0.9], "best") == 3
    assert deliberation.select(P, a, [0.1, 0.2, 0.3, 0.9], "best_of_majority") in (1, 2)  # frequent first


def test_records_are_written_and_link_ledger_calls(tmp_path):
    res = sim.run([*BINARY, "deliberation=cascade", "env.ticks=2", f"run.dir={tmp_path}"])
    d = pl.read_parquet(tmp_path / "deliberation.parquet")
    led = pl.read_parquet(tmp_path / "ledger.parquet")
    assert len(d) == 80 and res.summary["llm"]["is_llm"] is False
    assert d["is_llm"].to_list() == [False] * 80  # oracle tiers are simulated: every record says so
    ids = set(led["call_id"].to_list())
    assert all(set(c) <= ids for c in d["call_ids"].to_list())
    spent = led.filter(pl.col("call_id").is_in(d["call_ids"].explode().implode()))["cost_nano"].sum()
    assert spent == d["nano_usd"].sum()


def test_a_policy_on_no_purpose_changes_nothing(tmp_path):
    a = sim.run([*BINARY, "env.ticks=2", f"run.dir={tmp_path / 'a'}"])
    b = sim.run([*BINARY, "env.ticks=2", "deliberation=cascade", "deliberation.purposes=[]", f"run.dir={tmp_path / 'b'}"])
    assert a.events.equals(b.events)
    cols = ["call_id", "agent", "purpose", "model", "tokens_in", "tokens_out", "cost_nano", "outcome"]
    assert a.ledger.select(cols).equals(b.ledger.select(cols))
    assert not (tmp_path / "b" / "deliberation.parquet").exists()


def test_replay_reproduces_a_deliberated_run(tmp_path):
    sim.run([*BINARY, "env.ticks=2", "deliberation=best_of_n", "deliberation.n=3", f"run.dir={tmp_path / 'a'}"])
    replay(tmp_path / "a", tmp_path / "b")
    a, b = (pl.read_parquet(tmp_path / x / "deliberation.parquet") for x in ("a", "b"))
    assert a.equals(b)


def test_bad_deliberation_config_is_one_line():
    with pytest.raises(ConfigError, match="deliberation"):
        compose([*BINARY, "deliberation=cascade", "deliberation.tiers=[small]"])
    with pytest.raises(ConfigError, match="deliberation.nope"):
        compose([*BINARY, "deliberation.nope=1"])


def test_a_tier_may_be_another_provider():
    # the small tier is the scripted policy served through its own endpoint; the large one an oracle tier
    d = records("deliberation=cascade", "deliberation.tiers=[rules,large]", "env.ticks=2",
                "deliberation.tier_llm={rules: {provider: scripted, model: scripted}}")
    assert set(map(tuple, d["tiers_tried"].to_list())) <= {("rules",), ("rules", "large")}
    assert (d.filter(d["tiers_tried"].list.len() == 1)["nano_usd"] == 0).all()  # the scripted tier is free


# The embedded model as the cascade's first tier. A tier_llm entry is merged onto the llm section
# (the oracle's: timeout_s 5, no retries), so the local tier sets its own timeout: SmolLM2 on a busy
# 2-core machine needs more than 5 s per reply, and every call timed out to the scripted fallback.
SMOL_TIER = ("deliberation.tier_llm={smol: {provider: local, model: smollm2-135m-instruct, timeout_s: 600, "
             "cache: {mode: record}, prices: {smollm2-135m-instruct: {input_per_mtok: '0.020', "
             "output_per_mtok: '0.080', shadow: true}}}}")


def _answered_by_smol(tmp_path, res, decisions: int) -> None:
    d = pl.read_parquet(tmp_path / "deliberation.parquet")
    led = pl.read_parquet(tmp_path / "ledger.parquet")
    assert len(d) == decisions and (d["tiers_tried"].list.first() == "smol").all()
    local = led.filter(pl.col("provider") == "local")
    assert local.height >= decisions and (local["tokens_out"] > 0).all()
    assert set(local["outcome"].to_list()) <= {"ok", "invalid", "truncated"}  # the model replied: no timeout
    assert res.summary["llm"]["is_llm"] is True  # a real model answered some calls


@pytest.mark.slow
def test_embedded_model_cascade_on_one_decision(tmp_path):
    """The short real-model cascade of `make test`: one worker, one tick, one decision."""
    res = sim.run([*BINARY, "env.n_workers=1", "env.ticks=1", "deliberation=cascade", "deliberation.tiers=[smol,large]",
                   SMOL_TIER, f"run.dir={tmp_path}"])
    _answered_by_smol(tmp_path, res, 1)


@pytest.mark.slow
@pytest.mark.skipif(not __import__("os").environ.get("AGORA_LONG_TESTS"), reason="long embedded-model test")
def test_embedded_model_small_tier_with_an_oracle_large_tier(tmp_path):
    """A real weak model as the cascade's first tier, end to end (SmolLM2-135M, in process)."""
    res = sim.run([*BINARY, "env.n_workers=3", "env.ticks=2", "deliberation=cascade",
                   "deliberation.tiers=[smol,large]", SMOL_TIER, f"run.dir={tmp_path}"])
    _answered_by_smol(tmp_path, res, 6)


def test_latent_budget_may_draw_a_tier_cap():
    d = records("deliberation=latent_budget", "deliberation.budget_kind=tier", "deliberation.tiers=[small,large]",
                "deliberation.budget_weights=[0.5,0.5]", "env.ticks=3")
    per_agent = d.group_by("agent").agg(pl.col("budget").n_unique().alias("k"), pl.col("budget").first(),
                                        pl.col("tiers_tried").list.len().max().alias("deepest"))
    assert (per_agent["k"] == 1).all() and set(per_agent["budget"].to_list()) == {1, 2}  # a trait, both drawn
    assert (per_agent["deepest"] <= per_agent["budget"]).all()  # never past its cap
    capped = d.filter(pl.col("budget") == 1)
    assert (capped["tiers_tried"].list.len() == 1).all() and (capped["nano_usd"] == C_S).all()
    # a cap of both tiers is the cascade: small first, large when the scorer rejects
    deep = d.filter(pl.col("budget") == 2)
    assert set(deep["nano_usd"].to_list()) == {C_S, C_S + C_L}
    only_small = records("deliberation=latent_budget", "deliberation.budget_kind=tier",
                         "deliberation.tiers=[small,large]", "deliberation.budget_weights=[1,0]", "env.ticks=2")
    assert (only_small["budget"] == 1).all() and (only_small["nano_usd"] == C_S).all()
    with pytest.raises(ConfigError, match="budget_weights"):
        compose([*BINARY, "deliberation=latent_budget", "deliberation.budget_kind=tier",
                 "deliberation.tiers=[small,large]", "deliberation.budget_weights=[1,1,1]"])
    with pytest.raises(ConfigError, match="tier cap"):
        compose([*BINARY, "deliberation=latent_budget", "deliberation.budget_kind=tier"])


def test_agents_and_phases_limit_who_deliberates():
    d = records("deliberation=best_of_n", "deliberation.n=3", "deliberation.agents=[w001,w002]", "env.ticks=2")
    assert set(d["agent"].to_list()) == {"w001", "w002"}
    assert records("deliberation=best_of_n", "deliberation.phases=[labor]", "env.ticks=1").height == 40
    none = records("deliberation=best_of_n", "deliberation.phases=[nope]", "env.ticks=2")
    assert none.height == 0


def test_agreement_scorer_accepts_a_unanimous_tier_at_its_closed_form_rate():
    # 3 draws of the small tier on a binary choice; threshold 0.9 accepts only when all 3 agree:
    # P = a^3 + (1 - a)^3 = 0.2575 at a = 0.55; otherwise the cascade escalates to the large tier
    d = records("deliberation=cascade", "deliberation.scorer.kind=agreement", "deliberation.scorer.samples=3",
                "deliberation.thresholds=[0.9]")
    assert set(round(x, 6) for s in d["scores"].to_list() for x in s[:1]) <= {round(2 / 3, 6), 1.0}
    accepted = int((d["tiers_tried"].list.len() == 1).sum())
    assert inside(accepted, len(d), 0.55 ** 3 + 0.45 ** 3), (accepted, len(d))
    assert (d.filter(d["tiers_tried"].list.len() == 1)["scores"].list.first() == 1.0).all()


def test_confidence_scorer_escalates_at_the_closed_form_rate():
    # every answer states a confidence (the action class gains the field); oracle tiers state a
    # confident one (> 50) with probability tpr when right and fpr when wrong, so the cascade's
    # default threshold 0.5 accepts the small tier at a_S t + (1 - a_S) f, as the oracle scorer does
    d = records("deliberation=cascade", "deliberation.scorer.kind=confidence", "deliberation.scorer.tpr=0.9",
                "deliberation.scorer.fpr=0.2")
    p_accept = 0.55 * 0.9 + 0.45 * 0.2
    first = d["scores"].list.first()
    assert ((first >= 0) & (first <= 1)).all() and first.n_unique() > 10  # stated confidences / 100
    escalated = d["tiers_tried"].list.len() == 2
    assert (escalated == (first <= 0.5)).all()
    assert inside(int(escalated.sum()), len(d), 1 - p_accept), (int(escalated.sum()), len(d))
    assert inside(int(d["correct"].sum()), len(d), 0.55 * 0.9 + (1 - p_accept) * 0.92)
    # the environment received its own action: no confidence in the chosen answer
    assert all(set(__import__("json").loads(c)) == {"hours"} for c in d["chosen"].to_list())


def test_confidence_scorer_scores_an_answer_without_a_confidence_one_half():
    # a scripted tier states no confidence: 0.5, not above the 0.5 threshold, so the cascade escalates
    d = records("deliberation=cascade", "deliberation.tiers=[rules,large]", "deliberation.scorer.kind=confidence",
                "env.ticks=2", "deliberation.tier_llm={rules: {provider: scripted, model: scripted}}")
    assert d["scores"].list.first().to_list() == [0.5] * len(d)
    assert (d["tiers_tried"].list.len() == 2).all()


def test_router_routes_both_ways_by_each_decisions_difficulty():
    # the environment declares each labour choice's difficulty (near-ties are hard); with a small tier
    # that loses accuracy on hard choices the router sends easy ones small and hard ones large
    slope = 0.5
    d = records("deliberation=router", f"llm.oracle.tiers.small.difficulty_slope={slope}",
                "deliberation.router_threshold=0.62")
    assert set(map(tuple, d["tiers_tried"].to_list())) == {("small",), ("large",)}
    for diff, tried in zip(d["difficulty"].to_list(), d["tiers_tried"].to_list()):
        assert 0 <= diff <= 1 and tried == (["small"] if 0.92 - (0.55 - slope * diff) < 0.62 else ["large"])
    # the slope has an effect: the small tier's answers are right at 0.55 - slope x difficulty
    small = d.filter(d["tiers_tried"].list.first() == "small")
    expected = sum(max(0.0, 0.55 - slope * x) for x in small["difficulty"].to_list())
    sd = sum(max(0.0, 0.55 - slope * x) * (1 - max(0.0, 0.55 - slope * x)) for x in small["difficulty"].to_list()) ** 0.5
    assert abs(int(small["correct"].sum()) - expected) < 3.29 * sd and expected < 0.55 * len(small) - 3.29 * sd


def test_router_routes_both_ways_in_traitors():
    # a faithful's vote is harder the rarer traitors are among the candidates (1 - traitors / candidates)
    d = pl.concat([_traitors_records(s, "deliberation=router", "llm.oracle.tiers.small.difficulty_slope=0.5",
                                     "deliberation.router_threshold=0.68") for s in range(1, 4)])
    assert set(map(tuple, d["tiers_tried"].to_list())) == {("small",), ("large",)}
    for diff, tried in zip(d["difficulty"].to_list(), d["tiers_tried"].to_list()):
        assert tried == (["small"] if 0.92 - (0.55 - 0.5 * diff) < 0.68 else ["large"])


def test_latent_budget_is_on_the_persona_and_recorded():
    cfg = to_dict(compose([*BINARY, "deliberation=latent_budget", "deliberation.budgets=[1,3,5]", "env.ticks=2",
                           "run.dir=null"]))
    s = Simulation(cfg, None)
    s.run(progress=False)
    d = pl.DataFrame(s.env.deliberations)
    drawn = dict(zip(d["agent"].to_list(), d["budget"].to_list()))
    for w in s.env.workers:
        assert w.persona.compute_budget == drawn[w.aid] and w.persona.compute_budget_kind == "samples"
        assert w.persona.traits()["compute_budget"] == drawn[w.aid]
        assert "budget" not in w.persona.prefix().lower()  # latent: never told to the model
    # every model-driven agent of the population draws its trait at the first deliberated decision (the
    # planner too: its budget applies if deliberation.purposes includes set_rates), recorded once
    ev = [e for e in s.events.rows if e.kind == "persona_trait"]
    assert {e.visibility for e in ev} == {"private:engine"}  # no agent sees it: the budget is latent
    got = {p["agent"]: p["value"] for p in (__import__("json").loads(e.payload) for e in ev)}
    assert len(ev) == len(s.env.workers) + 1 and got == {**drawn, "planner": s.env.planner_agent.persona.compute_budget}


TRAITORS = ["env=traitors", "llm=oracle", "llm.model=small", "env.discussion_passes=0", "env.belief_probe=false",
            "env.reactions=false", "env.conclave=false", "agent.reflection.enabled=false", "budget=unlimited",
            "run.checkpoint=false", "run.dir=null", "seed=1"]


def _traitors_records(seed: int, *overrides: str) -> pl.DataFrame:
    cfg = to_dict(compose([*[x for x in TRAITORS if not x.startswith("seed=")], f"seed={seed}", *overrides,
                           "agent.llm_by_role={traitor: {provider: scripted, model: scripted}}"]))
    s = Simulation(cfg, None)
    s.run(progress=False)
    return pl.DataFrame(s.env.deliberations)


def test_by_role_policy_and_scripted_agents_ignore_deliberation():
    cfg = to_dict(compose([*TRAITORS, "deliberation.by_role={faithful: {policy: best_of_n, n: 3, tiers: [small]}}",
                           "agent.llm_by_role={traitor: {provider: scripted, model: scripted}}"]))
    s = Simulation(cfg, None)
    s.run(progress=False)
    d = pl.DataFrame(s.env.deliberations)
    assert len(d) > 0 and set(d["role"]) == {"faithful"} and set(d["policy"]) == {"best_of_n"}
    assert (d["samples"] == 3).all()
    # the whole population deliberating: the scripted traitors still make no deliberation record
    cfg = to_dict(compose([*TRAITORS, "deliberation=best_of_n", "deliberation.n=3",
                           "agent.llm_by_role={traitor: {provider: scripted, model: scripted}}"]))
    s = Simulation(cfg, None)
    s.run(progress=False)
    assert set(pl.DataFrame(s.env.deliberations)["role"]) == {"faithful"}
