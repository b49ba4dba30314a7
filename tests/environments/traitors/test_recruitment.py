"""Optional recruitment: after a traitor is banished the surviving traitors may turn a faithful."""
from __future__ import annotations

import json

import pytest

import sim
from environments.traitors import metrics as tm
from sim.runner import Simulation
from sim.config import compose, to_dict

BASE = ["env=traitors", "llm=scripted", "run.dir=null", "env.n_players=10", "env.n_traitors=3",
        "env.recruitment=true"]


def _payloads(ev, kind, vis=None):
    sub = ev.filter(ev["kind"] == kind)
    if vis is not None:
        sub = sub.filter(sub["visibility"] == vis)
    return [(t, json.loads(p)) for t, p in zip(sub["tick"], sub["payload"])]


def _games(extra, seeds=range(60)):
    for s in seeds:
        yield s, sim.run([*BASE, *extra, f"seed={s}"], progress=False)


def test_offer_follows_a_banished_traitor_and_targets_an_alive_faithful():
    seen = 0
    for _, r in _games(["env.recruit_accept_below_honesty=0"], range(25)):
        ev = r.events
        offers = _payloads(ev, "recruit_offer")
        banished = {t: p["pid"] for t, p in _payloads(ev, "elimination") if p["how"] == "banish"}
        roles = {p["pid"]: p["role"] for _, p in _payloads(ev, "role")}
        for t, p in offers:
            seen += 1
            assert roles[banished[t]] == "traitor"  # only after a traitor's banishment
            assert roles[p["pid"]] == "faithful"
            off_seq = ev.filter((ev["kind"] == "recruit_offer") & (ev["tick"] == t))["seq"][0]
            el = ev.filter((ev["kind"] == "elimination") & (ev["seq"] < off_seq))
            assert p["pid"] not in {json.loads(x)["pid"] for x in el["payload"]}
            vis = ev.filter(ev["kind"] == "recruit_offer")["visibility"].to_list()
            assert all(v.startswith("private:") for v in vis)
        # every round whose banishment removed a traitor, with traitors left and no winner yet, has an offer
        assert len(offers) <= len([t for t, pid in banished.items() if roles[pid] == "traitor"])
    assert seen >= 3


def test_refused_offer_changes_nothing():
    for _, r in _games(["env.recruit_accept_below_honesty=0"], range(20)):
        ans = _payloads(r.events, "recruit")
        # the refusing candidate keeps a private record of its own answer
        assert [p["pid"] for _, p in ans] == [p["pid"] for _, p in _payloads(r.events, "recruit_answer")]
        assert all(not p["accepted"] for _, p in ans)
        assert not any(p.get("via") for _, p in _payloads(r.events, "role"))
        assert tm.roles(r.events) == tm.initial_roles(r.events)


def test_accepted_recruit_becomes_a_traitor_and_joins_the_team_channel():
    for seed, r in _games(["env.recruit_accept_below_honesty=1"]):
        ev = r.events
        acc = [(t, p) for t, p in _payloads(ev, "recruit", "team:traitors") if p["accepted"]]
        if not acc:
            continue
        t, p = acc[0]
        pid = p["pid"]
        assert tm.roles(ev)[pid] == "traitor" and tm.initial_roles(ev)[pid] == "faithful"
        assert (t, {"pid": pid, "role": "traitor", "via": "recruitment"}) in _payloads(ev, "role", f"private:{pid}")
        # from the turn on, the recruit votes at night with the traitors while alive
        gone = {tt: q["pid"] for tt, q in _payloads(ev, "elimination") if q["pid"] == pid}
        for u in sorted({tt for tt, q in _payloads(ev, "vote") if q["vote_kind"] == "murder" and tt >= t}):
            if not gone or min(gone) > u:
                assert pid in {q["voter"] for tt, q in _payloads(ev, "vote") if tt == u and q["vote_kind"] == "murder"}
        # the recruit's memory holds team-channel events from after the turn, none from before
        cfg = to_dict(compose([*BASE, "env.recruit_accept_below_honesty=1", f"seed={seed}",
                               "agent.memory.scripted=true"]))
        s = Simulation(cfg, None)
        s.run(progress=False)
        agent = s.env.by_id[pid]
        assert agent.role == "traitor" and "traitors" in agent.teams
        team_seqs = set(ev.filter(ev["visibility"] == "team:traitors")["seq"].to_list())
        got = {m.source_seq for m in agent.memory.records() if m.source_seq in team_seqs}
        first_team_seq_after = min(ev.filter((ev["visibility"] == "team:traitors") & (ev["tick"] >= t))["seq"])
        assert got and min(got) >= first_team_seq_after
        return
    pytest.fail("no seed produced an accepted recruitment")


def test_scripted_answer_follows_persona_honesty():
    # the threshold is the only thing deciding scripted answers: 0 -> never, 1 -> always
    never = [p["accepted"] for _, r in _games(["env.recruit_accept_below_honesty=0"], range(15))
             for _, p in _payloads(r.events, "recruit", "team:traitors")]
    always = [p["accepted"] for _, r in _games(["env.recruit_accept_below_honesty=1"], range(15))
              for _, p in _payloads(r.events, "recruit", "team:traitors")]
    assert never and not any(never)
    assert always and all(always)


def test_recruitment_off_by_default():
    for s in range(8):
        r = sim.run(["env=traitors", "llm=scripted", "run.dir=null", "env.n_players=10", "env.n_traitors=3",
                     f"seed={s}"], progress=False)
        assert r.events.filter(r.events["kind"].is_in(["recruit", "recruit_offer"])).height == 0
