"""`agora report` over real scripted run folders compares like with like.

Groups follow every config key that varies across the folder, never mix statuses, human seats or
degraded runs; each group has its own exact baseline; intervals stay inside each metric's range;
nested outcomes are reported; every metric name printed has a meaning; piped output keeps every digit.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import sim
from environments import registry
from environments.traitors.baselines import p_faithful_win_random
from environments.traitors.env import TraitorsEnv
from sim.cli import main
from sim.report import NO_MEANING, flat_outcome, interval, meaning
from sim.stats import bootstrap_mean_ci, mean_ci, wilson_interval

ROOT = Path(__file__).resolve().parents[2]
FAST = ["env=traitors", "llm=scripted", "env.discussion_passes=0", "env.reactions=false", "env.conclave=false",
        "agent.reflection.enabled=false", "run.checkpoint=false"]
SIZES = {6: 1, 10: 3}  # n_players -> n_traitors
SEEDS = range(4)


def play(root: Path, name: str, overrides: list[str]) -> dict:
    return sim.run([*overrides, f"run.dir={root / name}"], progress=False).summary


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """Real scripted Traitors runs of two sizes in one folder (a sweep over env.n_players=6,10)."""
    root = tmp_path_factory.mktemp("made") / "sweep"
    for n, t in SIZES.items():
        for s in SEEDS:
            play(root, f"n{n}-s{s}", [*FAST, f"seed={s}", f"env.n_players={n}", f"env.n_traitors={t}"])
    return root


@pytest.fixture
def sweep(made, tmp_path) -> Path:
    """A private copy each test may add runs to."""
    return Path(shutil.copytree(made, tmp_path / "sweep"))


def report_json(path: Path, *extra: str) -> dict:
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["report", str(path), "--json", *extra]) == 0
    return json.loads(buf.getvalue())


def summaries(root: Path, prefix: str) -> list[dict]:
    return [json.loads((d / "summary.json").read_text()) for d in sorted(root.glob(f"{prefix}*"))]


def variant(root: Path, src: str, name: str, **changes) -> Path:
    """A copy of a real run with some summary fields changed (a cut-short, degraded or human-seat run)."""
    dst = Path(shutil.copytree(root / src, root / name))
    s = json.loads((dst / "summary.json").read_text())
    for k, v in changes.items():
        if k == "llm":
            s["llm"].update(v)
        else:
            s[k] = v
    (dst / "summary.json").write_text(json.dumps(s))
    return dst


def completed(rep: dict, n_players: int) -> dict:
    [g] = [g for g in rep["groups"] if g["keys"].get("env.n_players") == n_players and g["status"] == "completed"
           and not g["human_seats"] and not g["degraded"]]
    return g


def row(group: dict, key: str) -> dict:
    return next(r for r in group["rows"] if r["key"] == key)


# ---------------------------------------------------------------- grouping


def test_groups_by_every_varying_config_key_with_own_baseline(made, capsys):
    rep = report_json(made)
    assert rep["runs"] == 8
    assert rep["varying"] == {"traitors": ["env.n_players", "env.n_traitors"]}
    assert len(rep["groups"]) == 2
    for n, t in SIZES.items():
        g = completed(rep, n)
        assert g["keys"] == {"env.n_players": n, "env.n_traitors": t}
        assert g["label"] == f"traitors/scripted env.n_players={n} env.n_traitors={t}"
        outs = [s["outcome"] for s in summaries(made, f"n{n}-")]
        wins = sum(o["winner"] == "faithful" for o in outs)
        assert g["n"] == len(outs) == 4
        assert row(g, "win_rate")["value"] == pytest.approx(wins / 4)
        assert row(g, "win_rate")["interval"] == pytest.approx(list(wilson_interval(wins, 4)))
        assert row(g, "p_random")["value"] == pytest.approx(float(p_faithful_win_random(n, t)))
        assert row(g, "lift")["value"] == pytest.approx(wins / 4 - float(p_faithful_win_random(n, t)))
        assert rep[g["label"]]["p_random"] == pytest.approx(float(p_faithful_win_random(n, t)))
    assert main(["report", str(made)]) == 0
    out = capsys.readouterr().out
    assert "traitors: grouped by env.n_players, env.n_traitors" in out
    assert "env.n_players=6 env.n_traitors=1" in out and "env.n_players=10 env.n_traitors=3" in out


def test_per_run_keys_do_not_split_groups(tmp_path):
    root = tmp_path / "sweep"
    for s in range(2):
        play(root, f"s{s}", [*FAST, f"seed={s}", "env.n_players=6", "env.n_traitors=1", "run.progress=false"])
    rep = report_json(root)
    assert rep["varying"] == {"traitors": []}
    assert [g["label"] for g in rep["groups"]] == ["traitors/scripted"]
    assert rep["traitors/scripted"]["n"] == 2


def test_statuses_are_never_pooled(sweep, capsys):
    before = completed(report_json(sweep), 6)
    variant(sweep, "n6-s0", "cut", status="aborted_budget", outcome={"winner": None, "rounds": 1})
    variant(sweep, "n6-s1", "broke", status="failed")
    variant(sweep, "n6-s2", "left", status="abandoned")
    rep = report_json(sweep)
    after = completed(rep, 6)
    assert after["n"] == before["n"] == 4 and after["rows"] == before["rows"]
    others = {g["status"]: g for g in rep["groups"] if g["status"] != "completed"}
    assert set(others) == {"aborted_budget", "failed", "abandoned"}
    for st, g in others.items():
        assert g["n"] == 1 and not g["aggregated"] and "rows" not in g and st in g["why"]
        assert g["label"].endswith(f"[{st}]")
    assert main(["report", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "Not aggregated" in out and "status aborted_budget: never averaged with completed runs" in out


def test_human_seat_runs_are_their_own_group(sweep):
    before = completed(report_json(sweep), 6)
    variant(sweep, "n6-s0", "human", llm={"policies": {"llm": 0, "scripted": 5, "human": 1}})
    # an older summary without policy counts: the run_start event names the seat
    old = variant(sweep, "n6-s1", "human-old", llm={"policies": None})
    ev = pl.read_parquet(old / "events.parquet")
    ev = ev.with_columns(pl.when(pl.col("kind") == "run_start")
                         .then(pl.col("payload").str.replace('"human_seats":[]', '"human_seats":["p1"]', literal=True))
                         .otherwise(pl.col("payload")).alias("payload"))
    ev.write_parquet(old / "events.parquet")
    rep = report_json(sweep)
    assert completed(rep, 6)["n"] == before["n"]
    [h] = [g for g in rep["groups"] if g["human_seats"]]
    assert h["n"] == 2 and h["aggregated"] and "human-seat" in h["label"]
    assert sorted(Path(d).name for d in h["dirs"]) == ["human", "human-old"]


def test_degraded_runs_left_out_unless_asked(sweep):
    before = completed(report_json(sweep), 10)
    variant(sweep, "n10-s0", "deg", status="degraded")
    variant(sweep, "n10-s1", "deg-flag", degraded=True)  # labelled degraded, ran to the end
    rep = report_json(sweep)
    assert completed(rep, 10)["rows"] == before["rows"]
    deg = [g for g in rep["groups"] if g["degraded"]]
    assert len(deg) == 2 and not any(g["aggregated"] for g in deg)
    assert all("--include-degraded" in g["why"] for g in deg)
    rep = report_json(sweep, "--include-degraded")
    assert completed(rep, 10)["rows"] == before["rows"]  # still never pooled with completed runs
    deg = [g for g in rep["groups"] if g["degraded"]]
    assert len(deg) == 2 and all(g["aggregated"] and g["n"] == 1 for g in deg)


def test_a_group_that_still_mixes_baselines_says_so(made, tmp_path):
    """Runs without config.yaml cannot be split by size: the report names both baselines, picks none."""
    root = Path(shutil.copytree(made, tmp_path / "noconf"))
    for f in root.glob("*/config.yaml"):
        f.unlink()
    rep = report_json(root)
    [g] = rep["groups"]
    p = row(g, "p_random")
    assert p["value"] is None and "MIXED" in p["metric"] and "0.37500" in p["metric"] and "0.06875" in p["metric"]
    assert not any(r["key"] == "lift" for r in g["rows"])


def test_sweep_rows_mixed_baselines_directly():
    rows = TraitorsEnv.sweep_rows([{"winner": "faithful", "p_faithful_win_random": 0.375},
                                   {"winner": "traitors", "p_faithful_win_random": 0.06875}])
    assert [r["key"] for r in rows] == ["win_rate", "p_random"]
    assert rows[1]["value"] is None and "MIXED" in rows[1]["metric"]


# ---------------------------------------------------------------- intervals


def test_bounded_means_stay_in_range():
    mis = [1.0] * 14 + [0.0]  # mean 0.9333, n = 15
    old_lo, old_hi = mean_ci(mis)[1:]
    assert old_hi > 1  # the t interval leaves [0, 1] ...
    st = interval("traitors", "o.mis_banish_rate", mis)
    assert st["method"] == "bootstrap" and st["mean"] == pytest.approx(14 / 15)
    assert 0 <= st["ci"][0] <= st["mean"] <= st["ci"][1] <= 1  # ... the report's does not
    prec = [1 - v for v in mis]
    assert mean_ci(prec)[1] < 0
    st = interval("traitors", "o.banish_precision", prec)
    assert 0 <= st["ci"][0] <= st["mean"] <= st["ci"][1] <= 1
    assert interval("traitors", "o.banish_precision", prec) == st  # seeded: the same every time


def test_interval_methods_by_range():
    assert interval("market", "o.event_study.sign_matches", [True, False, True])["method"] == "Wilson"
    assert interval("market", "o.event_study.sign_matches", [True, False, True])["ci"] == \
        pytest.approx(list(wilson_interval(2, 3)))
    assert interval("traitors", "o.fcr_lift", [0.5, 1.5, 3.0])["method"] == "t"  # a ratio: unbounded
    usd = interval("traitors", "usd", [0.0, 0.0, 0.0, 0.01])
    assert usd["method"] == "t" and usd["ci"][0] == 0.0  # spend is never negative
    assert mean_ci([1, 2, 9])[1] < 0
    assert interval("traitors", "o.rounds", [1, 2, 9])["ci"][0] == 0.0  # nor are rounds
    assert interval("market", "o.event_study.change_pct", [-5.0, 1.0, 2.0])["ci"][0] < -5  # a change can be
    assert interval("traitors", "o.suspicion_gap", [-0.2, 0.1, 0.3])["method"] == "bootstrap"
    assert interval("traitors", "o.fcr", [0.5]) is None  # one value: no interval


def test_bootstrap_mean_ci_contract():
    m, lo, hi = bootstrap_mean_ci([0.2, 0.4, 0.9], (0.0, 1.0))
    assert m == pytest.approx(0.5) and 0.2 <= lo < m < hi <= 0.9
    assert bootstrap_mean_ci([0.2, 0.4, 0.9]) == (m, lo, hi)
    assert math.isnan(bootstrap_mean_ci([0.3])[1])
    with pytest.raises(ValueError):
        bootstrap_mean_ci([])


def test_report_intervals_of_real_runs_respect_ranges(made):
    rep = report_json(made)
    for g in rep["groups"]:
        for name, st in g["metrics"].items():
            lo, hi = st["ci"]
            assert lo <= st["mean"] <= hi, name
            if st["method"] in ("Wilson", "bootstrap") and name not in ("o.suspicion_gap",):
                assert 0 <= lo and hi <= 1, (name, st)
        assert g["metrics"]["o.mis_banish_rate"]["method"] == "bootstrap"


# ---------------------------------------------------------------- nested outcomes


def test_market_event_study_in_sweep_report(tmp_path, capsys):
    root = tmp_path / "market"
    outs = [play(root, f"s{s}", ["env=market", "llm=scripted", f"seed={s}", "env.n_traders=8", "env.ticks=12",
                                   "env.shock_tick=6", "run.checkpoint=false"])["outcome"] for s in range(4)]
    studies = [o["event_study"] for o in outs if o.get("event_study")]
    assert len(studies) >= 2  # these seeds trade on both sides of the shock
    rep = report_json(root)
    [g] = rep["groups"]
    m = g["metrics"]
    changes = [e["change_pct"] for e in studies if e.get("change_pct") is not None]
    assert m["o.event_study.change_pct"]["mean"] == pytest.approx(sum(changes) / len(changes))
    signs = [e["sign_matches"] for e in studies if e.get("sign_matches") is not None]
    sm = m["o.event_study.sign_matches"]
    assert sm["method"] == "Wilson" and sm["n"] == len(signs)
    assert sm["ci"] == pytest.approx(list(wilson_interval(sum(signs), len(signs))))
    assert main(["report", str(root)]) == 0
    out = capsys.readouterr().out
    assert "o.event_study.change_pct" in out and "o.event_study.sign_matches" in out
    assert "o.event_study.change_pct: event study: post-shock mean price vs pre-shock mean, percent" in out


# ---------------------------------------------------------------- meanings

# every registered environment with its quick overrides, and the market's two setups
ENV_RUNS = {**{name: [] for name in registry.MODULES},
            "market": ["env.trader_policy=zic", "env.n_traders=8"],
            "market-induced": ["env.setup=induced", "env.trader_policy=zic"]}


@pytest.mark.parametrize("case", sorted(ENV_RUNS))
def test_every_numeric_outcome_key_has_a_meaning(case, tmp_path):
    env = case.split("-")[0]
    s = play(tmp_path, case, [f"env={env}", "llm=scripted", "seed=0", *registry.env_class(env).quick,
                              *ENV_RUNS[case], "run.checkpoint=false"])
    keys = list(flat_outcome(s["outcome"]))
    assert keys
    missing = [k for k in keys if not meaning(env, f"o.{k}")]
    assert not missing, f"{env}: outcome keys with no meaning: {missing}"
    for k in ("usd", "calls", "ticks"):
        assert meaning(env, k)


def test_report_explains_every_metric_it_prints(made, capsys):
    rep = report_json(made)
    assert NO_MEANING not in rep["glossary"].values()
    shown = {r["metric"] for g in rep["groups"] for r in g["rows"]} | {k for g in rep["groups"] for k in g["metrics"]}
    assert shown == set(rep["glossary"])
    assert main(["report", str(made)]) == 0
    out = capsys.readouterr().out
    assert "o.fcr: Faithful consensus rate [share of votes]: share of faithful banish votes cast on a traitor" in out
    assert "o.bus_rate: Bus rate [share of votes]: share of traitor banish votes cast on a fellow traitor" in out
    assert "usd: compute spend of the run in USD" in out and NO_MEANING not in out


def test_single_run_report_explains_fields(made, capsys):
    assert main(["report", str(made / "n6-s0")]) == 0
    out = capsys.readouterr().out
    assert "outcome.fcr" in out and "Faithful consensus rate" in out and NO_MEANING not in out


# ---------------------------------------------------------------- piped output


def test_piped_report_keeps_the_full_usd(made, tmp_path):
    root = Path(shutil.copytree(made, tmp_path / "spent"))
    usd = 0.000562123
    for d in root.glob("n10-*"):
        s = json.loads((d / "summary.json").read_text())
        s["llm"]["usd"] = usd
        (d / "summary.json").write_text(json.dumps(s))
    for path, want in ((root, f"{usd:.9f}"), (root / "n10-s0", f"{usd:.9f}")):
        p = subprocess.run([sys.executable, "-m", "sim.cli", "report", str(path)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        line = next(ln for ln in p.stdout.splitlines() if want in ln)
        assert "…" not in line
        assert "…" not in p.stdout
