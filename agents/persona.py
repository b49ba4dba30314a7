"""Personas: who an agent is, rendered into a byte-stable system-prompt prefix.

The same persona renders to the same bytes on every call, so servers' prefix
caches hit. A population comes from a hand-written persona file (YAML, see
``agents/personas/``), from the seeded generator, or both: file entries
first, in a seeded order, then generated ones when the file runs short.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FIRST_NAMES = ["Ada", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kira",
               "Luca", "Maya", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen",
               "Ximena", "Yusuf", "Zoe"]
PROFESSIONS = ["teacher", "nurse", "engineer", "farmer", "chef", "lawyer", "artist", "mechanic", "librarian",
               "pilot", "accountant", "student"]
TRAITS = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")
PERSONA_DIR = Path(__file__).parent / "personas"


@dataclass(frozen=True)
class Persona:
    name: str
    age: int
    profession: str
    big5: tuple[float, ...]  # openness..neuroticism in [0,1]
    risk: float  # 0 averse .. 1 seeking
    honesty: float
    verbosity: float
    # environment-specific fields (taxation: skill; market: strategy, cash, units)
    extra: dict = field(default_factory=dict, hash=False, compare=False)
    # free-form background (nationality, pronoun, ...), rendered in file order
    demographics: dict = field(default_factory=dict, hash=False, compare=False)
    bio: str = ""
    # latent inference budget (deliberation=latent_budget, L-IBM): drawn once per run, then a trait like
    # risk or honesty; ``compute_budget_kind`` says what it counts: "samples" per decision or a "tier" cap.
    # Latent: never rendered into the prompt (the prefix stays byte-stable), only recorded (``traits``)
    compute_budget: Optional[int] = None
    compute_budget_kind: str = ""

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

    def with_compute_budget(self, budget: int, kind: str) -> "Persona":
        """This persona with its latent compute budget set (a new frozen persona)."""
        return replace(self, compute_budget=int(budget), compute_budget_kind=str(kind))

    def traits(self) -> dict[str, Any]:
        """The persona as plain data (events, records): name, age, profession, traits and, once drawn,
        its compute budget."""
        out: dict[str, Any] = {"name": self.name, "age": self.age, "profession": self.profession,
                               "big5": dict(zip(TRAITS, self.big5)), "risk": self.risk, "honesty": self.honesty,
                               "verbosity": self.verbosity}
        if self.compute_budget is not None:
            out["compute_budget"] = self.compute_budget
            out["compute_budget_kind"] = self.compute_budget_kind
        return out

    def prefix(self) -> str:
        """The stable system-prompt prefix (no per-call content here)."""
        s = f"You are {self.name}, a {self.age}-year-old {self.profession}. Personality: {self.describe_traits()}."
        if self.demographics:
            s += " Background: " + "; ".join(f"{k}: {v}" for k, v in self.demographics.items()) + "."
        if self.bio:
            s += " " + self.bio
        return s


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


# ---- persona files -----------------------------------------------------------

Unit = float


class _Big5(BaseModel):
    model_config = ConfigDict(extra="forbid")
    openness: Unit = Field(0.5, ge=0, le=1)
    conscientiousness: Unit = Field(0.5, ge=0, le=1)
    extraversion: Unit = Field(0.5, ge=0, le=1)
    agreeableness: Unit = Field(0.5, ge=0, le=1)
    neuroticism: Unit = Field(0.5, ge=0, le=1)


class PersonaSpec(BaseModel):
    """One entry of a persona file; unknown keys are errors (typos fail loudly)."""
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=40)
    age: int = Field(..., ge=1, le=120)
    profession: str = Field(..., min_length=1, max_length=60)
    big5: _Big5 = _Big5()
    risk: Unit = Field(0.5, ge=0, le=1)
    honesty: Unit = Field(0.5, ge=0, le=1)
    verbosity: Unit = Field(0.5, ge=0, le=1)
    demographics: dict[str, Union[str, int, float]] = {}
    bio: str = Field("", max_length=400)
    env: dict[str, Any] = {}

    def persona(self) -> Persona:
        b = self.big5
        return Persona(name=self.name, age=self.age, profession=self.profession,
                       big5=(b.openness, b.conscientiousness, b.extraversion, b.agreeableness, b.neuroticism),
                       risk=self.risk, honesty=self.honesty, verbosity=self.verbosity, extra=dict(self.env),
                       demographics=dict(self.demographics), bio=self.bio)


class PersonaFileError(ValueError):
    """A persona file is missing or malformed; the message names the file and the entry."""


def persona_file_path(ref: str) -> Path:
    """A shipped name (``castle`` -> agents/personas/castle.yaml) or a path to a YAML file."""
    p = Path(ref).expanduser()
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise PersonaFileError(f"agent.personas={ref!r}: no such file")
        return p
    shipped = PERSONA_DIR / f"{ref}.yaml"
    if not shipped.is_file():
        names = ", ".join(sorted(f.stem for f in PERSONA_DIR.glob("*.yaml")))
        raise PersonaFileError(f"agent.personas={ref!r}: not a file and not a shipped persona set; shipped: {names}")
    return shipped


@functools.lru_cache(maxsize=32)
def _load(path: str, mtime: float) -> tuple[Persona, ...]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise PersonaFileError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        raise PersonaFileError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    entries = data.get("personas") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise PersonaFileError(f"{path}: expected a non-empty list under 'personas:'")
    out, seen = [], set()
    for i, e in enumerate(entries):
        try:
            spec = PersonaSpec.model_validate(e)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(x) for x in first["loc"]) or "entry"
            who = e.get("name") if isinstance(e, dict) else None
            raise PersonaFileError(f"{path}: personas[{i}]{f' ({who})' if who else ''}.{loc}: {first['msg']}") from None
        if spec.name in seen:
            raise PersonaFileError(f"{path}: personas[{i}].name={spec.name!r} appears twice")
        seen.add(spec.name)
        out.append(spec.persona())
    return tuple(out)


def load_persona_file(ref: str) -> list[Persona]:
    p = persona_file_path(ref)
    return list(_load(str(p.resolve()), p.stat().st_mtime))


def population(n: int, rng: np.random.Generator, personas: Optional[str] = None, fill: str = "generate"
               ) -> list[Persona]:
    """``n`` personas: from the file ``personas`` (seeded order), topped up by the generator.

    ``fill='error'`` refuses a file with fewer than ``n`` entries instead of generating the rest.
    """
    if not personas:
        return sample_personas(n, rng)
    listed = load_persona_file(personas)
    order = rng.permutation(len(listed))
    chosen = [listed[i] for i in order[:n]]
    if len(chosen) < n:
        if fill == "error":
            raise PersonaFileError(f"agent.personas={personas!r} lists {len(listed)} personas but the run needs {n} "
                                   "(set agent.personas_fill=generate to generate the rest)")
        taken = {p.name for p in chosen}
        extra = [p for p in sample_personas(n - len(chosen) + len(taken), rng) if p.name not in taken]
        chosen += extra[: n - len(chosen)]
    return chosen


def population_for(env: Any, n: int) -> list[Persona]:
    """The population an environment's setup uses, from its agent config and seed."""
    ac = env.agent_cfg  # the agent section with every default filled in (sim.engine.Environment)
    return population(n, env.rng_for("personas"), ac["personas"], ac["personas_fill"])
