"""Persona files: loading, seeded assignment, fill rules, clear errors, env-specific fields."""
from __future__ import annotations

import json

import numpy as np
import pytest

import sim
from agents.persona import PERSONA_DIR, PersonaFileError, load_persona_file, population
from sim.config import ConfigError


@pytest.mark.parametrize("name", sorted(p.stem for p in PERSONA_DIR.glob("*.yaml")))
def test_shipped_persona_files_load(name):
    ps = load_persona_file(name)
    assert ps and len({p.name for p in ps}) == len(ps)
    assert all(p.prefix().startswith(f"You are {p.name}, a {p.age}-year-old") for p in ps)


def test_population_from_file_is_seeded_and_prefix_byte_stable():
    a = population(8, np.random.default_rng(3), "castle")
    b = population(8, np.random.default_rng(3), "castle")
    c = population(8, np.random.default_rng(4), "castle")
    assert [p.name for p in a] == [p.name for p in b] != [p.name for p in c]
    assert {p.name for p in a} <= {p.name for p in load_persona_file("castle")}
    aisha = next(p for p in load_persona_file("castle") if p.name == "Aisha")
    assert "Background: hometown: Leeds; pronoun: she." in aisha.prefix()
    assert aisha.prefix().encode() == next(p for p in load_persona_file("castle") if p.name == "Aisha").prefix().encode()


def test_short_file_is_topped_up_or_refused():
    listed = {p.name for p in load_persona_file("traders")}
    ps = population(10, np.random.default_rng(0), "traders")
    assert len(ps) == 10 and len({p.name for p in ps}) == 10
    assert {p.name for p in ps} >= listed  # every file persona used, then generated ones
    with pytest.raises(PersonaFileError, match="lists 6 personas but the run needs 10"):
        population(10, np.random.default_rng(0), "traders", fill="error")


def test_no_file_keeps_the_generated_population():
    from agents.persona import sample_personas

    assert population(5, np.random.default_rng(9)) == sample_personas(5, np.random.default_rng(9))


@pytest.mark.parametrize("text, match", [
    ("personas:\n  - {name: A, age: 30}\n", r"personas\[0\] \(A\)\.profession: Field required"),
    ("personas:\n  - {name: A, age: 30, profession: x, honesty: 2}\n", r"personas\[0\] \(A\)\.honesty"),
    ("personas:\n  - {name: A, age: 30, profession: x, hobby: y}\n", r"\.hobby: Extra inputs"),
    ("personas:\n  - {name: A, age: 30, profession: x}\n  - {name: A, age: 31, profession: y}\n",
     r"personas\[1\]\.name='A' appears twice"),
    ("personas: [\n", "not valid YAML"),
    ("personas: []\n", "non-empty list"),
])
def test_malformed_file_names_file_entry_and_field(tmp_path, text, match):
    f = tmp_path / "mine.yaml"
    f.write_text(text)
    with pytest.raises(PersonaFileError, match=match) as ei:
        load_persona_file(str(f))
    assert str(f) in str(ei.value)
    # the same error stops a run at start, before anything is written
    with pytest.raises(ConfigError, match=match):
        sim.run(["llm=scripted", "run.dir=null", f"agent.personas={f}"])


def test_unknown_set_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="agent.personas='nosuch'.*shipped: castle, traders, workers"):
        sim.run(["llm=scripted", "run.dir=null", "agent.personas=nosuch"])


def test_traitors_players_are_the_file_personas():
    r = sim.run(["env=traitors", "llm=scripted", "run.dir=null", "agent.personas=castle", "env.n_players=6",
                 "env.n_traitors=1", "env.max_rounds=1"])
    start = r.events.filter(r.events["kind"] == "game_start")["payload"][0]
    names = set(json.loads(start)["names"].values())
    assert len(names) == 6 and names <= {p.name for p in load_persona_file("castle")}


def test_taxation_persona_skill_replaces_drawn_skill():
    r = sim.run(["env=taxation", "llm=scripted", "run.dir=null", "agent.personas=workers", "env.n_workers=8",
                 "env.ticks=1"])
    skills = sorted(json.loads(p)["skill"] for p in r.events.filter(r.events["kind"] == "skill")["payload"])
    want = sorted(p.extra["skill"] for p in load_persona_file("workers"))
    assert skills == pytest.approx(want)


def test_market_persona_strategy_fixes_policy():
    r = sim.run(["env=market", "llm=scripted", "run.dir=null", "agent.personas=traders", "env.n_traders=6",
                 "env.ticks=1"])
    opened = json.loads(r.events.filter(r.events["kind"] == "market_open")["payload"][0])
    got = sorted(opened["policies"].values())
    want = sorted(p.extra["strategy"] for p in load_persona_file("traders"))
    assert got == want


def test_bad_strategy_in_persona_file_is_named(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("personas:\n  - {name: A, age: 30, profession: x, env: {strategy: yolo}}\n")
    with pytest.raises(Exception, match="persona 'A': env.strategy='yolo'; allowed: zic, ziu, momentum, fundamental"):
        sim.run(["env=market", "llm=scripted", "run.dir=null", f"agent.personas={f}", "env.n_traders=2",
                 "env.ticks=1"])


def test_non_utf8_file_and_bad_skill_are_named(tmp_path):
    f = tmp_path / "latin.yaml"
    f.write_bytes("personas:\n  - {name: Jos\xe9, age: 30, profession: x}\n".encode("latin-1"))
    with pytest.raises(PersonaFileError, match="not UTF-8 text"):
        load_persona_file(str(f))
    g = tmp_path / "skill.yaml"
    g.write_text("personas:\n  - {name: A, age: 30, profession: x, env: {skill: -3}}\n")
    with pytest.raises(Exception, match="persona 'A': env.skill=-3: must be a positive number"):
        sim.run(["env=taxation", "llm=scripted", "run.dir=null", f"agent.personas={g}", "env.n_workers=2",
                 "env.ticks=1"])
