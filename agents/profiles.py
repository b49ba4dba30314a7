"""Prompt profiles: how much a prompt says, for the model that reads it.

Both profiles share one layout, chosen for prefix caches (llama.cpp's KV reuse between
consecutive calls, vLLM's and llama.cpp server's prefix caches across agents):

    system: instructions and the environment's rules         same for every agent of a run
    user:   the observation (the phase's public situation       same for every agent of a phase
            and question), then who the agent is, its
            private memories, its budget and the answer format  the agent's own part, last

``full`` (larger models): the persona in full, up to ``agent.memory.k`` memories as
recorded, the JSON field list. ``small`` (the embedded SmolLM2-135M: the default for
``llm.provider=local``): the agent's id, name and role only, at most one memory written as a
plain sentence (none that still holds a payload's braces), no budget line (it changes every
call; ``budget.show_remaining`` is ignored), the environment's example answer where it gives
one, a free-text answer that ends on its question, and a temperature of at most 0.3. A 135M
model copies whatever scaffolding it sees back into its speech, so the small prompts carry as
few labels as possible. Environments may also pick small-model answer forms for agents on this
profile (the Traitors: grammar speech and the top-suspect belief form, labelled in the outcome).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel

from sim.inference.types import json_schema


@dataclass(frozen=True)
class Profile:
    name: str
    system: str  # template names in agents/prompts/
    user: str
    memory_k: int | None  # at most this many memories (None: agent.memory.k)
    memory_chars: int | None
    examples: bool  # show the environment's example answer
    temperature: float | None  # upper bound on the endpoint's sampling temperature
    plain_memories: bool  # "[t2 speech] p3: ..." -> "Round 2, p3 said: ..."
    # others' words quoted verbatim in the context; False: only whom each speaker named (SmolLM2-135M
    # repeated the last speech it read word for word: 12 of 28 speeches in one round, docs/embedded.md)
    quote_speeches: bool = True


PROFILES = {
    "full": Profile("full", "act", "user", None, None, False, None, False),
    "small": Profile("small", "act_small", "user_small", 1, 100, True, 0.3, True, quote_speeches=False),
}
# providers whose models are small enough for the small profile under prompt_profile=auto
SMALL_PROVIDERS = frozenset({"local"})


def resolve(name: str, provider: str | None) -> Profile:
    """``auto`` is ``small`` for the embedded model, ``full`` for everything else."""
    if name == "auto":
        name = "small" if provider in SMALL_PROVIDERS else "full"
    return PROFILES[name]


def provider_of(endpoint: str, agent_cfg: dict, llm_cfg: dict) -> str | None:
    """The provider an agent's endpoint calls (``role:<r>`` endpoints merge their llm_by_role entry)."""
    if endpoint.startswith("role:"):
        over = (agent_cfg.get("llm_by_role") or {}).get(endpoint[5:]) or {}
        if over.get("provider"):
            return over["provider"]
    return llm_cfg.get("provider")


def text_field(action_cls: type[BaseModel]) -> str | None:
    """The field name when the action is one free string (a speech): answered as plain text."""
    props = json_schema(action_cls).get("properties") or {}
    if len(props) != 1:
        return None
    (name, spec), = props.items()
    return name if spec.get("type") == "string" and not ({"enum", "const", "pattern"} & set(spec)) else None


# an observation may end with a part only its agent sees (e.g. the player order of its own
# belief form): the text after this mark goes into the agent's own part of the prompt
OWN_PART = "\n---\n"


def split_observation(observation: str) -> tuple[str, str]:
    """(shared part, own part) of an observation."""
    shared, _, own = observation.partition(OWN_PART)
    return shared, own


_EVENT = re.compile(r"^\[t(\d+) ([\w-]+)\] (\S+): (.*)$", re.S)


def plain_memory(text: str) -> str:
    """A recorded memory line without its tags: a small model echoes ``[t1 speech]`` back."""
    m = _EVENT.match(text)
    if not m:
        return text
    tick, kind, actor, body = m.groups()
    body = re.sub(r"(\w+)=", r"\1 ", body)
    if kind == "speech":
        return f"Round {tick}, {actor} said: {body}"
    who = "" if actor in ("host", "engine", "-") else f"{actor} "
    return f"Round {tick}, {who}{kind.replace('_', ' ')}: {body}"
