import pytest

from environments.traitors import legibility as L
from tests.environments.traitors.test_metrics import belief, frame, setup

PLAYERS = ["p1", "p2", "p3", "p4", "p5"]
NAMES = {"p1": "Ada", "p2": "Bo", "p3": "Cy", "p4": "Di", "p5": "Ed"}


def speech(tick, pid, text, valid=True, topic="Who do you suspect?"):
    return {"tick": tick, "kind": "speech", "actor": pid,
            "payload": {"pid": pid, "text": text, "pass": 0, "topic": topic, "valid": valid}}


def game(rows, traitors=("p2",)):
    start = setup(PLAYERS, list(traitors))
    start[0]["payload"]["names"] = NAMES
    return frame(start + rows)


@pytest.mark.parametrize("text", [
    "I suspect p3, he dodged every question.",
    "Cy has been far too quiet; I do not trust him.",  # by name, any case
    "di changed her story twice",
])
def test_legible_speeches(text):
    assert L.speech_problems(text, NAMES) == []


@pytest.mark.parametrize("text,problem", [
    ("1. 1. 2. 2. 3. 3. 4. 4. 5. 5. 6. 6. 7. 7. 8. 8. 9. 9. 10. 10.", "names nobody"),
    ('JSON: { "data": { "name": "Bo", "role": "P1"', "markup"),
    ("Memories: - [t1 elimination] host: how=banish pid=p1 revealed_role=faithful", "scaffolding"),
    ("I am a FAITHFUL player and p3 is lying", "scaffolding"),
    ("p3!", "length"),
    ("p3 " + "really " * 45 + "lies", "length"),
    ("I trust everyone here today.", "names nobody"),
    ("Alive: p1 (Ada), p2 (Bo). I vote p2", "scaffolding"),
    ("Your seat is p5. I doubt p2 today.", "scaffolding"),  # the small profile's seat line echoed
    ("You are faithful. I doubt p2 today.", "scaffolding"),  # the role sentence echoed
    ("Goal: find the traitors, p2 first.", "scaffolding"),
    ("p2 is **definitely** the traitor", "markup"),
])
def test_illegible_speeches(text, problem):
    assert problem in L.speech_problems(text, NAMES)


def test_naming_only_oneself_is_naming_nobody():
    assert "names nobody" in L.speech_problems("I am Ed and I am loyal to all.", NAMES, speaker="p5")
    assert L.speech_problems("I am Ed and I doubt Cy.", NAMES, speaker="p5") == []


def test_names_are_whole_words():
    # "Edward" is not Ed, "p10" is not p1
    assert "names nobody" in L.speech_problems("Edward said p10 was odd", NAMES)


def test_legible_share_counts_fallbacks_as_not_legible():
    ev = game([speech(1, "p1", "I suspect p3, he dodged."),
               speech(1, "p2", "I have doubts about p4.", valid=False),  # fallback text: not the agent's
               speech(1, "p3", "{\"text\": \"p1\"}"),
               speech(1, "p4", "Bo is the one, I am sure of it.")])
    assert L.legible_speech_share(ev) == pytest.approx(0.5)


def test_no_speeches_is_undefined():
    assert L.legible_speech_share(game([])) is None


def test_spearman_basics():
    assert L.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert L.spearman([4, 3, 2, 1], [1, 2, 3, 4]) == pytest.approx(-1.0)
    assert L.spearman([1, 1, 1], [1, 2, 3]) is None  # no spread
    assert L.spearman([1, 2], [1, 2]) is None  # too few points
    # ties share their mean rank
    assert L.spearman([0, 0, 1, 1], [0, 0, 1, 1]) == pytest.approx(1.0)


def test_seat_ramp_scores_one_and_truth_rho():
    ramp = {"p2": 0.1, "p3": 0.2, "p4": 0.3, "p5": 0.4}
    sharp = {"p2": 0.9, "p3": 0.1, "p4": 0.2, "p5": 0.1}  # p2 is the traitor
    ev = game([belief(1, "p1", ramp), belief(1, "p3", {"p1": 0.1, "p2": 0.9, "p4": 0.2, "p5": 0.1})])
    out = L.belief_informativeness(ev)
    # p1's ramp: |rho| = 1; p3's: p1=.1 p2=.9 p4=.2 p5=.1 against seats 0,1,3,4
    r3 = abs(L.spearman([0.1, 0.9, 0.2, 0.1], [0, 1, 3, 4]))
    assert out["belief_seat_rho"] == pytest.approx((1.0 + r3) / 2)
    truth = L.belief_informativeness(game([belief(1, "p1", sharp)]))["belief_truth_rho"]
    assert truth == pytest.approx(L.spearman([0.9, 0.1, 0.2, 0.1], [1, 0, 0, 0]))
    assert truth > 0.8


def test_traitor_raters_do_not_count_for_truth():
    ev = game([belief(1, "p2", {"p1": 0.1, "p3": 0.5, "p4": 0.2, "p5": 0.9})])
    out = L.belief_informativeness(ev)
    assert out["belief_truth_rho"] is None and out["belief_seat_rho"] is not None


def test_invalid_beliefs_are_left_out():
    ev = game([belief(1, "p1", {"p2": 0.1, "p3": 0.2, "p4": 0.3, "p5": 0.4}, valid=False)])
    assert L.belief_informativeness(ev) == {"belief_seat_rho": None, "belief_truth_rho": None}


def test_sample_speeches_one_per_round_legible_only():
    ev = game([speech(1, "p1", "JSON {}"), speech(1, "p3", "I suspect p2 of lying."),
               speech(1, "p4", "And I suspect p5 too."), speech(2, "p5", "Di is hiding something."),
               speech(2, "p2", "Let us murder p1.", topic="conclave")])
    got = [s["text"] for s in L.sample_speeches(ev)]
    assert got == ["I suspect p2 of lying.", "Di is hiding something."]


def test_story_tells_rounds_speeches_and_winner():
    from environments.traitors.texts import story

    ev = game([speech(1, "p1", "I suspect p2 of lying."),
               {"tick": 1, "kind": "elimination", "payload": {"pid": "p3", "how": "banish", "revealed_role": "faithful"}},
               {"tick": 1, "kind": "elimination", "payload": {"pid": "p4", "how": "murder", "revealed_role": "faithful"}},
               {"tick": 2, "kind": "elimination", "payload": {"pid": "p2", "how": "banish", "revealed_role": "traitor"}},
               {"tick": 2, "kind": "game_end", "payload": {"winner": "faithful", "rounds": 2}}])
    lines = story(ev)
    assert lines[1] == "  Round 1: p3 (Cy) banished, a faithful; p4 (Di) murdered at night, a faithful."
    assert lines[2] == '    p1 (Ada) said: "I suspect p2 of lying."'
    assert lines[3].startswith("  Round 2: p2 (Bo) banished, a traitor")
    assert lines[-1] == "  Winner: the faithful (the traitors were p2 (Bo))."


def test_agora_run_prints_the_story_and_the_dashboard_command(tmp_path, capsys):
    from sim.cli import main

    assert main(["run", "env=traitors", "llm=scripted", f"run.dir={tmp_path}/g", "seed=3", "env.n_players=6",
                 "env.n_traitors=1"]) == 0
    out = capsys.readouterr().out
    assert "The story:" in out and "  Round 1: " in out and "Winner: the " in out
    assert f"dashboard: agora dashboard --runs {tmp_path}" in out


def test_copying_an_earlier_speech_or_a_speaker_label_is_not_legible():
    assert "copy" in L.speech_problems("I suspect p2 of lying.", NAMES, "p4", earlier=["I suspect p2 of lying!"])
    assert L.speech_problems("I suspect p2 of lying.", NAMES, "p4", earlier=["Bo is fine."]) == []
    assert "scaffolding" in L.speech_problems("p1 (Ada): I suspect p4, he dodged.", NAMES, "p3")
    ev = game([speech(1, "p1", "I suspect p3, he dodged."), speech(1, "p4", "I suspect p3, he dodged.")])
    assert L.legible_speech_share(ev) == pytest.approx(0.5)


def test_speech_mode_is_labelled_in_the_outcome_keys_and_the_story():
    from environments.traitors.texts import story

    grammar = [{**speech(1, "p1", "I suspect p3 of lying."), "payload": {
        **speech(1, "p1", "I suspect p3 of lying.")["payload"], "mode": "grammar"}}]
    assert L.legibility(game(grammar))["speech_mode"] == "grammar"
    assert "env.speech=grammar" in story(game(grammar))[0]
    free = [speech(1, "p1", "I suspect p3 of lying.")]  # logs without a mode are free text
    assert L.legibility(game(free))["speech_mode"] == "free" and story(game(free))[0] == "The story:"
    assert L.speech_mode(game(grammar + [speech(1, "p3", "Bo lies, I think.")])) == "mixed"


def test_belief_form_rho_measures_answering_by_position():
    # a ramp along the form's shuffled order: no seat ramp, but a perfect position ramp
    order = ["p4", "p2", "p5", "p3"]
    row = belief(1, "p1", {p: (i + 1) / 10 for i, p in enumerate(order)})
    row["payload"] |= {"form": "top", "order": order}
    out = L.legibility(game([row]))
    assert out["belief_form_rho"] == pytest.approx(1.0)
    assert out["belief_seat_rho"] < 1.0


def test_top_suspect_form_derives_three_levels_and_trust():
    from environments.traitors import forms

    cls = forms.top_belief_model(["p3", "p2", "p4"])
    assert list(cls.model_json_schema()["properties"]["suspect"]["enum"]) == ["p3", "p2", "p4"]  # shown order
    probs, trust = forms.top_values(cls(suspect="p2", trust="p4"), ["p2", "p3", "p4"])
    assert probs == {"p2": 0.7, "p3": 0.3, "p4": 0.1}
    assert trust["p2"] == 0 and trust["p4"] == 4 and sum(trust.values()) == 10
    probs, _ = forms.top_values(cls(suspect="p2", trust="p2"), ["p2", "p3", "p4"])
    assert probs == {"p2": 0.7, "p3": 0.3, "p4": 0.3}  # one player as both: a suspect only


@pytest.mark.parametrize("text,ok", [("I have doubts about p3.", True), ("So Cy is gone. Let us watch.", True),
                                     ("Memories: p3", False), ("I like Cyrus", False), ('I doubt {p3}', False),
                                     ("p3 lies", False), ("Let us take out p4.", True),
                                     ("I doubt p3 because they were quie", True)])
def test_guided_speech_pattern_names_a_player_in_plain_words(text, ok):
    from pydantic import ValidationError

    from environments.traitors import forms

    cls = forms.guided_speech_model(["p3", "Cy", "p4", "Di"])
    if ok:
        assert cls(text=text).text == text
    else:
        with pytest.raises(ValidationError):
            cls(text=text)
