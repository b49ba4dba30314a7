"""The live classroom page through AppTest: a person takes a seat, speaks, votes, and the run is a normal run."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dashboards import data

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
GAME = ["env.n_players=6", "env.n_traitors=1", "env.discussion_passes=1"]
TEAM_GAME = ["env.n_players=8", "env.n_traitors=2", "env.discussion_passes=1"]


def roles(overrides: list[str], seed: int = 1) -> dict[str, str]:
    """Who is what in this game (the same seeded deal the live run makes)."""
    import sim

    res = sim.run(["llm=scripted", "run.dir=null", f"seed={seed}", *overrides])
    ev = res.events.filter(pl.col("kind") == "role")
    return {json.loads(p)["pid"]: json.loads(p)["role"] for p in ev["payload"]}


@pytest.fixture()
def page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AGORA_RUNS", str(tmp_path))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("pages/live.py")
    at.run()
    assert not at.exception, at.exception
    yield at
    live = at.session_state["live"] if "live" in at.session_state else None
    if live is not None:
        live.finish(timeout=30)  # never leave a run thread parked behind a failed test


def start(at, env: str = "traitors", seat: str | None = None, overrides: list[str] = GAME):
    at.selectbox(key="live_env").select(env).run()
    at.text_area(key=f"live_overrides_{env}").input("\n".join(overrides)).run()
    if seat is not None:
        at.selectbox(key="live_seat").select(seat).run()
    at.button(key="live_start").click().run()
    assert not at.exception, at.exception
    return at.session_state["live"]


def widget(at, kind: str, key: str):
    return next((w for w in getattr(at, kind) if w.key == key), None)


def answer_any(at) -> bool:
    """Fill whichever input the page shows with a plain answer and send it; False when none is shown."""
    if (w := widget(at, "text_area", "live_speech")) is not None:
        w.input("Still watching.")
    elif (w := widget(at, "text_area", "live_team")) is not None:
        w.input("Agreed.")
    elif (w := widget(at, "selectbox", "live_choice")) is not None:
        w.select(w.options[0])
    elif (w := widget(at, "radio", "live_yesno")) is not None:
        w.set_value("no")
    else:
        return False
    send(at)
    return True


def step_until(at, kind: str, key: str, limit: int = 40):
    """Press Next phase (answering other requests on the way) until the input ``key`` is on the page."""
    for _ in range(limit):
        w = widget(at, kind, key)
        if w is not None:
            return w
        if answer_any(at):
            continue
        nxt = at.button(key="live_next")
        assert not nxt.disabled, f"run cannot step and {key} never appeared: {[m.value for m in at.markdown]}"
        nxt.click().run()
        assert not at.exception, at.exception
    raise AssertionError(f"{key} did not appear within {limit} phases")


def send(at) -> None:
    at.button(key="live_send").click().run()
    assert not at.exception, at.exception


def shown_rows(at) -> pl.DataFrame:
    """Every table on the page, stacked (kind and text columns)."""
    frames = [pl.from_pandas(d.value) for d in at.dataframe]
    frames = [f.select("kind", "text") for f in frames if {"kind", "text"} <= set(f.columns)]
    return pl.concat(frames) if frames else pl.DataFrame(schema={"kind": pl.Utf8, "text": pl.Utf8})


def play_to_end(at, limit: int = 80) -> None:
    """Run to end, answering every request the page puts to the person."""
    at.button(key="live_run_end").click().run()
    for _ in range(limit):
        if at.button(key="live_finish").disabled:
            return
        if not answer_any(at):
            at.run()
    raise AssertionError("the run did not finish")


def test_human_seat_speaks_votes_and_the_run_is_a_normal_run(page, tmp_path):
    r = roles(GAME)
    seat = next(p for p, role in r.items() if role == "faithful")
    traitor = next(p for p, role in r.items() if role == "traitor")
    live = start(page, seat=seat)
    assert widget(page, "text_area", "live_speech") is None  # inputs only while a request waits

    step_until(page, "text_area", "live_speech").input("I watch the quiet ones closely.")
    assert widget(page, "text_area", "live_team") is None and widget(page, "selectbox", "live_choice") is None
    send(page)
    assert "I watch the quiet ones closely." in shown_rows(page)["text"].to_list()  # what just happened

    vote = step_until(page, "selectbox", "live_choice")
    assert vote.value is None  # an untouched vote is not a vote
    assert sorted(vote.options) == sorted(p for p in r if p != seat)  # only valid targets: alive others
    send(page)
    assert any("choose one" in w.value for w in page.warning)
    assert widget(page, "selectbox", "live_choice") is not None  # still asked
    page.selectbox(key="live_choice").select(traitor).run()
    send(page)
    page.button(key="live_next").click().run()  # the banishment phase ends: the result is shown
    rows = shown_rows(page)
    elim = rows.filter(pl.col("kind") == "elimination")["text"].to_list()
    assert elim and "revealed_role=" in elim[-1]

    play_to_end(page)
    assert any("Run finished (completed)" in s.value for s in page.success)
    assert "Winner" in [w.value for w in page.subheader] or any(
        "Winner" in d.value["metric"].to_list() for d in page.dataframe if "metric" in d.value.columns)

    # the finished run directory reads as any other run
    run = data.load_run(tmp_path, live.path)
    assert isinstance(run, data.Run) and not run.partial
    assert run.summary["status"] == "completed" and run.summary["llm"]["policies"]["human"] == 1
    ev = pl.read_parquet(live.path / "events.parquet")
    speeches = [json.loads(p) for p in ev.filter((pl.col("kind") == "speech") & (pl.col("actor") == seat))["payload"]]
    assert "I watch the quiet ones closely." in [s["text"] for s in speeches]
    human = [json.loads(p) for p in ev.filter((pl.col("kind") == "human_action") & (pl.col("actor") == seat))["payload"]]
    assert {"speak", "vote"} <= {h["purpose"] for h in human if h["source"] == "human"}
    votes = [json.loads(p) for p in ev.filter(pl.col("kind") == "vote")["payload"]]
    assert {"voter": seat, "target": traitor} in [{"voter": v["voter"], "target": v["target"]} for v in votes]
    table, _ = data.runs_table(tmp_path)
    assert table.filter(pl.col("run") == data.relative(tmp_path, live.path))["status"].to_list() == ["completed"]


def test_finish_mid_game_records_abandoned(page, tmp_path):
    live = start(page, seat="p3")
    page.button(key="live_next").click().run()
    page.button(key="live_finish").click().run()
    assert not page.exception, page.exception
    assert live.finished
    summary = json.loads((live.path / "summary.json").read_text())
    assert summary["status"] == "abandoned"
    assert (live.path / "events.parquet").exists()
    assert any("Run finished (abandoned)" in s.value for s in page.success)
    table, _ = data.runs_table(tmp_path)
    assert table["status"].to_list() == ["abandoned"]


def test_team_message_is_never_public(page):
    r = roles(TEAM_GAME)
    seat = next(p for p, role in r.items() if role == "traitor")
    live = start(page, seat=seat, overrides=TEAM_GAME)
    step_until(page, "text_area", "live_speech").input("I am as faithful as they come.")
    send(page)
    vote = step_until(page, "selectbox", "live_choice")
    vote.select(next(p for p in vote.options if r[p] == "faithful")).run()
    send(page)
    secret = "Fellow traitors: tonight we take the loudest one."
    team_box = step_until(page, "text_area", "live_team")
    assert widget(page, "text_area", "live_speech") is None  # one input per channel
    team_box.input(secret).run()
    send(page)
    assert answer_any(page)  # the conclave's second step (agree), on the team channel again

    ev = live.sim.events.frame()
    carrying = ev.filter(pl.col("payload").str.contains(secret, literal=True))
    assert carrying.height >= 1
    assert set(carrying["visibility"]) == {"team:traitors"}
    public = live.story()
    assert not public["text"].str.contains(secret, literal=True).any()
    page.toggle(key="live_projector").set_value(True).run()
    assert not page.exception, page.exception
    projected = " ".join(m.value for m in page.markdown)
    assert "I am as faithful as they come." in projected and secret not in projected
    assert widget(page, "text_area", "live_team") is None  # no private input on the projector
    page.button(key="live_finish").click().run()
    assert json.loads((live.path / "summary.json").read_text())["status"] == "abandoned"


def test_environment_without_a_seat_steps_by_phase(page):
    live = start(page, env="market", overrides=["env.n_traders=8", "env.ticks=3"])
    assert widget(page, "selectbox", "live_seat") is None  # the market offers no human seat
    first = (live.gate.tick, live.gate.phase)
    page.button(key="live_next").click().run()
    assert (live.gate.tick, live.gate.phase) != first and live.gate.waiting
    page.button(key="live_run_end").click().run()
    assert any("Run finished (completed)" in s.value for s in page.success)


def test_another_tab_attaches_to_a_run_in_progress(page, tmp_path):
    """A reopened tab (or a projector tab) picks up the run; it is not lost with the first tab's session."""
    from streamlit.testing.v1 import AppTest

    live = start(page, seat="p2")
    other = AppTest.from_file(APP, default_timeout=60)
    other.run()
    other.switch_page("pages/live.py")
    other.run()
    assert live.path.name in other.selectbox(key="live_attach_pick").options
    other.selectbox(key="live_attach_pick").select(live.path.name).run()
    other.button(key="live_attach").click().run()
    assert not other.exception, other.exception
    assert other.session_state["live"] is live
    other.toggle(key="live_projector").set_value(True).run()
    other.button(key="live_next").click().run()
    assert not other.exception, other.exception
    assert live.released == 1 and live.pending() is not None  # the roundtable now waits for p2 to speak
    assert any("Waiting for the person at the seat" in i.value for i in other.info)  # projector: no input
