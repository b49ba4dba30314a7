"""Agent cognition the engine calls through one hook: memory delivery and reflection.

After each phase the engine calls ``Cognition.after_phase(env)``: the events
emitted since the last delivery go to every agent's memory stream, filtered by
each event's visibility (``sim.events.visible_to``) and by the environment's
per-kind importance. Engine bookkeeping kinds never become memories. After a
tick that did not end the game, ``after_tick(env)`` lets agents whose new
memories passed the importance threshold write one insight each (a metered
``reflect`` call like any other decision).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from sim.engine import ActRequest
from sim.events import private

if TYPE_CHECKING:
    from sim.engine import Environment
    from sim.events import EventLog

# engine bookkeeping, never a memory
NOT_MEMORABLE = frozenset({"phase_start", "phase_end", "llm_call", "run_start", "reflection", "human_action"})


class Reflection(BaseModel):
    insight: str = Field(..., min_length=1, max_length=160)


class Cognition:
    """Memory delivery and reflection for one run; ``delivered`` is the event cursor (checkpointed)."""

    def __init__(self, events: "EventLog", delivered: int = 0):
        self.events = events
        self.delivered = delivered
        self._reads: dict[str, bool] = {}  # agent id -> whether its memory is fed

    def after_phase(self, env: "Environment") -> None:
        self.deliver(env)

    def deliver(self, env: "Environment") -> None:
        """Feed new events to every agent's memory, filtered by visibility."""
        new = self.events.rows[self.delivered:]
        self.delivered = len(self.events.rows)
        if not new:
            return
        rows = [e for e in new if e.kind not in NOT_MEMORABLE]
        keep_scripted = env.keeps_scripted_memory()
        shared: dict = {}  # each event rendered and embedded once per delivery, not once per agent
        reads = self._reads  # an agent's policy is fixed for the run: asked once per agent
        for a in env.players():
            r = reads.get(a.aid)
            if r is None:
                r = reads[a.aid] = keep_scripted or env.policy_of(a) != "scripted"
            if not r:
                continue  # scripted policies never read memory
            a.memory.observe_events(rows, a.aid, a.teams, importance=env.memory_importance, shared=shared)

    def after_tick(self, env: "Environment") -> None:
        self.reflect(env)

    def reflect(self, env: "Environment") -> None:
        """Agents whose new memories passed the importance threshold write an insight.

        The insight cites the memories it came from and goes back into the stream.
        """
        rc = env.agent_cfg["reflection"]
        if not rc["enabled"]:
            return
        thr = float(rc["threshold"])
        due = [a for a in env.players() if a.alive and a.memory.needs_reflection(thr)]
        if not due:
            return
        prev_phase, env.phase = env.phase, "reflect"
        reqs, items = [], []
        for a in due:
            its = a.memory.reflection_prompt_items(5)
            items.append(its)
            lines = "\n".join(f"[{i}] {r.text[:120]}" for i, r in its)
            first = its[-1][1].text[:80] if its else ""
            reqs.append(ActRequest(a, "reflect", Reflection,
                                   f"Recent memories:\n{lines}\nWrite one short insight about them.",
                                   (lambda first=first: Reflection(insight=f"Noted: {first}")), max_tokens=60))
        for a, its, r in zip(due, items, env.act_all(reqs)):
            cites = [i for i, _ in its]
            a.memory.add_reflection(r.action.insight, cites, env.tick, importance=5)
            env.emit("reflection", {"pid": a.aid, "insight": r.action.insight, "cites": cites, "valid": r.valid},
                     actor=a.aid, visibility=private(a.aid))
        env.phase = prev_phase
