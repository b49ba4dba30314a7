"""The live run without Streamlit: inputs built from the request's schema, phase stepping, how a run ends."""
from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from dashboards.live_run import LiveRun, build_action, choices, describe
from environments.traitors.actions import RecruitAnswer, Speech, vote_model
from sim.config import compose, to_dict
from sim.engine import ActRequest

GAME = ["env.n_players=6", "env.n_traitors=1", "env.discussion_passes=1"]


class _Agent:
    aid = "p1"
    alive = True


def _req(action_cls: type[BaseModel], validate=None) -> ActRequest:
    return ActRequest(_Agent(), "vote", action_cls, "obs", lambda: None, validate=validate)  # type: ignore[arg-type]


def test_choices_hold_only_what_the_rules_accept():
    req = _req(vote_model(["p1", "p2", "p3"]), validate=lambda a: "dead" if a.target == "p3" else None)
    assert choices(req) == ["p1", "p2"]


def test_an_untouched_choice_is_not_an_answer():
    req = _req(vote_model(["p2", "p3"]))
    with pytest.raises(ValueError, match="untouched vote"):
        build_action(req, "choice", None)
    with pytest.raises(ValueError):
        build_action(req, "choice", "p9")
    assert build_action(req, "choice", "p3").target == "p3"


def test_text_and_yes_no_inputs():
    speech = _req(Speech)
    with pytest.raises(ValueError, match="write something"):
        build_action(speech, "speech", "   ")
    assert len(build_action(speech, "team", "x " * 200).text) == 160  # the schema's maxLength
    assert build_action(_req(RecruitAnswer), "yesno", "yes").accept is True
    with pytest.raises(ValueError):
        build_action(_req(RecruitAnswer), "yesno", None)


def test_describe_lines():
    assert describe(json.dumps({"text": "hello"})) == "hello"
    assert describe(json.dumps({"how": "banish", "pid": "p3", "revealed_role": "traitor"})) == \
        "how=banish, pid=p3, revealed_role=traitor"
    assert describe("not json") == "not json"


def _live(tmp_path, seat=None, extra=()):
    path = tmp_path / "run"
    cfg = to_dict(compose(["llm=scripted", f"run.dir={path}", "run.progress=off", *GAME, *extra]))
    return LiveRun(cfg, path, seat)


def test_next_phase_releases_exactly_one_phase(tmp_path):
    live = _live(tmp_path)
    try:
        assert live.settle(30) == "parked"
        assert (live.gate.tick, live.gate.phase) == (1, "breakfast")
        live.next_phase()
        assert live.settle(30) == "parked"
        assert (live.gate.tick, live.gate.phase) == (1, "roundtable")
    finally:
        live.finish(30)


def test_finish_while_the_seat_is_asked_ends_abandoned(tmp_path):
    live = _live(tmp_path, seat="p2")
    while live.settle(30) == "parked":
        live.next_phase()
    assert live.state() == "ask" and live.pending().purpose == "speak"
    assert live.finish(30)
    assert live.result.summary["status"] == "abandoned"
    assert json.loads((live.path / "summary.json").read_text())["status"] == "abandoned"


def test_finish_once_the_game_is_over_is_completed(tmp_path):
    live = _live(tmp_path)
    for _ in range(200):
        assert live.settle(30) == "parked"
        if live.sim.env.is_done():
            break
        live.next_phase()
    assert live.finish(30)
    assert live.result.summary["status"] == "completed"
    assert live.result.summary["outcome"]["winner"] in ("faithful", "traitors")
