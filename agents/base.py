"""The one agent design every environment uses: persona + memory + the engine's act seam."""
from __future__ import annotations

import re

import functools

import mesa
from pydantic import BaseModel

from agents.embeddings import make_embedder
from agents.memory import MemoryStream, RetrievalConfig
from agents.persona import Persona
from agents.profiles import Profile, plain_memory, provider_of, resolve, split_observation, text_field
from agents.prompts import render
from sim.engine import PlayerBase
from sim.inference.types import json_schema

_STRUCTURED = re.compile(r"[{}\[\]]")


def schema_fields(action_cls: type[BaseModel]) -> str:
    """Compact field list for the prompt (the full JSON schema is enforced separately)."""
    parts = []
    schema = json_schema(action_cls)
    for name, spec in schema.get("properties", {}).items():
        if "enum" in spec:
            parts.append(f'"{name}": one of {spec["enum"]}')
        else:
            parts.append(f'"{name}": {spec.get("type", "value")}')
    return "{" + ", ".join(parts) + "}"


def memory_config(cfg: dict | None) -> dict:
    """``agent.memory`` with the config model's defaults under what is given (one home for defaults)."""
    return _memory_defaults() | dict(cfg or {})


@functools.cache  # built once: every agent of every game asks (flat values, and ``|`` makes a new dict)
def _memory_defaults() -> dict:
    from sim.config import _agent_model

    return _agent_model()().memory.model_dump()


class Player(PlayerBase):
    """An agent with a persona, a memory of what it could see, and an endpoint."""

    def __init__(self, model: mesa.Model, aid: str, persona: Persona, role: str = "", teams: tuple[str, ...] = (),
                 endpoint: str = "default", memory_cfg: dict | None = None):
        super().__init__(model, aid, role, teams, endpoint)
        self.persona = persona
        mc = memory_config(memory_cfg)
        self.memory_k = mc["k"]
        self.memory_chars = mc["line_chars"]
        self.memory = MemoryStream(
            embedder=make_embedder(mc["embedder"]),
            config=RetrievalConfig(w_recency=mc["w_recency"], w_importance=mc["w_importance"],
                                   w_relevance=mc["w_relevance"], decay=mc["decay"]),
        )

    @property
    def name(self) -> str:
        return self.persona.name

    @property
    def profile(self) -> Profile:
        """``agent.prompt_profile`` for this agent's endpoint (``auto``: small for the embedded model)."""
        env = self.model
        provider = provider_of(self.endpoint, env.agent_cfg, env.llm_cfg)
        return resolve(env.agent_cfg.get("prompt_profile") or "auto", provider)

    @property
    def temperature_cap(self) -> float | None:
        return self.profile.temperature

    def rules_text(self) -> str:
        """The environment's rules, the same for every agent of a run (the prompt's shared prefix)."""
        return ""

    def role_text(self) -> str:
        """Environment-specific standing instructions for this agent (stable across calls)."""
        return ""

    def role_label(self) -> str:
        """The standing instructions as the small profile shows them, after "Your seat: <id> (<name>)":
        a label to read rather than a sentence to continue (default: ``role_text`` as a sentence)."""
        text = self.role_text()
        return f". {text}" if text else "."

    def example(self, purpose: str, action_cls: type[BaseModel]) -> str:
        """A short example of a good answer for ``purpose`` (the small profile shows it); "" for none."""
        return ""

    def build_messages(self, purpose: str, action_cls: type[BaseModel], observation: str, *, now: int,
                       budget: str = "") -> tuple[tuple[str, str], ...]:
        """The prompt: what every agent shares first, the agent's own part last (agents/profiles.py).

        Byte-stable: a function of the agent's state and the observation only.
        """
        prof = self.profile
        observation, own = split_observation(observation)
        rules = self.rules_text()
        system = render(prof.system, rules=rules + "\n" if rules else "")
        k = self.memory_k if prof.memory_k is None else min(self.memory_k, prof.memory_k)
        chars = self.memory_chars if prof.memory_chars is None else min(self.memory_chars, prof.memory_chars)
        mems = self.memory.retrieve(observation, now=now, k=k) if len(self.memory) and k else []
        if prof.name == "full":
            mem_text = ("Memories:\n" + "\n".join(f"- {m.text[:chars]}" for m in mems) + "\n") if mems else ""
            user = render(prof.user, observation=observation, prefix=self.persona.prefix(),
                          role=f"Your player id: {self.aid}. {self.role_text()}".strip(),
                          memories=mem_text, budget=budget + (own + "\n" if own else ""),
                          fields=schema_fields(action_cls))
            return (("system", system), ("user", user))
        # a memory that still holds a payload's braces (e.g. the game's start) is scaffolding to echo
        lines = [x[:chars] for x in (plain_memory(m.text) for m in mems) if not _STRUCTURED.search(x)]
        mem_text = ("You recall:\n" + "\n".join(f"- {x}" for x in lines) + "\n") if lines else ""
        ex = self.example(purpose, action_cls) if prof.examples else ""
        # a free-text answer ends on its question (a small model continues the last line it reads)
        answer = "" if text_field(action_cls) is not None else f"Reply with {schema_fields(action_cls)}"
        # a label, not a sentence: SmolLM2-135M began a third of its speeches by copying "You are p4."
        # (under the speech grammar, with another player's id), docs/embedded.md
        who = f"Your seat: {self.aid} ({self.name}){self.role_label()}"
        # no budget line: it changes every call and a small model reads it as text to repeat
        user = render(prof.user, observation=observation.rstrip("\n"), who=who, memories=mem_text,
                      example=f"{ex}\n" if ex else "", own=own + ("\n" if own and answer else ""), answer=answer)
        return (("system", system), ("user", user.rstrip("\n")))
