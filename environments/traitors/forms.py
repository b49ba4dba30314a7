"""Answer forms for small models: a grammar-constrained speech and a top-suspect belief form.

Both are opt-in per agent (``env.speech`` and ``env.belief_format``; ``auto`` picks them for
agents on the small prompt profile) and both are labelled where they are used: a speech
event carries ``mode`` and the outcome ``speech_mode``; a belief event carries the ``form``
and the ``order`` the form listed the players in (docs/embedded.md).

- **Grammar speech** (``env.speech=grammar``): the reply is a JSON string whose pattern the
  local model decodes under (llama.cpp GBNF from the JSON schema): plain words and light
  punctuation around at least one player's id or name, whole words after it. It cannot hold
  braces, colons, digits outside an id, or a newline, so echoed scaffolding such as
  ``Memories:`` cannot be written; ``You are p2 ...`` and copies of another speech still can.
- **Top-suspect beliefs** (``env.belief_format=top``): the agent names the player it most
  suspects and the one it trusts most, from a list in a per-agent seeded shuffled order (a
  small model picks by position; shuffling keeps its position bias from becoming a seat-order
  ramp, as LLM evaluations shuffle options). Beliefs are derived from the two picks at fixed
  levels (``TOP_LEVELS``), so they are coarse: three levels, not a calibrated probability.
"""
from __future__ import annotations

import functools
import re
from typing import Literal

from pydantic import BaseModel, Field, create_model

# characters before the player's id or name: words and light punctuation
_PLAIN = "[A-Za-z,.'!? ]"
GUIDED_CHARS = 250  # the pattern's own bounds (about 25 words) come first: inside the 40-word bound

# P(traitor) in tenths for the suspect, the most trusted and everyone else (top-suspect form)
TOP_LEVELS = {"suspect": 7, "trusted": 1, "rest": 3}


def guided_speech_model(names: list[str]) -> type[BaseModel]:
    """A one-field speech whose text must name one of ``names`` (ids and persona names) in plain words."""
    return _guided(tuple(names))


@functools.lru_cache(maxsize=4096)
def _guided(names: tuple[str, ...]) -> type[BaseModel]:
    alt = "|".join(re.escape(n) for n in sorted(set(names), key=lambda n: (-len(n), n)))
    # the name stands as a whole word (a space before it); after it come whole words only, so a
    # speech the grammar closes at its bound never ends mid-word
    # an opening forced to I/We/So/Let was measured worse: every speaker wrote the same "So, the
    # one who ..." (docs/embedded.md)
    pattern = f"^[A-Z]{_PLAIN}{{1,50}} ({alt})([,.!?]? [A-Za-z']{{1,14}}){{0,12}}[.!?]?$"
    return create_model("GuidedSpeech", text=(str, Field(..., min_length=3, max_length=GUIDED_CHARS,
                                                         pattern=pattern)))


def top_belief_model(order: list[str]) -> type[BaseModel]:
    """``{"suspect": <id>, "trust": <id>}`` over ``order`` (the enum's order is the order shown)."""
    return _top(tuple(order))


@functools.lru_cache(maxsize=4096)
def _top(order: tuple[str, ...]) -> type[BaseModel]:
    lit = Literal[order]  # type: ignore[valid-type]
    return create_model("BeliefTop", suspect=(lit, ...), trust=(lit, ...))


def top_values(action: BaseModel, others: list[str]) -> tuple[dict[str, float], dict[str, int]]:
    """(P(traitor) per player, trust points per player) from a top-suspect answer.

    The suspect gets ``TOP_LEVELS['suspect']`` tenths, the most trusted ``'trusted'`` and the
    rest ``'rest'``; trust: 4 points to the most trusted, 6 split over the others but the
    suspect (the caller normalises to 10). Naming one player as both is read as a suspect only.
    """
    s, t = action.suspect, action.trust
    probs = {p: TOP_LEVELS["rest"] / 10 for p in others}
    if t != s:
        probs[t] = TOP_LEVELS["trusted"] / 10
    probs[s] = TOP_LEVELS["suspect"] / 10
    rest = [p for p in others if p not in (s, t)]
    trust = {p: 0 for p in others}
    if t != s:
        trust[t] = 4
    for i, p in enumerate(rest):  # 6 points, largest remainder in the listed order
        trust[p] = 6 // len(rest) + (1 if i < 6 % len(rest) else 0)
    return probs, trust
