"""Dashboards: pure helpers on tiny frames, and every page through AppTest on real run directories."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import networkx as nx
import polars as pl
import pytest

from dashboards import data, declared
from environments.registry import ENVIRONMENTS
from environments.traitors import views

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
RUN = ["llm=scripted", "run.progress=off", "run.checkpoint=false"]


# ----- real runs, once per session: a short scripted run of every registered environment ---------------


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> Path:
    import sim
    from environments.registry import ENVIRONMENTS, env_class

    r = tmp_path_factory.mktemp("runs")
    for env in ENVIRONMENTS:
        sim.run([f"env={env}", *env_class(env).quick, *RUN, f"run.dir={r / env / 's1'}", "seed=1"])
    # a run in progress: only parts and a 'running' summary, like a killed run
    part = r / "traitors" / "partial"
    shutil.copytree(r / "traitors" / "s1", part)
    for name in ("events", "ledger", "metrics"):
        (part / f"{name}.parquet").unlink()
    s = json.loads((part / "summary.json").read_text())
    (part / "summary.json").write_text(json.dumps(s | {"status": "running"}))
    return r


@pytest.fixture()
def app(root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AGORA_RUNS", str(root))

    def make(page: str | None = None, state: dict | None = None):
        at = AppTest.from_file(APP, default_timeout=60)
        for k, v in (state or {}).items():
            at.session_state[k] = v
        at.run()
        if page:
            at.switch_page(f"pages/{page}.py")
            at.run()
        assert not at.exception, at.exception
        return at
    return make


def chart_titles(at) -> list[str]:
    out = []
    for c in at.get("vega_lite_chart"):
        t = json.loads(c.proto.spec).get("title")
        out.append(t if isinstance(t, str) else (t or {}).get("text", ""))
    return out


# ----- pure helpers ---------------------------------------------------------------------------


def _ledger(rows):
    cols = ("tick", "agent", "phase", "purpose", "model", "outcome", "tokens_in", "tokens_out", "cost_nano")
    return pl.DataFrame([dict(zip(cols, r)) for r in rows])


LEDGER = _ledger([(1, "p1", "talk", "speak", "m", "ok", 10, 5, 2_000_000_000),
                  (1, "p2", "talk", "speak", "m", "denied", 0, 0, 0),
                  (2, "p1", "vote", "vote", "m", "timeout", 3, 0, 500_000_000),
                  (2, "p2", "vote", "vote", "m", "fallback", 0, 0, 0)])


def test_spend_over_ticks_is_cumulative_and_subtracts_from_budget():
    s = data.spend_over_ticks(LEDGER, budget_usd=5.0)
    assert s["usd"].to_list() == [2.0, 0.5]
    assert s["cumulative_usd"].to_list() == [2.0, 2.5]
    assert s["remaining_usd"].to_list() == [3.0, 2.5]
    assert data.spend_over_ticks(LEDGER)["remaining_usd"].null_count() == 2


def test_spend_by_agent_and_outcome_counts():
    by = data.spend_by(LEDGER, "agent")
    assert by.row(0, named=True) == {"agent": "p1", "attempts": 2, "ok_calls": 1, "tokens": 18, "usd": 2.5}
    assert data.outcome_counts(LEDGER) == {"calls": 1, "ok": 1, "truncated": 0, "denied": 1, "fallback": 1,
                                           "failed": 1, "invalid": 0}
    assert data.spend_by(pl.DataFrame(), "agent").height == 0


def test_calibration_bins_known_answer():
    b = views.calibration_bins([0.05, 0.15, 0.12, 0.95, 1.0], [0, 1, 0, 1, 1], bins=10)
    assert b["bin"].to_list() == [0, 1, 9]
    assert b["n"].to_list() == [1, 2, 2]
    assert b["observed"].to_list() == [0.0, 0.5, 1.0]
    assert b["mean_p"][1] == pytest.approx(0.135)


def test_confine_refuses_paths_outside_root(tmp_path):
    (tmp_path / "a").mkdir()
    assert data.confine(tmp_path, "a") == (tmp_path / "a").resolve()
    for bad in ("..", "../x", "/etc", "a/../../x"):
        with pytest.raises(data.PathRefused):
            data.confine(tmp_path, bad)
    (tmp_path / "link").symlink_to("/tmp")
    with pytest.raises(data.PathRefused):
        data.confine(tmp_path, "link")
    assert isinstance(data.load_run(tmp_path, "../x"), data.Notice)


def test_headline_and_graph_layout():
    out = {"rounds": 3, "winner": "faithful", "gap": 0.12345, "xs": [1]}
    assert data.headline(out) == "rounds=3, winner=faithful, gap=0.123"  # as written
    assert data.headline(out, ["winner", "missing"]) == "winner=faithful, rounds=3, gap=0.123"  # declared first
    assert declared.headline_keys("traitors")[0] == "winner"
    G = nx.DiGraph()
    G.add_node("p1", role="traitor")
    G.add_node("p2", role="faithful")
    G.add_edge("p1", "p2", weight=0.7)
    G.add_edge("p2", "p1", weight=0.0)
    nodes, edges = data.graph_layout(G, seed=1)
    assert sorted(nodes["role"].to_list()) == ["faithful", "traitor"]
    assert edges.height == 1 and edges["source"][0] == "p1"  # zero-weight edge left out


def test_transcript_hides_team_and_private_rows():
    ev = pl.DataFrame({"seq": [0, 1, 2, 3], "tick": [1] * 4, "phase": ["x"] * 4, "actor": ["p1", "p2", "p1", "p2"],
                       "kind": ["speech", "speech", "vote", "role"],
                       "payload": ['{"text":"hi"}', '{"text":"kill p1"}', '{"voter":"p1","target":"p2"}',
                                   '{"pid":"p2","role":"traitor"}'],
                       "visibility": ["public", "team:traitors", "private:p1", "private:p2"]})
    roles = {"p1": "faithful", "p2": "traitor"}
    assert views.transcript(ev, "public", roles)["seq"].to_list() == [0]
    assert views.transcript(ev, "p1", roles)["seq"].to_list() == [0, 2]
    assert views.transcript(ev, "p2", roles)["seq"].to_list() == [0, 1, 3]
    assert views.transcript(ev, "p1", roles)["text"].to_list() == ["hi", "p1 votes to  p2"]


# ----- pages on real runs -------------------------------------------------------------------


def test_runs_page_lists_every_run(app, root):
    at = app()
    n = len(data.list_runs(root))
    assert n >= 2
    assert at.dataframe[0].value.shape[0] == n
    assert any(f"{n} of {n} runs" in c.value for c in at.caption)
    at.multiselect(key="f_status").select("running").run()
    assert at.dataframe[0].value.shape[0] == 1


def test_selection_is_shared_with_spend_page(app, root):
    at = app()
    first = at.dataframe[0].value["run"].iloc[0]
    at.multiselect(key="_runs_pick").select(first).run()
    assert at.session_state[data.SELECTION_KEY] == [first]
    at.switch_page("pages/spend.py").run()
    assert not at.exception
    assert at.dataframe[0].value.shape[0] == 1  # side-by-side table holds the one selected run


def test_spend_page_charts(app):
    at = app("spend", {data.SELECTION_KEY: ["traitors/s1", "traitors/partial"]})
    titles = chart_titles(at)
    assert any(t.startswith("Spend per tick (") for t in titles)  # with its unit: shadow USD for scripted
    assert any(t.startswith("Budget left, as a share of each cap") for t in titles)
    assert "Attempts by agent" in titles and "Attempts by phase" in titles  # scripted: zero USD, so attempts
    assert "denied attempts" in [m.label for m in at.metric]


def test_spend_page_shows_outcomes_as_written(app, root):
    """Per-USD values come from each environment's summary, not recomputed on the page."""
    at = app("spend", {data.SELECTION_KEY: ["taxation/s1", "market/s1"]})
    tables = [d.value for d in at.dataframe]
    for env, key, title in (("taxation", "welfare_per_usd", "Welfare per USD"),
                            ("market", "surplus_per_usd", "Surplus per USD")):
        written = json.loads((root / env / "s1" / "summary.json").read_text())["outcome"][key]
        col = next(c for t in tables for c in t.columns if c.startswith(title))
        shown = next(t for t in tables if col in t.columns)[col].tolist()
        assert written is None and shown == ["n/a (no spend)"]  # scripted: nothing spent, and the page says so


def test_trust_page_charts_and_role_aware_transcript(app, root):
    at = app("trust", {data.SELECTION_KEY: ["traitors/s1"]})
    titles = chart_titles(at)
    assert any(t.startswith("Trust matrix, round") for t in titles)
    assert any(t.startswith("Trust graph, round") for t in titles)
    assert "Belief calibration (faithful raters)" in titles
    assert "Suspicion gap over rounds" in titles
    assert "Banishment votes per round" in titles
    per_win = next(d.value for d in at.dataframe if "spend per faithful win" in d.value.columns)
    assert per_win.shape[0] == 1 and per_win["runs"].iloc[0] == 1  # one comparable group, never pooled
    ev = pl.read_parquet(root / "traitors" / "s1" / "events.parquet")
    roles = views.player_roles(ev)
    faithful = next(p for p, r in roles.items() if r == "faithful")
    at.selectbox(key="view_as").select(faithful).run()
    seen = at.dataframe[0].value
    assert len(seen) > 0
    assert not (seen["visibility"] == "team:traitors").any()
    assert set(seen["visibility"]) <= {"public", f"private:{faithful}"}
    at.selectbox(key="view_as").select("traitors").run()
    team = at.dataframe[0].value
    assert ((team["visibility"] == "team:traitors") & (team["kind"] == "speech")).any()


def test_partial_run_reads_parts(app):
    at = app("spend", {data.SELECTION_KEY: ["traitors/partial"]})
    assert any("per-tick parts" in i.value for i in at.info)
    assert any(t.startswith("Spend per tick") for t in chart_titles(at))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_page_draws_every_declared_group(app, env):
    """Each declared per-tick group is a chart with its title, each outcome group a table of declared metrics."""
    specs = declared.specs_of(env)
    at = app("environment", {data.SELECTION_KEY: [f"{env}/s1"]})
    assert at.selectbox(key="env_page_env").value == env
    titles = chart_titles(at)
    met = pl.read_parquet(next(Path(data.runs_root()).glob(f"{env}/s1/metrics.parquet")))
    drawn = [s for s in specs if s.source == "tick" and declared.long_series(met, [s]).height]
    captions = " ".join(c.value for c in at.caption)
    for group, gspecs in declared.tick_groups(specs).items():
        g = declared.group_title(group)
        if any(s in drawn for s in gspecs):
            assert any(t == g or t.startswith(g + ":") for t in titles), (g, titles)
        else:  # a group this run has no values for (per-USD of a scripted run) is named, never an empty chart
            assert "no values in this run" in captions and g in captions, (g, captions)
    tables = [d.value for d in at.dataframe if "metric" in d.value.columns]
    for group, gspecs in declared.outcome_groups(specs).items():
        assert declared.group_title(group) in [h.value for h in at.subheader]
        assert any(t["metric"].tolist() == [s.title for s in gspecs] for t in tables)
    assert not [w.value for w in at.warning if "declared but not in" in w.value]  # every column present
    units = {s.unit for s in drawn if s.unit}
    axes = {_encoding(json.loads(c.proto.spec))["y"]["title"] for c in at.get("vega_lite_chart")}
    assert units <= axes  # every chart's y axis is its declared unit


def _encoding(spec: dict) -> dict:
    """A chart's encoding; a layered chart (a line with a shock marker) has it on its first layer."""
    return spec.get("encoding") or spec["layer"][0]["encoding"]


def test_environment_page_lists_only_environments_with_runs(app):
    at = app("environment", {data.SELECTION_KEY: ["market/s1"]})
    assert at.selectbox(key="env_page_env").options == ["market"]


# ----- damaged runs and paths outside the root --------------------------------------------


@pytest.fixture()
def bad_root(root, tmp_path, monkeypatch):
    shutil.copytree(root / "traitors" / "s1", tmp_path / "good")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "summary.json").write_text("{not json")
    shutil.copytree(root / "traitors" / "s1", tmp_path / "truncated")
    f = tmp_path / "truncated" / "events.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    monkeypatch.setenv("AGORA_RUNS", str(tmp_path))
    return tmp_path


def test_corrupt_runs_show_notices(bad_root):
    from streamlit.testing.v1 import AppTest

    assert isinstance(data.load_run(bad_root, "garbage"), data.Notice)
    assert "corrupt or truncated" in data.load_run(bad_root, "truncated").message
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception
    assert any("garbage" in w.value and "unreadable" in w.value for w in at.warning)
    at.switch_page("pages/spend.py").run()
    assert not at.exception
    assert any("truncated" in w.value and "corrupt or truncated" in w.value for w in at.warning)


def test_path_outside_root_is_refused_on_page(bad_root):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=60).run()
    at.text_input(key="open_path").input("../../etc").run()
    assert not at.exception
    assert any("refused" in e.value for e in at.error)
    at.text_input(key="open_path").input("good").run()
    assert any("events" in s.value for s in at.success)
