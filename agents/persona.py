"""Personas: who an agent is, rendered into a byte-stable system-prompt prefix.

The same persona renders to the same bytes on every call, so servers' prefix
caches hit. Populations are sampled from a seeded stream.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FIRST_NAMES = ["Ada", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira",
               "Luca", "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen",
               "Ximena", "Yusuf", "Zoe"]
PROFESSIONS = ["teacher", "nurse", "engineer", "farmer", "chef", "lawyer", "artist", "mechanic", "librarian",
               "pilot", "accountant", "student"]
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")


@dataclass(frozen=True)
class Persona:
    name: str
    age: int
    profession: str
    big5: tuple[float, ...]  # openness..neuroticism in [0,1]
    risk: float  # 0 averse .. 1 seeking
    honesty: float
    verbosity: float
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    def describe_traits(self) -> str:
        words = []
        o, c, e, a, n = self.big5
        words.append("curious" if o > 0.5 else "practical")
        words.append("careful" if c > 0.5 else "spontaneous")
        words.append("outgoing" if e > 0.5 else "reserved")
        words.append("warm" if a > 0.5 else "blunt")
        words.append("anxious" if n > 0.6 else "calm")
        words.append("risk-seeking" if self.risk > 0.6 else "risk-averse" if self.risk < 0.4 else "measured")
        return ", ".join(words)

    def prefix(self) -> str:
        """The stable system-prompt prefix (no per-call content here)."""
        return f"You are {self.name}, a {self.age}-year-old {self.profession}. Personality: {self.describe_traits()}."


def sample_personas(n: int, rng: np.random.Generator, ids: list[str] | None = None) -> list[Persona]:
    names = list(FIRST_NAMES)
    rng.shuffle(names)
    out = []
    for i in range(n):
        name = names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}")
        out.append(Persona(name=name, age=int(rng.integers(21, 70)), profession=str(rng.choice(PROFESSIONS)),
                           big5=tuple(round(float(x), 2) for x in rng.random(5)), risk=round(float(rng.random()), 2),
                           honesty=round(float(rng.random()), 2), verbosity=round(float(rng.random()), 2)))
    return out
