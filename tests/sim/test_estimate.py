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
