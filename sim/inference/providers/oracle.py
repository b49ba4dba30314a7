"""Oracle model tiers: simulated models with a known accuracy and a known cost. Not an LLM.

A tier answers a decision from the environment's ground truth (``ChatRequest.truth``,
a ``sim.engine.Truth`` the engine attaches for oracle endpoints): with probability
``accuracy - difficulty_slope * difficulty`` (clipped to [0, 1]) one of the right
answers, uniformly, else one of the valid wrong answers, uniformly. A decision with no
ground truth (speech, a belief probe) gets the request's scripted answer, still metered.

Token counts: prompt tokens are the tier's ``input_tokens`` (else a quarter of the
prompt's bytes); output ("thinking") tokens are log-normal with the tier's median and
sigma, as reasoning models' are, capped at the request's ``max_tokens`` (the budget
reserved that much, and a real model stops there too). Every draw comes from the call's
seed, so a call gives the same answer and tokens on every run and in a replay.

The tier is the request's ``model``: ``llm.model`` (or a deliberation policy's tier) names
one of ``llm.oracle.tiers``, and ``llm.prices`` prices it like any model.

Self-reported confidence: when the request's schema has a ``confidence`` property (a
deliberation policy with the confidence scorer asks for one, sim/deliberation.py) and the
answer has none, the tier fills it, an integer 0-100:
- with the truth's ``confidence`` rates (t, f), the deliberation scorer's tpr and fpr: it is
  *confident* with probability t when its answer is right and f when it is wrong; a confident
  report is uniform on 51..100, an unconfident one uniform on 0..50. A scorer that accepts
  above 0.5 (confidence / 100 > 0.5, the cascade's default threshold) then accepts exactly
  as the oracle scorer with (t, f) does: the FrugalGPT closed form holds.
- without rates: a calibrated report, round(100 x its accuracy at this difficulty);
- with no ground truth (the scripted answer): 100 (nothing to doubt, as the oracle scorer
  accepts what it cannot judge).
These draws come after the answer's and the tokens' from the same seeded stream, so asking
for a confidence changes neither.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..types import ChatRequest, ChatResponse, Usage


@dataclass(frozen=True)
class Tier:
    accuracy: float
    difficulty_slope: float = 0.0
    input_tokens: int | None = None
    output_median: float = 8.0
    output_sigma: float = 0.0

    def accuracy_at(self, difficulty: float) -> float:
        return min(1.0, max(0.0, self.accuracy - self.difficulty_slope * difficulty))

    def mean_output(self) -> float:
        """E[output tokens] before the cap: the log-normal's mean."""
        return self.output_median * math.exp(self.output_sigma ** 2 / 2)


def tiers_from(cfg: dict | None) -> dict[str, Tier]:
    """``llm.oracle.tiers`` as Tier objects (the config model already checked the values)."""
    return {name: Tier(**{k: v for k, v in (t or {}).items() if v is not None or k == "input_tokens"})
            for name, t in ((cfg or {}).get("tiers") or {}).items()}


def pick(truth, u_correct: float, u_pick: float, accuracy: float):
    """The oracle's answer from two uniform draws: a right answer with prob ``accuracy``, else a wrong one."""
    right, wrong = tuple(truth.right), tuple(truth.wrong)
    pool = right if (u_correct < accuracy or not wrong) else wrong
    return pool[min(int(u_pick * len(pool)), len(pool) - 1)]


def confidence(truth, right: bool | None, tier: Tier, u_confident: float, u_level: float) -> int:
    """The tier's self-reported confidence, 0-100 (the rule in the module docstring)."""
    if right is None:
        return 100
    if truth.confidence is None:
        return int(round(100 * tier.accuracy_at(truth.difficulty)))
    tpr, fpr = truth.confidence
    if u_confident < (tpr if right else fpr):
        return 51 + min(int(u_level * 50), 49)
    return min(int(u_level * 51), 50)


class OracleProvider:
    name = "oracle"
    is_llm = False  # simulated tiers: every output says so

    def __init__(self, tiers: dict[str, Tier]):
        if not tiers:
            raise ValueError("llm.oracle.tiers: at least one tier is needed for provider=oracle")
        self.tiers = tiers

    def tier(self, model: str) -> Tier:
        t = self.tiers.get(model)
        if t is None:
            raise ValueError(f"llm.model={model!r} is not an oracle tier; known: {', '.join(sorted(self.tiers))}")
        return t

    async def complete(self, req: ChatRequest) -> ChatResponse:
        tier = self.tier(req.model)
        rng = np.random.default_rng([int(req.seed or 0), int(req.meta.reask), 0x0AC1E])
        u_correct, u_pick, z = float(rng.random()), float(rng.random()), float(rng.standard_normal())
        truth = req.truth
        right = None  # whether the answer is right (None: no ground truth)
        if truth is not None and (truth.right or truth.wrong):
            accuracy = tier.accuracy_at(truth.difficulty)
            action = pick(truth, u_correct, u_pick, accuracy)
            right = u_correct < accuracy or not truth.wrong
        elif req.scripted is not None:
            action = req.scripted()
        else:
            raise ValueError(f"oracle tier {req.model!r}: no ground truth and no scripted answer for "
                             f"purpose {req.meta.purpose!r}")
        text = action.model_dump_json() if hasattr(action, "model_dump_json") else json.dumps(action)
        if "confidence" in ((req.schema or {}).get("properties") or {}):
            d = json.loads(text)
            if isinstance(d, dict) and "confidence" not in d:
                d["confidence"] = confidence(truth, right, tier, float(rng.random()), float(rng.random()))
                text = json.dumps(d, separators=(",", ":"))
        tokens_in = tier.input_tokens if tier.input_tokens is not None else _prompt_tokens(req)
        out = max(1, int(round(tier.output_median * math.exp(tier.output_sigma * z))))
        finish = "stop"
        if req.max_tokens and out > req.max_tokens:
            out, finish = int(req.max_tokens), "length"
        return ChatResponse(text=text, usage=Usage(tokens_in, out, 0, "server"), model=req.model,
                            finish_reason=finish, provider=self.name)

    def count_tokens(self, req: ChatRequest) -> int:
        tier = self.tiers.get(req.model)
        return tier.input_tokens if tier is not None and tier.input_tokens is not None else _prompt_tokens(req)


def _prompt_tokens(req: ChatRequest) -> int:
    return max(1, sum(len(c.encode()) for _, c in req.messages) // 4)
