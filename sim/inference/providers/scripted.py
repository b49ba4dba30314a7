"""Rule-based 'provider': runs the request's scripted policy. Not an LLM.

Rows it produces carry provider=scripted and zero tokens, so a scripted run's
ledger shows exactly how many decisions were taken without any model.
"""
from __future__ import annotations

import json

from ..types import ChatRequest, ChatResponse, Usage


class ScriptedProvider:
    name = "scripted"
    is_llm = False

    async def complete(self, req: ChatRequest) -> ChatResponse:
        if req.scripted is None:
            raise ValueError(f"scripted provider needs a policy for purpose {req.meta.purpose!r}")
        action = req.scripted()
        text = action.model_dump_json() if hasattr(action, "model_dump_json") else json.dumps(action)
        return ChatResponse(text=text, usage=Usage(0, 0, 0, "none"), model="scripted", provider="scripted")


class CountingProvider:
    """Dry-run provider for `agora estimate`: no model, a projected usage per call.

    Prompt tokens use the same upper-bound estimate the budget uses; output
    tokens assume ``output_fraction`` of the cap. The action itself comes from
    the scripted policy so the simulation proceeds as a plausible run would.
    """

    is_llm = False

    def __init__(self, name: str, output_fraction: float = 0.6, estimator=None):
        self.name = name
        self.output_fraction = output_fraction
        self.estimator = estimator

    async def complete(self, req: ChatRequest) -> ChatResponse:
        from ..types import estimate_tokens_upper

        action = req.scripted() if req.scripted else {}
        text = action.model_dump_json() if hasattr(action, "model_dump_json") else json.dumps(action)
        p = self.estimator(req) if self.estimator else estimate_tokens_upper(req.messages) // 3
        out = int(req.max_tokens * self.output_fraction)
        return ChatResponse(text=text, usage=Usage(p, out, 0, "estimated"), model=req.model, provider=self.name)
