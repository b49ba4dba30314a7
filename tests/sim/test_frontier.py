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


def test_frontier_command_writes_its_files(tmp_path, capsys):
    rc = frontier_main([*BASE, "frontier.tiers=[small,large]", "frontier.policies=[single]", "frontier.seeds=2",
                        "--out", str(tmp_path), "--drop", "large"])
    assert rc == 0
    df = pl.read_parquet(tmp_path / "frontier.parquet")
    assert df["cell"].to_list() == ["single:small:unlimited"]
    assert (tmp_path / "frontier.html").exists()


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
    monkeypatch.setenv("AGORA_RUNS", str(tmp_path))
    app = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
    at = AppTest.from_file(str(app), default_timeout=60)
    at.run()
    at.switch_page("pages/frontier.py")
    at.run()
    assert not at.exception, at.exception
    assert at.get("vega_lite_chart") and at.dataframe


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
    assert df["single:small:unlimited"]["mv"] is None  # no extra spend: no marginal value


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2-cell frontier run as Hydra sweeps through the joblib launcher, and the same grid in process."""
    from sim.frontier import write

    out = tmp_path_factory.mktemp("runs") / "grid"
    grid = (BASE, ["small", "large"], ["single"], [None], range(2))
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
