"""Oracle tiers: known accuracy and cost, checked against their closed forms through the real engine."""
from __future__ import annotations

import asyncio

import polars as pl
import pytest
from pydantic import create_model
from typing import Literal

import sim
from environments import registry
from environments.traitors.baselines import p_faithful_win_random
from environments.traitors.oracle_baseline import p_banish_traitor, p_faithful_win_oracle, win_probability
from sim.config import ConfigError, compose, to_dict
from sim.engine import Truth
from sim.inference.providers.oracle import OracleProvider, Tier
from sim.inference.types import CallMeta, ChatRequest
from sim.runner import _run_memory
from sim.stats import wilson_interval

Pick = create_model("Pick", choice=(Literal["a", "b", "c"], ...))


def _ask(provider, seed: int, truth, model="t", max_tokens=64):
    req = ChatRequest(messages=(("user", "x" * 40),), model=model, max_tokens=max_tokens, seed=seed,
                      meta=CallMeta(call_id=seed), truth=truth, scripted=lambda: Pick(choice="c"))
    return asyncio.run(provider.complete(req))


def test_tier_answers_right_with_its_accuracy_and_wrong_uniformly():
    p = OracleProvider({"t": Tier(accuracy=0.7, input_tokens=100, output_median=12)})
    truth = Truth((Pick(choice="a"),), (Pick(choice="b"), Pick(choice="c")))
    answers = [Pick.model_validate_json(_ask(p, s, truth).text).choice for s in range(3000)]
    lo, hi = wilson_interval(answers.count("a"), len(answers), z=3.29)
    assert lo <= 0.7 <= hi
    b, c = answers.count("b"), answers.count("c")
    assert abs(b - c) < 4 * (b + c) ** 0.5  # wrong answers uniform over the valid wrong ones
    r = _ask(p, 1, truth)
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (100, 12)
    assert _ask(p, 7, truth).text == _ask(p, 7, truth).text  # a pure function of the call's seed


def test_difficulty_lowers_accuracy_and_no_truth_gives_the_scripted_answer():
    p = OracleProvider({"t": Tier(accuracy=0.9, difficulty_slope=0.9)})
    hard = Truth((Pick(choice="a"),), (Pick(choice="b"),), difficulty=1.0)
    assert all(Pick.model_validate_json(_ask(p, s, hard).text).choice == "b" for s in range(50))
    assert Pick.model_validate_json(_ask(p, 3, None).text).choice == "c"


def test_output_tokens_are_lognormal_and_capped():
    p = OracleProvider({"t": Tier(accuracy=1.0, output_median=50, output_sigma=1.0)})
    outs = [_ask(p, s, None, max_tokens=10_000).usage.completion_tokens for s in range(2000)]
    assert 40 <= sorted(outs)[1000] <= 60 and max(outs) > 5 * 50  # median ~50, a heavy right tail
    capped = _ask(p, 5, None, max_tokens=3)
    assert capped.usage.completion_tokens <= 3


def test_oracle_config_names_a_tier():
    with pytest.raises(ConfigError, match="llm.model='nope'.*not an oracle tier|not an oracle tier"):
        compose(["llm=oracle", "llm.model=nope"])


@pytest.mark.parametrize("name", list(registry.ENVIRONMENTS))
def test_llm_oracle_runs_every_environment_and_says_not_an_llm(name, tmp_path):
    cls = registry.env_class(name)
    res = sim.run([f"env={name}", "llm=oracle", "llm.model=small", "seed=3", *cls.quick, f"run.dir={tmp_path}"])
    llm = res.summary["llm"]
    assert res.summary["status"] == "completed"
    assert llm["is_llm"] is False and "simulated tiers" in llm["note"]
    led = res.ledger.filter(pl.col("outcome") == "ok")
    assert set(led["provider"].unique()) <= {"oracle", "scripted"}


BENCH = ["env.discussion_passes=0", "env.belief_probe=false", "env.reactions=false", "env.conclave=false",
         "env.traitor_policy=bloc", "agent.reflection.enabled=false", "run.checkpoint=false", "budget=unlimited",
         "run.dir=null", "agent.llm_by_role={traitor: {provider: scripted, model: scripted}}"]


def test_exact_recursion_reduces_to_random_play_and_banishes_more_with_accuracy():
    # b = t / (f + t) would give the random baseline; the oracle's b rises with q
    assert p_banish_traitor(7, 3, 0.3) < p_banish_traitor(7, 3, 0.6) < p_banish_traitor(7, 3, 0.9)
    assert p_faithful_win_oracle(10, 3, 0.0) == 0.0
    assert p_faithful_win_oracle(10, 3, 0.8) < p_faithful_win_oracle(10, 3, 1.0) < 1.0  # split votes still lose
    for n, t in ((10, 3), (7, 2), (12, 4)):
        assert win_probability(n - t, t, lambda f, t: t / (f + t)) == pytest.approx(float(p_faithful_win_random(n, t)))
    assert 0 < float(p_faithful_win_random(10, 3)) < p_faithful_win_oracle(10, 3, 0.8)


def test_traitors_with_oracle_faithful_match_the_exact_win_probability():
    q = 0.8
    base = to_dict(compose(["llm=oracle", "llm.model=large", f"llm.oracle.tiers.large.accuracy={q}", *BENCH]))
    games = 160
    wins = sum(_run_memory({**base, "seed": s}).summary["outcome"]["winner"] == "faithful" for s in range(games))
    lo, hi = wilson_interval(wins, games, z=2.58)  # 99%: one flaky seed set in a hundred at most
    assert lo <= p_faithful_win_oracle(10, 3, q) <= hi, (wins, games)


def test_run_line_and_report_call_oracle_tiers_simulated_not_scripted(tmp_path, capsys):
    from sim.cli import main

    ov = ["env=taxation", "llm=oracle", "llm.model=small", "env.n_workers=2", "env.ticks=1", "env.hours_step=100",
          "agent.reflection.enabled=false", f"run.dir={tmp_path}"]
    assert main(["run", *ov]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("llm: "))
    assert "oracle/small [simulated tiers: not an LLM]" in line
    assert main(["report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "simulated tiers: not an LLM" in out and "scripted: not an LLM" not in out


Sure = create_model("Sure", __base__=Pick, confidence=(int, 50))


def _ask_sure(provider, seed: int, truth):
    from sim.inference.types import json_schema

    req = ChatRequest(messages=(("user", "x" * 40),), model="t", max_tokens=64, seed=seed, meta=CallMeta(call_id=seed),
                      truth=truth, scripted=lambda: Pick(choice="c"), schema=json_schema(Sure))
    return Sure.model_validate_json(asyncio.run(provider.complete(req)).text)


def test_a_requested_confidence_is_stated_at_the_scorer_rates():
    p = OracleProvider({"t": Tier(accuracy=0.6, input_tokens=100, output_median=12)})
    base = Truth((Pick(choice="a"),), (Pick(choice="b"), Pick(choice="c")))
    truth = Truth(base.right, base.wrong, confidence=(0.9, 0.2))
    answers = [_ask_sure(p, s, truth) for s in range(3000)]
    # asking for a confidence changes neither the answer nor anything else drawn from the call's seed
    assert [a.choice for a in answers[:200]] == [Pick.model_validate_json(_ask(p, s, base).text).choice
                                                 for s in range(200)]
    right = [a.confidence > 50 for a in answers if a.choice == "a"]
    wrong = [a.confidence > 50 for a in answers if a.choice != "a"]
    for hits, rate in ((right, 0.9), (wrong, 0.2)):
        lo, hi = wilson_interval(sum(hits), len(hits), z=3.29)
        assert lo <= rate <= hi, (sum(hits), len(hits), rate)
    assert all(0 <= a.confidence <= 100 for a in answers)
    assert {_ask_sure(p, s, base).confidence for s in range(20)} == {60}  # no rates: calibrated (its accuracy)
    assert _ask_sure(p, 3, None).confidence == 100  # nothing to judge (the scripted answer)


@pytest.mark.parametrize("name", list(registry.ENVIRONMENTS))
def test_every_environment_declares_stakes_and_difficulties(name):
    # the VOC gate reads each decision's stake and the router its difficulty: the environment declares both
    from sim.runner import Simulation

    cls = registry.env_class(name)
    assert cls.stakes and set(cls.deliberated_purposes(cls)) <= set(cls.stakes)
    cfg = to_dict(compose([f"env={name}", "llm=oracle", "llm.model=small", "seed=3", *cls.quick,
                           "deliberation=voc_gate", "budget=unlimited", "run.dir=null"]))
    s = Simulation(cfg, None)
    checked = []
    assess = s.env.assess

    def both_ways(request):  # ``assess`` is ``ground_truth`` and ``stake`` read at the same moment
        got = assess(request)
        checked.append(got == (s.env.ground_truth(request), s.env.stake(request)))
        return got

    s.env.assess = both_ways
    s.run(progress=False)
    assert checked and all(checked)
    d = pl.DataFrame(s.env.deliberations)
    assert d.height > 0 and (d["stake"] >= 0).all() and d["stake"].is_finite().all()
    diff = d["difficulty"].drop_nulls()
    assert diff.len() > 0 and ((diff >= 0) & (diff <= 1)).all()
    if name != "traitors":  # per-decision in the economies; traitors' votes share a round's difficulty
        assert d["stake"].n_unique() > 1 and diff.n_unique() > 1
