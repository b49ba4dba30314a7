"""`agora estimate`: a range over seeds, expected re-asks, local wall time; and the CLI papercuts of issue 15."""
from __future__ import annotations

import logging

import pytest

import sim
from sim.cli import USAGE, main
from sim.estimate import LOCAL_SPEED, expected_reasks
from sim.runner import estimate

SMALL = ["env=traitors", "env.n_players=6", "env.n_traitors=1", "llm=openai", "llm.model=gpt-4o-mini"]


def test_expected_reasks_is_the_geometric_sum():
    assert expected_reasks(0.0, 3) == 0
    assert expected_reasks(0.5, 1) == 0.5
    assert expected_reasks(0.5, 2) == pytest.approx(0.75)
    assert expected_reasks(0.34, 0) == 0


def test_estimate_projects_a_range_of_game_lengths_over_seeds():
    est = estimate(SMALL, seeds=6, reask_rate=0.0)
    ticks = [g["ticks"] for g in est["games"]]
    assert len(ticks) == 6 and len({g["seed"] for g in est["games"]}) == 6
    assert est["ticks_range"] == [min(ticks), max(ticks)] and min(ticks) <= est["ticks"] <= max(ticks)
    assert est["usd_range"][0] <= est["usd"] <= est["usd_range"][1]


def test_estimate_counts_expected_reasks():
    none = estimate(SMALL, seeds=1, reask_rate=0.0)
    some = estimate(SMALL, seeds=1, reask_rate=0.5)
    assert some["expected_reasks_per_call"] == 0.5  # agent.reasks=1
    assert some["calls"] == pytest.approx(none["calls"] * 1.5)
    assert some["tokens_in"] > none["tokens_in"] * 1.5  # a re-ask carries the prompt and the bad reply
    assert some["usd"] > none["usd"]


def test_a_local_estimate_has_a_wall_time_from_tokens_per_second():
    est = estimate(["env=taxation", "llm=local", "env.planner=llm", "env.ticks=2"], seeds=1)
    assert est["speed"] == LOCAL_SPEED and est["reask_rate"] == 0.34
    g = est["games"][0]
    want = g["tokens_in"] / LOCAL_SPEED["prompt_tps"] + g["tokens_out"] / LOCAL_SPEED["grammar_tps"]
    assert est["wall_s"] == pytest.approx(want)
    assert "wall_s" not in estimate(SMALL, seeds=1)["games"][0]  # a hosted model: no wall time from here


def test_estimate_cli_prints_median_and_range(capsys):
    assert main(["estimate", "--seeds", "3", "--reask-rate=0.1", *SMALL]) == 0
    out = capsys.readouterr().out
    assert "median [min, max] over 3 seeds" in out and "ticks=" in out and "re-asks: 10% invalid" in out


def test_bad_estimate_flag_is_one_error_line(capsys):
    assert main(["estimate", "--seeds", "many", *SMALL]) == 2
    assert capsys.readouterr().err.startswith("error: --seeds='many'")


@pytest.mark.parametrize("cmd", ["run", "estimate"])
def test_help_is_not_a_hydra_override(cmd, capsys):
    assert main([cmd, "--help"]) == 0
    assert f"usage: agora {cmd}" in capsys.readouterr().out


def test_dashboard_address_option_is_documented():
    assert "--address" in USAGE
    from dashboards.launch import streamlit_command

    assert "--server.address" in streamlit_command(["--address", "127.0.0.1"]).argv


def test_mesa_step_lines_stay_out_of_the_logs(caplog):
    """A sweep's log (Hydra sets the root logger to INFO) had one Mesa INFO line per step."""
    with caplog.at_level(logging.INFO):
        sim.run(["env=market", "llm=scripted", "env.n_traders=4", "env.ticks=3", "run.dir=null", "run.progress=off"])
    assert not [r for r in caplog.records if r.name.startswith("MESA")]


ORACLE = ["env=taxation", "env.hours_step=100", "env.n_workers=10", "env.ticks=2", "llm=oracle", "llm.model=small"]


def test_estimate_reports_cost_quantiles_over_sampled_output_tokens():
    spread = estimate([*ORACLE, "llm.oracle.tiers.small.output_median=5", "llm.oracle.tiers.small.output_sigma=1.0"],
                      seeds=2, draws=400)
    q = spread["usd_quantiles"]
    assert q["p10"] < q["p50"] < q["p90"]  # log-normal output tokens: a range, not a point
    # the sampled mean is the closed form: prompt at the input price, E[min(output, cap)] at the output price
    assert spread["usd_mean_sampled"] == pytest.approx(spread["usd_expected"], rel=0.01)
    exact = estimate(ORACLE, seeds=2, draws=50)  # sigma 0: 20 calls of 500 x 150 + 10 x 2500 nano-USD
    assert exact["usd_quantiles"]["p10"] == exact["usd_quantiles"]["p90"] == pytest.approx(20 * 1e-4)


def test_estimate_warns_of_a_price_reversal():
    # small is listed cheaper than medium on both prices but writes 20 output tokens to medium's 10:
    # 500 x 1.4 + 20 x 24 = 1180 USD per G-token-call against 500 x 1.5 + 10 x 25 = 1000: 1.18x
    est = estimate([*ORACLE, "llm.prices.small.input_per_mtok=1.4", "llm.prices.small.output_per_mtok=24",
                    "llm.oracle.tiers.small.output_median=20"], seeds=1, draws=10)
    assert len(est["warnings"]) == 1
    w = est["warnings"][0]
    assert w.startswith("price reversal: tier 'small' is listed cheaper than 'medium'") and "1.18x" in w
    assert estimate(ORACLE, seeds=1, draws=10)["warnings"] == []  # the shipped tiers: no reversal


def test_estimate_cli_prints_quantiles_and_warnings(capsys):
    assert main(["estimate", "--seeds", "1", "--draws=20", "--output-sigma", "0.5", *ORACLE,
                 "llm.prices.small.input_per_mtok=1.4", "llm.prices.small.output_per_mtok=24",
                 "llm.oracle.tiers.small.output_median=20"]) == 0
    out = capsys.readouterr().out
    assert "USD per game P10=" in out and "warning: price reversal" in out
    assert main(["estimate", "--draws", "0", *ORACLE]) == 2
