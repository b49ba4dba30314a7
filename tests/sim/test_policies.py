"""Policies at the act seam: who answers is per agent (llm endpoint, scripted, human seat)."""
from __future__ import annotations

import json
import threading

import polars as pl
import pytest

import sim
from sim.config import compose, to_dict
from sim.engine import HumanSeat
from sim.runner import Simulation
from sim.testing.loopback import LoopbackServer

CASES = [  # env, role, overrides for a short run
    ("traitors", "traitor", ["env.n_players=5", "env.n_traitors=1", "env.max_rounds=1"]),
    ("taxation", "worker", ["env.n_workers=4", "env.ticks=2"]),
    ("taxation", "planner", ["env.n_workers=4", "env.ticks=2", "env.planner=llm"]),
    ("market", "trader", ["env.n_traders=4", "env.ticks=2"]),
]


@pytest.fixture(scope="module")
def srv():
    with LoopbackServer() as s:
        yield s


@pytest.mark.parametrize("env,role,extra", CASES)
def test_llm_by_role_reaches_the_role_model_under_a_scripted_default(srv, env, role, extra):
    """With llm=scripted, a role mapped to a model reaches that model, and the run is labelled an LLM run."""
    ep = (f"{{provider: openai, model: role-model, base_url: '{srv.base_url}', api_key_env: null, "
          "schema_mode: json_schema, max_retries: 0, prices: {role-model: {input_per_mtok: 1, output_per_mtok: 2}}}")
    res = sim.run([f"env={env}", "llm=scripted", "run.dir=null", *extra, f"+agent.llm_by_role.{role}={ep}"])
    led = res.ledger
    sent = led.filter(pl.col("endpoint") == f"role:{role}")
    assert sent.height and set(sent.filter(pl.col("provider") == "openai")["model"]) == {"role-model"}
    assert res.summary["llm"]["policies"]["llm"] >= 1
    answered = led.filter((pl.col("provider") == "openai") & (pl.col("outcome") == "ok")).height
    assert res.summary["llm"]["is_llm"] is (answered > 0)


def test_scripted_run_is_not_an_llm_run():
    res = sim.run(["llm=scripted", "run.dir=null", "env.n_players=5", "env.n_traitors=1", "env.max_rounds=1"])
    assert res.summary["llm"]["is_llm"] is False
    assert res.summary["llm"]["policies"] == {"llm": 0, "scripted": 5, "human": 0}


def test_all_invalid_llm_replies_do_not_make_an_llm_run(srv):
    """is_llm comes from answered calls in the ledger, not from the configured provider's name."""
    with LoopbackServer(responder=lambda body: "not json at all") as bad:
        res = sim.run(["llm=openai", f"llm.base_url={bad.base_url}", "llm.api_key_env=null", "llm.model=m",
                       "+llm.prices.m={input_per_mtok: 1, output_per_mtok: 1}", "llm.max_retries=0",
                       "run.dir=null", "env.n_players=5", "env.n_traitors=1", "env.max_rounds=1",
                       "env.discussion_passes=1", "agent.reflection.enabled=false"])
    assert res.summary["llm"]["is_llm"] is False
    assert res.summary["llm"]["policies"]["llm"] == 5


def _play(seat_id: str, answer, cfg_over: list[str]):
    """Run a session with a human seat on a background thread; the caller's ``answer`` decides each request."""
    cfg = to_dict(compose(["llm=scripted", "run.dir=null", *cfg_over]))
    s = Simulation(cfg, None)
    seat = HumanSeat(seat_id)
    out: dict = {}

    def go():
        s.start(humans={seat_id: seat})
        while s.step():
            pass
        out["result"] = s.finish()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    asked = []
    while t.is_alive():
        req = seat.wait_pending(timeout=0.2)
        if req is not None:
            asked.append(req.purpose)
            seat.answer(answer(req))
    t.join()
    return out["result"], asked


def test_human_seat_answers_through_the_queue():
    def answer(req):
        if req.purpose in ("speak", "react"):
            return req.action_cls(text="I am the human and I trust nobody.")
        if req.purpose == "vote":
            return req.action_cls(target=req.action_cls.model_json_schema()["properties"]["target"]["enum"][0])
        return None  # beliefs etc.: the seat's scripted answer

    res, asked = _play("p1", answer, ["env.n_players=6", "env.n_traitors=1", "env.discussion_passes=1"])
    assert res.summary["status"] == "completed"
    assert "speak" in asked and "vote" in asked, asked
    ev = res.events
    human = [json.loads(p) for p in ev.filter(pl.col("kind") == "human_action")["payload"]]
    assert {h["source"] for h in human} == {"human", "scripted"}
    speeches = [json.loads(p) for p in ev.filter(pl.col("kind") == "speech")["payload"]]
    assert any(sp["pid"] == "p1" and sp["text"].startswith("I am the human") for sp in speeches)
    assert res.summary["llm"]["policies"]["human"] == 1


def test_invalid_human_answer_falls_back_to_the_seat_script():
    def answer(req):
        if req.purpose == "vote":
            return req.action_cls.model_construct(target="p1")  # a vote for oneself is refused by the rules
        return None

    res, _ = _play("p1", answer, ["env.n_players=6", "env.n_traitors=1", "env.discussion_passes=1"])
    votes = [json.loads(p) for p in res.events.filter(pl.col("kind") == "vote")["payload"]]
    assert all(not (v["voter"] == "p1" and v["target"] == "p1") for v in votes)


def test_closing_a_seat_ends_the_run_abandoned():
    cfg = to_dict(compose(["llm=scripted", "run.dir=null", "env.n_players=6", "env.n_traitors=1"]))
    s = Simulation(cfg, None)
    seat = HumanSeat("p2")
    box: dict = {}

    def go():
        s.start(humans={"p2": seat})
        try:
            while s.step():
                pass
        except Exception as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    assert seat.wait_pending(timeout=30) is not None
    seat.close()
    t.join(30)
    from sim.engine import SeatClosed

    assert isinstance(box.get("error"), SeatClosed)
    res = s.finish(status="abandoned")
    assert res.summary["status"] == "abandoned"


def test_phase_gate_steps_a_run_one_phase_at_a_time():
    from sim.engine import PhaseGate

    cfg = to_dict(compose(["llm=scripted", "run.dir=null", "env.n_players=6", "env.n_traitors=1"]))
    s = Simulation(cfg, None)
    gate = PhaseGate()
    done = threading.Event()

    def go():
        s.start(after_phase=gate)
        while s.step():
            pass
        done.set()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    seen = []
    for _ in range(3):
        assert gate.wait_parked(timeout=30)
        seen.append((gate.tick, gate.phase))
        n = len(s.events)
        gate.release()
        while gate.waiting and gate.phase == seen[-1][1]:  # let it leave the boundary
            if not t.is_alive():
                break
            t.join(0.01)
        assert len(s.events) >= n
    assert seen[:3] == [(1, "breakfast"), (1, "roundtable"), (1, "belief")]
    gate.open()
    t.join(60)
    assert done.is_set()
    assert s.finish().summary["status"] == "completed"
