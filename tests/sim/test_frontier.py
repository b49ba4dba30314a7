"""Cost-of-pass intervals, the Pareto hull and the `agora frontier` grid."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from sim.frontier import (cells, cost_of_pass, marginal_value, paired_difference, pareto, run_frontier)
from sim.frontier_cli import main as frontier_main

# two-tier cascade of the reference: a_S 0.55, c_S 1e-4, a_L 0.92, c_L 1e-2, scorer t 0.9, f 0.2
A_S, C_S, A_L, C_L, TPR, FPR = 0.55, 1e-4, 0.92, 1e-2, 0.9, 0.2
P_ACCEPT = A_S * TPR + (1 - A_S) * FPR
ACCURACY = A_S * TPR + (1 - P_ACCEPT) * A_L
COST = C_S + (1 - P_ACCEPT) * C_L


def cascade_games(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n decisions drawn from the cascade's own model: spend and success per decision."""
    right_s = rng.random(n) < A_S
    accept = rng.random(n) < np.where(right_s, TPR, FPR)
    right_l = rng.random(n) < A_L
    return C_S + (~accept) * C_L, np.where(accept, right_s, right_l).astype(float)


def test_closed_form_of_the_reference_example():
    assert (P_ACCEPT, ACCURACY, COST) == (pytest.approx(0.585), pytest.approx(0.877, abs=5e-4),
                                         pytest.approx(4.25e-3, rel=1e-3))
    assert COST / ACCURACY == pytest.approx(4.85e-3, rel=2e-3)
    assert C_L / A_L == pytest.approx(1.09e-2, abs=5e-5)  # the reference rounds to 3 figures


@pytest.mark.parametrize("method, reps", [("fieller", 400), ("bootstrap", 200)])
def test_cost_of_pass_intervals_cover_the_closed_form(method, reps):
    rng = np.random.default_rng(20260)
    truth = COST / ACCURACY
    covered = 0
    for k in range(reps):
        s, w = cascade_games(200, rng)
        r = cost_of_pass(s, w, method, boot=1000, seed=k)
        assert 0 <= r.lo <= r.value <= r.hi
        covered += r.lo <= truth <= r.hi
    assert covered / reps >= 0.93, covered / reps


def test_intervals_never_leave_their_range():
    r = cost_of_pass([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])  # nothing succeeded
    assert r.value == math.inf and r.hi == math.inf and r.lo >= 0
    r = cost_of_pass([0.5, 0.1, 0.0, 0.2], [0.0, 1.0, 0.0, 0.0])  # barely any success: unbounded above
    assert r.lo >= 0 and r.hi == math.inf
    b = cost_of_pass([0.5, 0.1, 0.0, 0.2], [0.0, 1.0, 0.0, 0.0], "bootstrap")
    assert 0 <= b.lo <= b.hi
    exact = cost_of_pass([2.0] * 10, [1.0] * 10)
    assert (exact.value, exact.lo, exact.hi) == (2.0, 2.0, 2.0)


def test_paired_difference_uses_common_games():
    rng = np.random.default_rng(1)
    s, w = cascade_games(300, rng)
    d = paired_difference(s, w, s * 2, w)  # the same games at twice the price: CoP doubles
    assert d.value == pytest.approx(-cost_of_pass(s, w).value)
    assert d.hi < 0


def test_pareto_hull_and_marginal_value():
    assert pareto([1, 2, 3, 2.5], [0.5, 0.7, 0.8, 0.6]) == [True, True, True, False]
    assert marginal_value([1.0, 3.0], [0.5, 0.9]) == [pytest.approx(0.2)]


def test_grid_cells_and_drop():
    names = [c.name for c in cells(["small", "medium", "large"], ["single", "cascade"], [None])]
    assert names == ["single:small:unlimited", "single:medium:unlimited", "single:large:unlimited",
                     "cascade:medium:unlimited", "cascade:large:unlimited"]
    dropped = [c.name for c in cells(["small", "medium", "large"], ["single", "cascade"], [None], drop=["small"])]
    assert "single:small:unlimited" not in dropped and "cascade:medium:unlimited" not in dropped


BASE = ["env=taxation", "env.hours_step=100", "env.n_workers=10", "env.ticks=3", "llm=oracle"]


def test_a_frontier_cell_reproduces_exactly_and_cascade_is_cheaper_than_large():
    a, _ = run_frontier(BASE, ["small", "large"], ["single", "cascade"], [None], range(3))
    b, _ = run_frontier(BASE, ["small", "large"], ["single", "cascade"], [None], range(3))
    assert a.equals(b)
    by = {r["cell"]: r for r in a.to_dicts()}
    assert by["cascade:large:unlimited"]["spend_mean"] < by["single:large:unlimited"]["spend_mean"]
    assert a["on_hull"].dtype == pl.Boolean


FRONTIER_COLUMNS = {"cell", "policy", "tier", "budget_usd", "games", "spend_mean", "spend_lo", "spend_hi",
                    "outcome_mean", "outcome_lo", "outcome_hi", "cop", "cop_lo", "cop_hi", "interval",
                    "mv", "mv_lo", "mv_hi", "mv_from", "mv_note", "tier_kind", "is_llm", "note", "on_hull"}


def test_frontier_command_writes_its_files(tmp_path, capsys):
    rc = frontier_main([*BASE, "frontier.tiers=[small,large]", "frontier.policies=[single]", "frontier.seeds=2",
                        "--out", str(tmp_path), "--drop", "large"])
    assert rc == 0
    df = pl.read_parquet(tmp_path / "frontier.parquet")
    assert df["cell"].to_list() == ["single:small:unlimited"]
    assert set(df.columns) == FRONTIER_COLUMNS
    r = df.row(0, named=True)
    assert r["spend_lo"] <= r["spend_mean"] <= r["spend_hi"] and r["outcome_lo"] <= r["outcome_mean"] <= r["outcome_hi"]
    assert r["cop_lo"] <= r["cop"] <= r["cop_hi"] and r["on_hull"] is True
    html = (tmp_path / "frontier.html").read_text()
    assert '"area"' in html and "outcome_lo" in html  # the hull's interval band
    assert (tmp_path / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "shapley.parquet").exists()  # only with --shapley
    # oracle tiers are labelled as simulated in every output: the parquet, the HTML, the PNG's title, stdout
    assert (r["tier_kind"], r["is_llm"], r["note"]) == ("simulated", False, "simulated tier: not an LLM")
    assert "simulated tiers: not an LLM (oracle tiers small" in html
    out = capsys.readouterr().out
    assert "simulated tiers: not an LLM" in out and "tier_kind" in out and "simulated" in out


def test_the_plot_title_says_simulated_tiers_and_only_when_they_are():
    from sim.frontier import frontier_chart, frontier_label

    df, _ = run_frontier(BASE, ["small", "large"], ["single"], [None], range(1))
    title = frontier_chart(df).to_dict()["title"]  # the PNG is rendered from this spec
    assert title["text"] == "Inference production frontier"
    assert title["subtitle"] == ["simulated tiers: not an LLM (oracle tiers small, large: known accuracy and cost)"]
    assert frontier_label(df.with_columns(pl.lit("llm").alias("tier_kind"))) is None  # a model's cells: no label
    assert frontier_label(df.drop("tier_kind")) is None  # an older file: nothing claimed either way
    assert frontier_chart(df.drop("tier_kind")).to_dict()["title"] == "Inference production frontier"


def test_tier_labels_name_simulated_mixed_scripted_and_model_cells():
    from sim.frontier import SIMULATED, Cell, cell_label, tier_label

    oracle = {"llm": {"provider": "oracle"}}
    assert tier_label(oracle, ["small"], False) == {"tier_kind": "simulated", "is_llm": False, "note": SIMULATED}
    assert tier_label({"llm": {"provider": "scripted"}}, ["scripted"], False)["note"] == "scripted: not an LLM"
    assert tier_label({"llm": {"provider": "local"}}, ["smol"], True) == {"tier_kind": "llm", "is_llm": True,
                                                                            "note": None}
    assert "not an LLM" in tier_label({"llm": {"provider": "local"}}, ["smol"], False)["note"]  # all fell back
    # the embedded model as a cascade's small tier, an oracle tier as its large one: mixed, and said which is which
    smol = "deliberation.tier_llm={smol: {provider: local, model: smollm2-135m-instruct}}"
    lab = cell_label([*BASE, smol], Cell("cascade", "large", None), ["smol", "large"], (), 5, [True])
    assert lab["tier_kind"] == "mixed" and lab["is_llm"] is True
    assert lab["note"] == "mixed: large simulated tier: not an LLM; smol (local) not simulated"


SHAP_TAX = ["env=taxation", "env.hours_step=100", "env.n_workers=3", "env.ticks=2", "llm=oracle",
            "agent.reflection.enabled=false", "frontier.tiers=[small]", "frontier.policies=[single,best_of_n]",
            "frontier.n=3", "frontier.seeds=2"]


@pytest.mark.parametrize("by, players", [("agents", ["w001", "w002", "w003"]), ("phases", ["labor"])])
def test_frontier_shapley_splits_each_deliberating_cell_among_its_players(tmp_path, capsys, by, players):
    assert frontier_main([*SHAP_TAX, "--shapley", by, "--out", str(tmp_path)]) == 0
    shap = pl.read_parquet(tmp_path / "shapley.parquet")
    assert shap["cell"].unique().to_list() == ["best_of_n:small:unlimited"]  # single is the baseline: no row
    assert shap["player"].to_list() == players and set(shap["method"]) == {"exact"}
    df = {r["cell"]: r for r in pl.read_parquet(tmp_path / "frontier.parquet").to_dicts()}
    extra = df["best_of_n:small:unlimited"]["spend_mean"] - df["single:small:unlimited"]["spend_mean"]
    # efficiency: the players' values sum to the cell's extra spend over the single-call baseline
    assert shap["phi_spend"].sum() == pytest.approx(extra) and extra == pytest.approx(3 * 2 * 2 * 1e-4)
    gain = df["best_of_n:small:unlimited"]["outcome_mean"] - df["single:small:unlimited"]["outcome_mean"]
    assert shap["phi_outcome"].sum() == pytest.approx(gain)
    assert "phi_spend" in capsys.readouterr().out


def test_frontier_shapley_takes_named_players(tmp_path, capsys):
    argv = [*SHAP_TAX, "--shapley", "agents", "--players", "w002,nobody", "--shapley-seeds", "1",
            "--out", str(tmp_path)]
    assert frontier_main(argv) == 0
    shap = {r["player"]: r for r in pl.read_parquet(tmp_path / "shapley.parquet").to_dicts()}
    assert set(shap) == {"w002", "nobody"} and shap["nobody"]["phi_spend"] == 0  # a null player
    assert shap["w002"]["phi_spend"] == pytest.approx(2 * 2 * 1e-4) and shap["w002"]["games_per_coalition"] == 1


@pytest.mark.parametrize("argv, says", [(["--players", "a"], "go with --shapley"),
                                        (["--shapley", "roles"], "argument --shapley: invalid choice"),
                                        (["--shapley", "agents", "--shapley-seeds", "0"], "--shapley-seeds 0"),
                                        (["--interval", "nope"], "argument --interval")])
def test_frontier_bad_option_is_one_line(argv, says, capsys):
    assert frontier_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and len(err.strip().splitlines()) == 1


def test_frontier_bad_input_is_one_line():
    out = subprocess.run([sys.executable, "-m", "sim.cli", "frontier", "frontier.nope=1"], capture_output=True,
                         text=True)
    assert out.returncode == 2 and out.stderr.startswith("error: unknown key 'frontier.nope'")
    assert len(out.stderr.strip().splitlines()) == 1
    ok = subprocess.run([sys.executable, "-m", "sim.cli", "frontier", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "frontier.tiers" in ok.stdout


def test_frontier_dashboard_page_draws_a_written_frontier(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from sim.frontier import write

    df, _ = run_frontier(BASE, ["small", "large"], ["single"], [None], range(2))
    write(df, tmp_path / "grid")
    pl.DataFrame({"cell": ["best_of_n:small:unlimited"], "player": ["w001"], "phi_spend": [4e-4]}).write_parquet(
        tmp_path / "grid" / "shapley.parquet")
    monkeypatch.setenv("AGORA_RUNS", str(tmp_path))
    app = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=60)
    at.run()
    at.switch_page("pages/frontier.py")
    at.run()
    assert not at.exception, at.exception
    assert at.get("vega_lite_chart") and at.dataframe
    assert "Shapley attribution of spend" in [h.value for h in at.subheader]
    assert any("not an LLM" in c.value for c in at.caption)
    # this file's own label, read from its tier_kind column, and what an empty mv means
    assert any(c.value.startswith("This frontier: simulated tiers: not an LLM (oracle tiers small, large")
               for c in at.caption)
    assert any("no change in any game" in c.value for c in at.caption)


def test_marginal_value_between_adjacent_budgets_with_a_paired_interval():
    from sim.frontier import Cell, summarise, table

    games = {"single:large:$1": {"spend": [1.0] * 4, "success": [0.0, 0.0, 1.0, 0.0]},
             "single:large:unlimited": {"spend": [3.0] * 4, "success": [1.0, 0.0, 1.0, 1.0]},
             "single:small:$1": {"spend": [0.5] * 4, "success": [0.0] * 4},
             "single:small:unlimited": {"spend": [0.5] * 4, "success": [1.0] * 4}}
    rows = [summarise(Cell("single", t, b), **games[Cell("single", t, b).name])
            for t in ("large", "small") for b in (None, 1.0)]  # unlimited listed first: order is by budget
    df = {r["cell"]: r for r in table(rows, games).to_dicts()}
    up = df["single:large:unlimited"]
    assert up["mv_from"] == "single:large:$1" and up["mv"] == pytest.approx(0.5 / 2)
    d = np.array([1.0, 0, 0, 1])  # paired outcome gains; the extra spend is 2 in every game
    half = 1.959963984540054 * d.std(ddof=1) / 2 / 2  # z * se(mean gain) / extra spend
    assert (up["mv_lo"], up["mv_hi"]) == pytest.approx((0.25 - half, 0.25 + half))
    assert df["single:large:$1"]["mv"] is None and df["single:large:$1"]["mv_from"] is None  # smallest budget
    assert df["single:large:$1"]["mv_note"] == "smallest budget" and up["mv_note"] is None
    assert df["single:small:unlimited"]["mv"] is None  # no extra spend: no marginal value
    assert df["single:small:unlimited"]["mv_note"] == "no extra spend"


def test_extra_spend_that_changed_no_game_has_no_interval_not_a_zero_width_one():
    from sim.frontier import Cell, marginal_ratio, summarise, table

    r = marginal_ratio([0.0] * 5, [0.5, 0.4, 0.6, 0.5, 0.5])  # 0.5 USD more per game, not one game changed
    assert r.value == 0 and math.isnan(r.lo) and math.isnan(r.hi)  # not [0, 0]: no spread to measure
    games = {"single:large:$1": {"spend": [1.0, 0.9, 1.1, 1.0], "success": [0.0, 1.0, 1.0, 0.0]},
             "single:large:unlimited": {"spend": [1.5, 1.3, 1.7, 1.5], "success": [0.0, 1.0, 1.0, 0.0]}}
    rows = [summarise(Cell("single", "large", b), **games[Cell("single", "large", b).name]) for b in (1.0, None)]
    up = table(rows, games).filter(pl.col("cell") == "single:large:unlimited").row(0, named=True)
    assert (up["mv"], up["mv_lo"], up["mv_hi"]) == (None, None, None)
    assert up["mv_from"] == "single:large:$1" and up["mv_note"] == "no change in any game"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2-cell frontier run as Hydra sweeps through the joblib launcher, and the same grid in process."""
    from sim.frontier import write

    out = tmp_path_factory.mktemp("runs") / "grid"
    grid = (BASE, ["small", "large"], ["single", "cascade"], [None], range(2))
    a, _ = run_frontier(*grid)
    b, games = run_frontier(*grid, sweep=["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], out=out)
    write(b, out, games=games)
    return out, a, b


def test_frontier_runs_through_a_hydra_launcher_with_the_same_numbers(swept):
    from sim.frontier import cell_of_run

    out, a, b = swept
    assert a.equals(b)  # same seeds, same games: the launcher changes where games run, not their numbers
    run = out / "runs" / "single-large-unlimited" / "1"
    assert (run / "ledger.parquet").exists()
    assert cell_of_run(run) == (out.resolve(), "single:large:unlimited")
    assert cell_of_run(run, root=run.parent) is None  # never reads above the runs root
    assert cell_of_run(out / "elsewhere") is None


def test_spend_page_links_a_frontier_run_to_its_cell(swept, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from dashboards import data

    out, _, _ = swept
    monkeypatch.setenv("AGORA_RUNS", str(out.parent))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py"), default_timeout=60)
    at.session_state[data.SELECTION_KEY] = ["grid/runs/single-small-unlimited/0"]
    at.run()
    at.switch_page("pages/spend.py").run()
    assert not at.exception, at.exception
    assert any("Frontier cell **single:small:unlimited**" in m.value for m in at.markdown)
    assert at.session_state["frontier_cell"] == "single:small:unlimited"
    at.switch_page("pages/frontier.py").run()
    assert not at.exception, at.exception
    assert "Cell single:small:unlimited" in [h.value for h in at.subheader]


def test_replaying_a_frontier_cell_reproduces_its_numbers_exactly(swept, tmp_path):
    import json

    from environments import registry
    from sim.frontier import Cell, summarise
    from sim.runner import replay

    out, _, b = swept
    cell = "cascade:large:unlimited"  # a deliberating cell: two tiers, scorer draws, escalations
    row = b.filter(pl.col("cell") == cell).row(0, named=True)
    recorded = json.loads((out / "frontier_games.json").read_text())[cell]
    cls = registry.env_class("taxation")
    spend, success = [], []
    for k, rel in enumerate(recorded["runs"]):
        res = replay(out / rel, tmp_path / str(k))
        spend.append(float(res.summary["llm"]["usd"]))
        success.append(float(cls.success_value(res.summary["outcome"])))
    assert spend == recorded["spend"] and success == recorded["success"] and max(spend) > 0
    again = summarise(Cell("cascade", "large", None), spend, success)
    assert again == {k: row[k] for k in again}  # every number of the cell's row, bit for bit


# the market's success is realised surplus, which needs induced values (the asset setup has none)
SUCCESS_SETUP = {"market": ["env.setup=induced", "env.trader_policy=zic"]}


@pytest.mark.parametrize("name", ["traitors", "taxation", "market", "macro"])
def test_every_environment_has_a_cost_of_pass_with_an_interval(name):
    from environments import registry

    assert name in registry.ENVIRONMENTS
    cls = registry.env_class(name)
    base = [f"env={name}", "llm=oracle", "agent.reflection.enabled=false", *cls.quick, *SUCCESS_SETUP.get(name, [])]
    df, games = run_frontier(base, ["small"], ["single"], [None], range(3))
    r = df.row(0, named=True)
    assert r["games"] == 3, f"{name}: Environment.success_value gives no success measure"
    assert r["spend_mean"] > 0 and math.isfinite(r["outcome_mean"])
    assert r["cop_lo"] <= r["cop"] <= r["cop_hi"] or (r["outcome_mean"] <= 0 and r["cop"] == math.inf)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_frontier_benchmark_prints_speed_then_the_table_last():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "frontier.py"), "--games", "2"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert "cells/s" in lines[0] and "games/s" in lines[0] and "16 cells x 2 games" in lines[0]
    assert "not an LLM" in lines[0]
    header, rows = lines[1], lines[2:]
    for col in ("USD/game", "win rate", "exact", "USD/win", "mv", "hull"):
        assert col in header
    # 3 tiers x 3 policies x 2 budgets, less the cascade on the smallest tier (nothing below it to start from)
    assert len(rows) == 16 and rows[-1].startswith("best_of_n:large:$0.1")
    assert "0.7197" in next(r for r in rows if r.startswith("single:large:unlimited"))  # the exact value


def test_traitors_baselines_with_oracle_faithful_prints_rate_interval_and_exact():
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "traitors_baselines.py"), "--faithful", "oracle",
                          "--accuracy", "0.8", "--traitors-policy", "bloc", "--games", "20", "--workers", "1",
                          "--reference", "0"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "exact P(faithful win | faithful oracle of accuracy q) = 0.4727904" in out.stdout
    assert "simulated faithful win rate = " in out.stdout and "95% Wilson [" in out.stdout


def test_cost_of_pass_of_the_success_gained_over_a_baseline():
    from sim.frontier import gain_columns

    g = gain_columns([1.0] * 4, [3.0, 4.0, 5.0, 6.0], [1.0, 1.0, 2.0, 2.0])  # gains 2, 3, 3, 4 on the same seeds
    assert g["gain_mean"] == pytest.approx(3.0) and g["cop_gain"] == pytest.approx(1 / 3)
    assert g["gain_lo"] < 3 < g["gain_hi"] and g["cop_gain_lo"] < 1 / 3 < g["cop_gain_hi"]
    loss = gain_columns([1.0] * 4, [1.0, 1.0, 2.0, 2.0], [3.0, 4.0, 5.0, 6.0])  # worse than the baseline
    assert (loss["cop_gain"], loss["cop_gain_lo"], loss["cop_gain_hi"]) == (math.inf, math.inf, math.inf)
    assert cost_of_pass([1.0] * 4, [-1.0, -2.0, -1.0, -2.0], "bootstrap").lo == math.inf


def test_frontier_baseline_gives_the_gain_over_scripted_play(tmp_path, capsys):
    from sim.frontier import run_games

    argv = [*BASE, "frontier.tiers=[large]", "frontier.policies=[single]", "frontier.seeds=3",
            "frontier.baseline=[llm=scripted]", "--out", str(tmp_path)]
    assert frontier_main(argv) == 0
    r = pl.read_parquet(tmp_path / "frontier.parquet").row(0, named=True)
    scripted = run_games([*BASE, "llm=scripted"], range(3))
    assert scripted["spend"] == [0.0] * 3  # the baseline spends nothing
    assert r["gain_mean"] == pytest.approx(r["outcome_mean"] - float(np.mean(scripted["success"])))
    assert r["cop_gain"] == (r["spend_mean"] / r["gain_mean"] if r["gain_mean"] > 0 else math.inf)
    assert frontier_main([*BASE, "frontier.baseline=scripted"]) == 2
    assert "frontier.baseline='scripted': a list of run overrides" in capsys.readouterr().err
