"""Belief probe formats: compact lists (default) and keyed maps carry the same information."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

import sim
from environments.traitors.actions import belief_model, belief_values


def test_list_format_validates_length_and_range_and_converts():
    cls = belief_model(["p2", "p3", "p4"], "list")
    a = cls(suspicion=[0, 5, 10], trust=[6, 4, 0])
    assert belief_values(a, ["p2", "p3", "p4"]) == ({"p2": 0.0, "p3": 0.5, "p4": 1.0}, {"p2": 6, "p3": 4, "p4": 0})
    for bad in ({"suspicion": [0, 5], "trust": [6, 4, 0]}, {"suspicion": [0, 5, 11], "trust": [6, 4, 0]},
                {"suspicion": [0, 5, 1], "trust": [6, 4, 0, 0]}):
        with pytest.raises(ValidationError):
            cls.model_validate(bad)
    keyed = belief_model(["p2", "p3"], "keyed")
    k = keyed.model_validate({"traitor_percent": {"p2": 30, "p3": 70}, "trust": {"p2": 7, "p3": 3}})
    assert belief_values(k, ["p2", "p3"]) == ({"p2": 0.3, "p3": 0.7}, {"p2": 7, "p3": 3})


def test_scripted_games_give_identical_beliefs_in_both_formats():
    base = ["env=traitors", "llm=scripted", "run.dir=null", "seed=5", "env.n_players=8", "env.n_traitors=2"]
    a = sim.run([*base, "env.belief_format=list"], progress=False).events
    b = sim.run([*base, "env.belief_format=keyed"], progress=False).events
    pick = lambda ev: ev.filter(ev["kind"] == "belief").select("tick", "actor", "payload")  # noqa: E731
    assert pick(a).height > 0 and pick(a).equals(pick(b))
