"""Dashboards: pure helpers on tiny frames, and every page through AppTest on real run directories."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import networkx as nx
import polars as pl
import pytest

from dashboards import data

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
SMALL = ["llm=scripted", "env.n_players=6", "env.n_traitors=1", "run.progress=off", "run.checkpoint=false"]


# ----- real runs, once per session ----------------------------------------------------------


def _try_run(env: str, path: Path, seed: int) -> str | None:
    """Run one scripted env into ``path``; the reason when it cannot run (env still being built)."""
    import sim

    extra = SMALL if env == "traitors" else ["llm=scripted", "run.progress=off", "run.checkpoint=false", "run.max_ticks=3"]
    try:
        sim.run([f"env={env}", f"run.dir={path}", f"seed={seed}", *extra])
    except Exception as e:  # noqa: BLE001 - reported through pytest.skip
        shutil.rmtree(path, ignore_errors=True)
        return f"{type(e).__name__}: {str(e)[:160]}"
    return None


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> dict:
    r = tmp_path_factory.mktemp("runs")
    for s in (1,):
        assert _try_run("traitors", r / "traitors" / f"s{s}", s) is None
    why = {e: _try_run(e, r / e / "s1", 1) for e in ("taxation", "market")}
    # a run in progress: only parts and a 'running' summary, like a killed run
    part = r / "traitors" / "partial"
    shutil.copytree(r / "traitors" / "s1", part)
    for name in ("events", "ledger", "metrics"):
        (part / f"{name}.parquet").unlink()
    s = json.loads((part / "summary.json").read_text())
    (part / "summary.json").write_text(json.dumps(s | {"status": "running"}))
    return {"path": r, "skip": why}


@pytest.fixture()
def app(root, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AGORA_RUNS", str(root["path"]))

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
    assert data.outcome_counts(LEDGER) == {"ok": 1, "denied": 1, "fallback": 1, "failed": 1, "invalid": 0}
    assert data.spend_by(pl.DataFrame(), "agent").height == 0


def test_cost_of_pass_and_per_dollar():
    games = [{"env": "traitors", "outcome": {"winner": "faithful"}, "llm": {"usd": 1.5}},
             {"env": "traitors", "outcome": {"winner": "traitors"}, "llm": {"usd": 0.5}},
             {"env": "market", "outcome": {}, "llm": {"usd": 9.0}}]
    assert data.usd_per_faithful_win(games) == pytest.approx(2.0)
    assert data.usd_per_faithful_win(games[1:]) is None
    assert data.per_dollar(10.0, 4.0) == 2.5
    assert data.per_dollar(10.0, 0.0) is None


def test_calibration_bins_known_answer():
    b = data.calibration_bins([0.05, 0.15, 0.12, 0.95, 1.0], [0, 1, 0, 1, 1], bins=10)
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
    assert data.headline({"rounds": 3, "winner": "faithful", "gap": 0.12345, "xs": [1]}) == \
        "winner=faithful, rounds=3, gap=0.123"
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
    assert data.transcript(ev, "public", roles)["seq"].to_list() == [0]
    assert data.transcript(ev, "p1", roles)["seq"].to_list() == [0, 2]
    assert data.transcript(ev, "p2", roles)["seq"].to_list() == [0, 1, 3]
    assert data.transcript(ev, "p1", roles)["text"].to_list() == ["hi", "p1 votes to  p2"]


# ----- pages on real runs -------------------------------------------------------------------


def test_runs_page_lists_every_run(app, root):
    at = app()
    n = len(data.list_runs(root["path"]))
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
    assert "Spend per tick" in titles
    assert any(t.startswith("Cumulative spend and budget remaining") for t in titles)
    assert "Attempts by agent" in titles and "Attempts by phase" in titles  # scripted: zero USD, so attempts
    labels = [m.label for m in at.metric]
    assert "denied attempts" in labels and "USD per faithful win (traitors)" in labels


def test_trust_page_charts_and_role_aware_transcript(app, root):
    at = app("trust", {data.SELECTION_KEY: ["traitors/s1"]})
    titles = chart_titles(at)
    assert any(t.startswith("Trust matrix, round") for t in titles)
    assert any(t.startswith("Trust graph, round") for t in titles)
    assert "Belief calibration (faithful raters)" in titles
    assert "Suspicion gap over rounds" in titles
    assert "Banishment votes per round" in titles
    ev = pl.read_parquet(root["path"] / "traitors" / "s1" / "events.parquet")
    roles = data.player_roles(ev)
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
    assert "Spend per tick" in chart_titles(at)


@pytest.mark.parametrize("env,page,title", [("taxation", "welfare", "over time"), ("market", "market", "over time")])
def test_env_pages(app, root, env, page, title):
    if root["skip"][env]:
        pytest.skip(f"env={env} runs are not available yet: {root['skip'][env]}")
    at = app(page, {data.SELECTION_KEY: [f"{env}/s1"]})
    assert any(title in t for t in chart_titles(at))


@pytest.mark.parametrize("page", ["welfare", "market"])
def test_env_pages_say_when_runs_are_absent(app, page):
    at = app(page, {data.SELECTION_KEY: ["traitors/s1"]})
    assert any("No " in w.value and "runs" in w.value for w in at.warning)


def test_live_page_human_seat_steps_and_finishes(app, root):
    at = app("live")
    at.selectbox(key="live_seat").select("p2").run()
    at.button(key="live_start").click().run()
    assert not at.exception
    at.text_area(key="live_speech").input("I watch p3 closely.").run()
    at.button(key="live_step").click().run()
    assert not at.exception
    assert "traitors: metrics per tick" in chart_titles(at)
    live = at.session_state["live"]
    ev = live.sim.events.frame()
    speeches = data.transcript(ev, "public", {}).filter(pl.col("actor") == "p2")["text"].to_list()
    assert "I watch p3 closely." in speeches
    assert ev.filter(pl.col("kind") == "human_action").height > 0
    at.button(key="live_finish").click().run()
    summ = json.loads((live.path / "summary.json").read_text())
    assert summ["status"] == "completed"
    assert live.path.resolve().is_relative_to(root["path"].resolve())
    assert (live.path / "events.parquet").exists()


# ----- damaged runs and paths outside the root --------------------------------------------


@pytest.fixture()
def bad_root(root, tmp_path, monkeypatch):
    shutil.copytree(root["path"] / "traitors" / "s1", tmp_path / "good")
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "summary.json").write_text("{not json")
    shutil.copytree(root["path"] / "traitors" / "s1", tmp_path / "truncated")
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
