import json
import math

import networkx as nx
import polars as pl
import pytest

from environments.traitors import metrics as M

SCHEMA = {"seq": pl.Int64, "tick": pl.Int64, "phase": pl.Utf8, "actor": pl.Utf8, "kind": pl.Utf8,
          "payload": pl.Utf8, "visibility": pl.Utf8}


def frame(rows: list[dict]) -> pl.DataFrame:
    """Events frame from dicts {tick, kind, payload, [phase, actor, visibility]}; seq = list order."""
    out = []
    for seq, r in enumerate(rows):
        out.append({"seq": seq, "tick": r["tick"], "phase": r.get("phase", r["kind"]),
                    "actor": r.get("actor", "engine"), "kind": r["kind"],
                    "payload": json.dumps(r["payload"], sort_keys=True),
                    "visibility": r.get("visibility", "public")})
    return pl.DataFrame(out, schema=SCHEMA)


def setup(players, traitors):
    rows = [{"tick": 0, "kind": "game_start",
             "payload": {"players": players, "names": {p: p for p in players}, "n_traitors": len(traitors)}}]
    rows += [{"tick": 0, "kind": "role", "visibility": f"private:{p}",
              "payload": {"pid": p, "role": "traitor" if p in traitors else "faithful"}} for p in players]
    return rows


def belief(tick, pid, beliefs, trust=None, valid=True):
    return {"tick": tick, "kind": "belief", "visibility": f"private:{pid}",
            "payload": {"pid": pid, "beliefs": beliefs, "trust": trust or {}, "valid": valid}}


def vote(tick, kind, voter, target, valid=True):
    return {"tick": tick, "kind": "vote", "payload": {"vote_kind": kind, "voter": voter, "target": target,
                                                     "valid": valid}}


def elim(tick, pid, how, role):
    return {"tick": tick, "kind": "elimination", "payload": {"pid": pid, "how": how, "revealed_role": role}}


# N=6, T=2 (p5, p6). Round 1: p5 banished (one bus vote p5->p6), p1 murdered.
# Round 2: p6 banished, faithful win. Expected values are worked out by hand below.
def game() -> pl.DataFrame:
    rows = setup([f"p{k}" for k in range(1, 7)], {"p5", "p6"})
    rows += [
        belief(1, "p1", {"p2": .1, "p3": .1, "p4": .2, "p5": .9, "p6": .7},
               {"p2": 3, "p3": 3, "p4": 2, "p5": 1, "p6": 1}),
        belief(1, "p2", {"p1": .2, "p3": .4, "p4": .4, "p5": .5, "p6": .5}),
        belief(1, "p5", {"p1": .9, "p2": .9, "p3": .1, "p4": .1, "p6": 0.0}),  # a traitor: ignored
        belief(1, "p3", {"p1": .9}, valid=False),  # a fallback answer: ignored
        vote(1, "banish", "p1", "p5"), vote(1, "banish", "p2", "p5"), vote(1, "banish", "p3", "p4"),
        vote(1, "banish", "p4", "p5"), vote(1, "banish", "p5", "p6"), vote(1, "banish", "p6", "p4"),
        {"tick": 1, "kind": "vote_result", "payload": {"vote_kind": "banish", "counts": {"p5": 3, "p4": 2, "p6": 1},
                                                     "target": "p5", "tie": False}},
        elim(1, "p5", "banish", "traitor"),
        vote(1, "murder", "p6", "p1"),
        elim(1, "p1", "murder", "faithful"),
        belief(2, "p2", {"p3": .2, "p4": .2, "p6": .6}, {"p3": 4, "p4": 4, "p6": 2}),
        belief(2, "p3", {"p2": .5, "p4": .3, "p6": .7}),
        vote(2, "banish", "p2", "p6"), vote(2, "banish", "p3", "p6"), vote(2, "banish", "p4", "p2"),
        vote(2, "banish", "p6", "p4", valid=False),
        elim(2, "p6", "banish", "traitor"),
        {"tick": 2, "kind": "game_end", "payload": {"winner": "faithful", "rounds": 2, "status": "done"}},
    ]
    return frame(rows)


# N=4, T=1 (p4). The traitor's vote tips a faithful banishment; then the murder ends it.
def steered_game() -> pl.DataFrame:
    rows = setup(["p1", "p2", "p3", "p4"], {"p4"})
    rows += [
        vote(1, "banish", "p1", "p2"), vote(1, "banish", "p2", "p3"), vote(1, "banish", "p3", "p2"),
        vote(1, "banish", "p4", "p2"), elim(1, "p2", "banish", "faithful"),
        vote(1, "murder", "p4", "p3"), elim(1, "p3", "murder", "faithful"),
        {"tick": 1, "kind": "game_end", "payload": {"winner": "traitors", "rounds": 1, "status": "done"}},
    ]
    return frame(rows)


# ----- helpers -----------------------------------------------------------------------


def test_roles_and_frames():
    ev = game()
    assert M.roles(ev) == {"p1": "faithful", "p2": "faithful", "p3": "faithful", "p4": "faithful",
                           "p5": "traitor", "p6": "traitor"}
    v = M.votes_frame(ev)
    assert v.height == 11 and v.filter(pl.col("vote_kind") == "murder").height == 1
    row = v.filter((pl.col("voter") == "p5") & (pl.col("tick") == 1)).row(0, named=True)
    assert (row["target"], row["voter_role"], row["target_role"]) == ("p6", "traitor", "traitor")
    e = M.eliminations_frame(ev)
    assert e["pid"].to_list() == ["p5", "p1", "p6"] and e["role"].to_list() == ["traitor", "faithful", "traitor"]
    b = M.beliefs_frame(ev)
    assert set(b["i"].unique()) == {"p1", "p2", "p3", "p5"} and b.height == 5 * 3 + 3 + 3
    r = b.filter((pl.col("i") == "p1") & (pl.col("j") == "p4")).row(0, named=True)
    assert (r["p"], r["trust"], r["w"], r["i_role"], r["j_role"]) == (0.2, 2.0, 0.2, "faithful", "faithful")
    r = b.filter((pl.col("i") == "p2") & (pl.col("j") == "p1") & (pl.col("tick") == 1)).row(0, named=True)
    assert r["trust"] is None and r["w"] == pytest.approx(0.8)


def test_recruitment_changes_role_from_that_point():
    rows = setup(["p1", "p2", "p3", "p4", "p5"], {"p5"})
    rows += [vote(1, "banish", "p1", "p5"),
             {"tick": 1, "kind": "recruit", "payload": {"pid": "p1", "accepted": True}},
             vote(2, "banish", "p1", "p2")]
    v = M.votes_frame(frame(rows))
    assert v["voter_role"].to_list() == ["faithful", "traitor"]
    assert M.roles(frame(rows))["p1"] == "traitor" and M.initial_roles(frame(rows))["p1"] == "faithful"


def test_alive_counts_at_banishment():
    a = M.alive_at_banish(game())
    assert a.rows() == [(1, 6, 2), (2, 4, 1)]


# ----- per-round metrics ---------------------------------------------------------------


def test_round_metrics_by_hand():
    rm = M.round_metrics(game())
    r1, r2 = rm.row(0, named=True), rm.row(1, named=True)
    assert (r1["tick"], r1["banished"], r1["banished_role"], r1["murdered"]) == (1, "p5", "traitor", "p1")
    assert r1["fcr"] == pytest.approx(0.75) and r2["fcr"] == pytest.approx(2 / 3)
    assert r1["chance"] == pytest.approx(0.4) and r2["chance"] == pytest.approx(1 / 3)
    assert r1["fcr_lift"] == pytest.approx(0.35) and r2["fcr_lift"] == pytest.approx(1 / 3)
    assert r1["fas"] == pytest.approx(0.75)
    assert r1["vote_entropy"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert r1["crowd_gain"] == pytest.approx(0.25)  # plurality hit a traitor, 3/4 of votes did
    assert r1["bus_rate"] == pytest.approx(0.5) and r2["bus_rate"] == 0.0
    assert r1["tas"] == 1.0 and r1["night_unanimous"] == 1.0 and r2["night_unanimous"] is None
    assert r1["mis_banish"] == 0.0 and r1["steered"] == 0.0
    # suspicion on traitors (.9,.7,.5,.5) minus on faithful (.1,.1,.2,.2,.4,.4)
    assert r1["suspicion_gap"] == pytest.approx(0.65 - 1.4 / 6)
    assert r2["suspicion_gap"] == pytest.approx(0.65 - 0.3)
    # in-trust on traitors (.1,.1,.5,.5) over in-trust on faithful (.3,.3,.2,.8,.6,.6)
    assert r1["traitor_trust_share"] == pytest.approx(0.3 / (2.8 / 6))
    assert r1["brier"] == pytest.approx(1.02 / 10) and r1["brier_skill"] == pytest.approx(1 - 0.102 / 0.24)
    assert r1["ece"] == pytest.approx(0.28)
    assert r1["auroc"] == 1.0
    assert r1["coherence"] == pytest.approx(0.0) and r2["coherence"] == pytest.approx(0.25)
    assert r1["volatility"] is None and r2["volatility"] == pytest.approx(0.7 / 3)
    # above-prior edges: p1->p2, p1->p3, p2->p1 and traitor p5->p3, p4, p6: one mutual pair in 6
    assert r1["reciprocity"] == pytest.approx(1 / 3) and r2["reciprocity"] == 0.0
    assert r1["vsf"] is None and r2["vsf"] == 0.75  # p2, p3, p4 changed; p6 kept p4


def test_steered_banishment_and_unanimous_night():
    rm = M.round_metrics(steered_game()).row(0, named=True)
    assert rm["steered"] == 1.0 and rm["mis_banish"] == 1.0 and rm["night_unanimous"] == 1.0
    g = M.game_metrics(steered_game())
    assert g["faithful_win"] == 0.0 and g["banish_precision"] == 0.0 and g["tsr"] == 1.0
    assert g["steered_banish_rate"] == 1.0 and g["fcr"] == 0.0


def test_split_night_vote_is_not_unanimous():
    rows = setup(["p1", "p2", "p3", "p4", "p5", "p6", "p7"], {"p6", "p7"})
    rows += [vote(1, "murder", "p6", "p1"), vote(1, "murder", "p7", "p2"), elim(1, "p1", "murder", "faithful")]
    rm = M.round_metrics(frame(rows)).row(0, named=True)
    assert rm["night_unanimous"] == 0.0 and rm["tas"] == 0.5


# ----- game metrics --------------------------------------------------------------------


def test_game_metrics_headlines():
    g = M.game_metrics(game())
    assert g["faithful_win"] == 1.0 and g["rounds"] == 2.0
    assert g["tsr"] == 0.0 and g["fsr"] == 0.75
    assert g["mis_banish_rate"] == 0.0 and g["banish_precision"] == 1.0
    assert g["bus_rate"] == pytest.approx(1 / 3)  # 1 of 3 traitor day votes hit a traitor
    assert g["fcr"] == pytest.approx((0.75 + 2 / 3) / 2)
    assert g["fcr_lift"] == pytest.approx((0.35 + 1 / 3) / 2)
    assert g["suspicion_gap"] == pytest.approx(((0.65 - 1.4 / 6) + 0.35) / 2)
    # pooled over 16 pairs: BS = 1.69/16, BS0 = (10 * .24 + 6 * 2/9) / 16
    assert g["brier"] == pytest.approx(1.69 / 16)
    assert g["brier_skill"] == pytest.approx(1 - 1.69 / (2.4 + 6 * 2 / 9))
    # faithful trust in p5 before reveal (.1,.5) and in p6 before reveal (.2,.3); nobody rates them after
    assert g["trust_drop_after_reveal"] == pytest.approx((0.3 + 0.25) / 2)
    assert g["invalid_vote_rate"] == pytest.approx(1 / 11)
    assert g["night_unanimity"] == 1.0
    assert all(v is None or (isinstance(v, float) and not math.isnan(v)) for v in g.values())


def test_game_metrics_empty_events_are_none_not_nan():
    g = M.game_metrics(pl.DataFrame(schema=SCHEMA))
    assert g["fcr"] is None and g["faithful_win"] is None and g["curvo_tas"] is None
    assert M.round_metrics(pl.DataFrame(schema=SCHEMA)).height == 0


# ----- belief scoring on known vectors --------------------------------------------------


def test_auroc_known_vectors():
    assert M.auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert M.auroc([0.1, 0.2, 0.9], [1, 1, 0]) == 0.0
    # positives (.8, .4), negatives (.4, .2): pairs win 1 + 1 + tie 0.5 + 1 = 3.5 of 4
    assert M.auroc([0.8, 0.4, 0.4, 0.2], [1, 1, 0, 0]) == pytest.approx(0.875)
    assert M.auroc([0.3, 0.5], [0, 0]) is None


def test_brier_logloss_ece_known_vectors():
    assert M.brier_score([1.0, 0.0, 0.5], [1, 0, 1]) == pytest.approx(0.25 / 3)
    assert M.log_loss([0.5], [1]) == pytest.approx(math.log(2))
    assert M.log_loss([0.0], [1]) == pytest.approx(-math.log(1e-3))  # clipped, finite
    # perfectly calibrated bin: p=.25 on four cases, one positive
    assert M.expected_calibration_error([0.25] * 4, [1, 0, 0, 0]) == pytest.approx(0.0)
    assert M.expected_calibration_error([1.0, 1.0], [1, 0]) == pytest.approx(0.5)
    assert M.brier_skill(0.12, 0.24) == pytest.approx(0.5) and M.brier_skill(None, 0.2) is None


# ----- trust graphs --------------------------------------------------------------------


def test_trust_matrices_and_graphml(tmp_path):
    graphs = M.trust_matrices(game())
    assert sorted(graphs) == [1, 2]
    G1 = graphs[1]
    assert G1.nodes["p5"]["role"] == "traitor" and G1["p1"]["p2"]["weight"] == pytest.approx(0.3)
    assert G1["p2"]["p1"]["weight"] == pytest.approx(0.8)
    assert M.in_strength(G1)["p1"] == pytest.approx(0.8 + 0.1)  # from p2, and from traitor p5 (1 - .9)
    paths = M.write_graphml(graphs, tmp_path)
    assert [p.name for p in paths] == ["trust_round_1.graphml", "trust_round_2.graphml"]
    back = nx.read_graphml(paths[0])
    assert back.nodes["p6"]["role"] == "traitor" and back["p1"]["p2"]["weight"] == pytest.approx(0.3)


def test_vote_switching_on_banish_votes_only():
    s = M.vote_switching(game())
    assert s == {"vsf": 0.75, "tns": 0.25}  # Curvo's VSF says 1.0: it counts p6's night vote


# ----- Curvo's metrics (the paper's definitions) ---------------------------------------


def curvo_fixture() -> pl.DataFrame:
    """The 9-row votes.csv of Curvo's own unit test (tests/unit/test_utils.py)."""
    return pl.DataFrame({
        "Round": [1, 1, 1, 1, 1, 2, 2, 2, 2],
        "Vote_Type": ["General"] * 4 + ["Traitor"] + ["General"] * 3 + ["Traitor"],
        "Player_ID": [0, 1, 2, 3, 2, 0, 1, 3, 2],
        "Role": ["Faithful", "Faithful", "Traitor", "Faithful", "Traitor", "Faithful", "Faithful", "Faithful",
                 "Traitor"],
        "Vote_Target": [2, 2, 0, 2, 3, 1, 0, 0, 0],
        "Eliminated": [2, 2, 2, 2, 3, 1, 1, 1, 0],
    })


def test_curvo_golden_values():
    m = M.curvo_metrics(curvo_fixture())
    expected = {"tas": 1.0, "fas": 0.833, "fcr": 0.5, "tsr": 0.0, "fsr": 0.0, "des": 1.0, "idr": 0.5,
                "brr": 0.0, "vsf": 1.0, "tns": 0.0}
    for k, v in expected.items():
        assert m[k] == pytest.approx(v, abs=1e-3), k


def test_curvo_brr_counts_independent_detection():
    # Traitors 5 and 9 (from the Role column). Faithful votes 5, 5, 9, 5: all on traitors,
    # plurality 5, so only the vote on 9 is "independent": BRR = 1/4, FCR = 1.
    df = pl.DataFrame({
        "Round": [1] * 6, "Vote_Type": ["General"] * 6, "Player_ID": [1, 2, 3, 4, 5, 9],
        "Role": ["Faithful"] * 4 + ["Traitor"] * 2, "Vote_Target": [5, 5, 9, 5, 1, 1],
        "Eliminated": [5] * 6,
    })
    m = M.curvo_metrics(df)
    assert m["brr"] == pytest.approx(0.25) and m["fcr"] == 1.0 and m["idr"] == 1.0
    assert m["tsr"] == 0.5 and m["fsr"] == 1.0 and m["tas"] is None and m["des"] is None


def test_curvo_table_from_events():
    t = M.curvo_table(game())
    assert t.columns == list(M.CURVO_COLUMNS) and t.height == 11
    first = t.row(0, named=True)
    assert first == {"Round": 1, "Vote_Type": "General", "Player_ID": "p1", "Role": "Faithful",
                     "Vote_Target": "p5", "Eliminated": "p5"}
    night = t.filter(pl.col("Vote_Type") == "Traitor").row(0, named=True)
    assert night["Eliminated"] == "p1" and night["Role"] == "Traitor"
    m = M.curvo_metrics(t)
    assert m["tas"] == 1.0 and m["des"] == 1.0 and m["fsr"] == 0.75 and m["tsr"] == 0.0
    assert m["fas"] == pytest.approx((0.75 + 2 / 3) / 2) and m["brr"] == 0.0 and m["vsf"] == 1.0
    assert M.game_metrics(game())["curvo_fcr"] == pytest.approx(M.game_metrics(game())["fcr"])


# ----- budget --------------------------------------------------------------------------


def ledger() -> pl.DataFrame:
    return pl.DataFrame({
        "agent": ["p1", "p1", "p2", "p2"], "phase": ["roundtable", "banish_vote", "roundtable", "roundtable"],
        "purpose": ["speech", "vote", "speech", "speech"], "tokens_in": [100, 50, 80, 0],
        "tokens_out": [20, 5, 10, 0], "cost_nano": [2_000_000, 500_000, 1_500_000, 0],
        "outcome": ["ok", "ok", "ok", "denied"],
    })


def test_budget_tables():
    ph = M.budget_per_phase(ledger())
    rt = ph.filter(pl.col("phase") == "roundtable").row(0, named=True)
    assert (rt["attempts"], rt["ok_calls"], rt["tokens_in"], rt["tokens_out"]) == (3, 2, 180, 30)
    assert rt["usd"] == pytest.approx(0.0035)
    ag = M.budget_per_agent(ledger())
    assert ag["agent"].to_list() == ["p1", "p2"] and ag["usd"].to_list() == pytest.approx([0.0025, 0.0015])
    assert M.budget_totals(ledger())["usd"] == pytest.approx(0.004)


def test_usd_per_faithful_win():
    games = [{"winner": "faithful", "usd": 1.0}, {"winner": "traitors", "usd": 2.0},
             {"winner": None, "cost_nano": 1_000_000_000}]
    assert M.usd_per_faithful_win(games) == pytest.approx(4.0)
    assert M.usd_per_faithful_win([{"winner": "traitors", "usd": 1.0}]) is None


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]), st.integers(0, 1)), min_size=2, max_size=12))
def test_auroc_equals_pairwise_win_rate(pairs):
    p, y = [a for a, _ in pairs], [b for _, b in pairs]
    pos = [a for a, b in pairs if b == 1]
    neg = [a for a, b in pairs if b == 0]
    got = M.auroc(p, y)
    if not pos or not neg:
        assert got is None
        return
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg)
    assert got == pytest.approx(wins / (len(pos) * len(neg)))


def test_game_metrics_only_gives_the_full_calls_values():
    events = game()
    full = M.game_metrics(events)
    keys = ["tsr", "fcr", "fcr_lift", "suspicion_gap", "brier", "night_unanimity", "volatility",
            "trust_drop_after_reveal", "curvo_fas", "not_a_metric"]
    for k in keys:  # each key alone (its group computed or skipped on its own) and all together
        assert M.game_metrics(events, only=[k]) == {k: full.get(k)}
    assert M.game_metrics(events, only=keys) == {k: full.get(k) for k in keys}


def test_decoding_follows_the_frame_it_is_given():
    """The per-frame row cache never hands one frame's rows to another frame."""
    a, b = game(), frame(setup(["p1", "p2", "p3"], ["p3"]))
    assert len(M._decode(a, "role")) == 6 and len(M._decode(b, "role")) == 3
    assert len(M._decode(a, "role")) == 6  # back to the first frame
    assert M._decode(pl.DataFrame(schema=SCHEMA), "role") == []


def test_belief_informativeness_from_parsed_rows_equals_the_frame_group_by():
    """Computed from the parsed belief rows: the values of grouping ``beliefs_frame`` by (seq, rater)."""
    from environments.traitors.legibility import _mean, belief_informativeness, spearman

    events = game()
    bf = M.beliefs_frame(events).drop_nulls("p")
    assert bf.height > 0
    seat = {p: i for i, p in enumerate(M.players(events))}
    seat_rhos, truth_rhos = [], []
    for _, g in bf.group_by(["seq", "i"], maintain_order=True):
        p = g["p"].to_list()
        r = spearman(p, [seat.get(j, -1) for j in g["j"].to_list()])
        seat_rhos.append(None if r is None else abs(r))
        if g["i_role"][0] == M.FAITHFUL:
            truth_rhos.append(spearman(p, [float(x == M.TRAITOR) for x in g["j_role"].to_list()]))
    assert belief_informativeness(events) == {"belief_seat_rho": _mean(seat_rhos), "belief_truth_rho": _mean(truth_rhos)}


def test_a_frames_payloads_are_decoded_once_and_an_unsorted_frame_is_read_in_seq_order():
    events = game()
    assert M._decode(events, "vote") is M._decode(events, "vote")  # decoded once per frame
    assert M._parse(events) is M._parse(events)
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=1)
    assert M._decode(shuffled, "vote") == M._decode(events, "vote")
    assert M.game_metrics(shuffled) == M.game_metrics(events)
