"""The one agent design every environment uses: persona + memory + the engine's act seam."""
from __future__ import annotations

import mesa
from pydantic import BaseModel

from agents.embeddings import make_embedder
from agents.memory import MemoryStream, RetrievalConfig
from agents.persona import Persona
from agents.prompts import render
from sim.engine import PlayerBase
from sim.inference.types import json_schema


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
    from sim.config import _agent_model

    return _agent_model()().memory.model_dump() | dict(cfg or {})


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

    def role_text(self) -> str:
        """Environment-specific standing instructions (stable across calls)."""
        return ""

    def build_messages(self, purpose: str, action_cls: type[BaseModel], observation: str, *, now: int,
                       budget: str = "") -> tuple[tuple[str, str], ...]:
        """The prompt: persona and role (byte-stable), then memories, the budget view and the question."""
        system = render("act", prefix=self.persona.prefix(), role=self.role_text())
        mems = self.memory.retrieve(observation, now=now, k=self.memory_k) if len(self.memory) else []
        mem_text = ("Memories:\n" + "\n".join(f"- {m.text[: self.memory_chars]}" for m in mems) + "\n") if mems else ""
        user = render("user", memories=mem_text, budget=budget, observation=observation,
                      fields=schema_fields(action_cls))
        return (("system", system), ("user", user))
