"""Prompt layout and profiles: shared prefix first, the agent's own part last, byte-stable."""
from __future__ import annotations

import json
import re

import pytest

import sim
from agents.profiles import PROFILES, plain_memory, provider_of, resolve, split_observation, OWN_PART
from sim.inference.providers.local import cached_prefix
from sim.testing.loopback import LoopbackServer


def _game(srv, *extra):
    return ["env=traitors", "llm=openai", f"llm.base_url={srv.base_url}", "llm.api_key_env=null",
            "llm.model=test-model", "llm.max_retries=0", "llm.timeout_s=5", "run.dir=null", "env.n_players=6",
            "env.n_traitors=2", "env.max_rounds=1", "env.discussion_passes=1", "agent.reflection.enabled=false",
            "engine.concurrency=1", "seed=3", *extra]


def _prompts(*extra) -> list[dict]:
    with LoopbackServer() as srv:
        sim.run(_game(srv, *extra), progress=False)
        return [r.body for r in srv.chat_requests]


def _kind(body) -> str:
    schema = json.dumps((body.get("response_format") or {}).get("json_schema", {}).get("schema", {}))
    return "belief" if ("suspicion" in schema or "suspect" in schema) else "vote" if "target" in schema else "text"


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@pytest.mark.parametrize("profile", ["full", "small"])
def test_a_phase_shares_everything_but_the_agents_own_part(profile):
    bodies = _prompts(f"agent.prompt_profile={profile}")
    systems = {b["messages"][0]["content"] for b in bodies}
    assert len(systems) == 1  # the rules: one system prompt for every agent of the run
    assert "p1" not in next(iter(systems))  # no agent's id in it
    for kind, word in (("vote", "banishment"), ("belief", "Secret form")):
        users = [b["messages"][1]["content"] for b in bodies if _kind(b) == kind and word in b["messages"][1]["content"]]
        assert len(users) >= 5
        # the public situation comes first and is the same for every voter: it holds who is
        # still playing and what was said, and no agent's own text
        shared = min(_common(users[0], u) for u in users[1:])
        head = users[0][:shared]
        # the full profile quotes today's speeches; the small one says only whom each speaker named
        assert "Still playing:" in head and ("Said today:" if profile == "full" else "Today p") in head
        if profile == "small":
            assert "Said today:" not in head and " named " in head
        assert word in head  # the phase's question is shared too
        assert "Your player id" not in head and "Your form lists" not in head


def test_prompts_are_byte_stable():
    assert _prompts("agent.prompt_profile=small") == _prompts("agent.prompt_profile=small")


def test_small_profile_prompts_carry_no_scaffolding_to_echo():
    bodies = _prompts("agent.prompt_profile=small", "env.speech=free")
    speech = [b["messages"][1]["content"] for b in bodies if _kind(b) == "text"]
    assert speech
    for u in speech:
        for label in ("Memories:", "JSON", "[t1 ", "TRAITOR", "FAITHFUL", "Alive:"):
            assert label not in u, (label, u)
        assert u.endswith(("names a player.", "murder tonight?"))  # a free-text prompt ends on its question
    assert all(b["temperature"] <= 0.3 for b in bodies)  # the small profile samples cooler
    for b in bodies:  # no budget line (it changes every call) and no payload braces from memories
        u = b["messages"][1]["content"]
        assert "budget" not in u and "{" not in u.split("Your seat:", 1)[-1].split("Reply with")[0], u


def test_small_profile_says_who_the_agent_is_as_a_label_not_a_sentence_to_copy():
    # SmolLM2-135M began its speeches with the line "You are p4 (Sami). ..." (docs/embedded.md)
    bodies = _prompts("agent.prompt_profile=small")
    for b in bodies:
        u = b["messages"][1]["content"]
        assert re.search(r"^Your seat: p\d+ \([A-Za-z]+\)[,.] ", u, re.M), u
        assert not re.search(r"You are (faithful|secretly)", u), u  # the role as a label too
        assert not re.search(r"You are p\d", u), u


def test_the_speech_grammar_does_not_accept_the_speakers_own_id_or_name():
    bodies = _prompts("agent.prompt_profile=small")
    checked = 0
    for b in bodies:
        if _kind(b) != "text":
            continue
        pid, name = re.search(r"^Your seat: (p\d+) \(([A-Za-z]+)\)", b["messages"][1]["content"], re.M).groups()
        pattern = re.compile(b["response_format"]["json_schema"]["schema"]["properties"]["text"]["pattern"])
        others = re.findall(r"\b(p\d+) \(", b["messages"][1]["content"].split("Your seat:")[0])
        assert not pattern.search(f"I doubt {pid}.") and not pattern.search(f"I doubt {name}.")
        assert any(pattern.search(f"I doubt {o}.") for o in others if o != pid)
        checked += 1
    assert checked


def test_small_profile_speaks_under_a_grammar_by_default():
    bodies = _prompts("agent.prompt_profile=small")
    speech = [b for b in bodies if _kind(b) == "text"]
    assert speech
    for b in speech:  # every speech is decoded under a pattern that names another player
        pattern = b["response_format"]["json_schema"]["schema"]["properties"]["text"]["pattern"]
        assert re.search(r"\(.*\bp\d+\b.*\)", pattern), pattern


def test_full_profile_keeps_the_endpoint_temperature_and_json_fields():
    bodies = _prompts("agent.prompt_profile=full", "llm.temperature=0.9")
    assert {b["temperature"] for b in bodies} == {0.9}
    assert all("JSON fields:" in b["messages"][1]["content"] for b in bodies)


def test_auto_is_small_for_the_embedded_model_only():
    assert resolve("auto", "local") is PROFILES["small"]
    assert resolve("auto", "openai") is PROFILES["full"]
    assert resolve("full", "local") is PROFILES["full"]
    cfg = {"llm_by_role": {"traitor": {"provider": "local"}}}
    assert provider_of("role:traitor", cfg, {"provider": "openai"}) == "local"
    assert provider_of("default", cfg, {"provider": "openai"}) == "openai"


def test_bad_profile_is_one_line_error(capsys):
    from sim.cli import main

    assert main(["run", "env=traitors", "llm=scripted", "run.dir=null", "agent.prompt_profile=tiny"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "prompt_profile" in err


def test_plain_memory_drops_tags():
    assert plain_memory("[t2 speech] p3: I trust p5") == "Round 2, p3 said: I trust p5"
    assert plain_memory("[t1 elimination] host: how=banish pid=p1") == "Round 1, elimination: how banish pid p1"
    assert plain_memory("no tags here") == "no tags here"


def test_own_part_of_an_observation():
    assert split_observation(f"shared{OWN_PART}mine") == ("shared", "mine")
    assert split_observation("all shared") == ("all shared", "")


def test_cached_prefix_counts_the_kv_reuse():
    assert cached_prefix([1, 2, 3, 4], [1, 2, 3, 9, 9, 7], 5) == 3
    assert cached_prefix([], [1, 2], 2) == 0
    # a prompt wholly cached still evaluates its last token again
    assert cached_prefix([1, 2, 3], [1, 2, 3, 8], 3) == 2

