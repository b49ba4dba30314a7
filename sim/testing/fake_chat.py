"""A deterministic LangChain chat model that reports usage, for tests and dry runs.

Importable by path (``sim.testing.fake_chat:UsageFakeChatModel``) and built from
plain keyword arguments, so a Hydra config can select it like a real model.
"""
from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from .loopback import count_tokens


class StatusError(Exception):
    """What an HTTP-backed chat model raises: an error carrying ``status_code``."""

    def __init__(self, status_code: int, retry_after: float | None = None):
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


class UsageFakeChatModel(BaseChatModel):
    """Always answers ``reply``; usage = 4-byte tokens of the prompt and the reply.

    ``fail``: ``"timeout"`` raises TimeoutError, a status such as ``"429"``
    raises ``StatusError``, any other string raises RuntimeError.
    """

    reply: str = '{"action": "pass"}'
    model_name: str = "fake-chat"
    cache_read: int = 0
    with_usage: bool = True
    fail: str | None = None
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "usage-fake-chat"

    def _answer(self, messages: list[BaseMessage]) -> ChatResult:
        self.calls += 1
        if self.fail == "timeout":
            raise TimeoutError("fake chat model timed out")
        if self.fail and self.fail.isdigit():
            raise StatusError(int(self.fail), retry_after=0.0)
        if self.fail:
            raise RuntimeError(f"fake chat model failure: {self.fail}")
        usage = None
        if self.with_usage:
            n_in = count_tokens("\n".join(str(m.content) for m in messages))
            n_out = count_tokens(self.reply)
            usage = {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out,
                     "input_token_details": {"cache_read": min(self.cache_read, n_in)}}
        msg = AIMessage(content=self.reply, usage_metadata=usage,
                        response_metadata={"model_name": self.model_name, "finish_reason": "stop"})
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._answer(messages)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return self._answer(messages)  # no thread-pool hop, unlike the default
