"""Grammar-constrained sampling for llama-cpp-python that checks the grammar lazily.

llama-cpp-python puts the grammar into its sampler chain ahead of top-k, so every generated
token costs a grammar check of the whole vocabulary (49,152 tokens for SmolLM2): inside a JSON
string, where nearly every token is allowed, that check took about as long as decoding the token
itself (benchmarks/embedded_speed.py prints both). llama.cpp's own server samples first and checks
only the chosen token, falling back to the whole-vocabulary check when the grammar rejects it.
This module does the same inside ``Llama.generate``:

1. apply the chain without the grammar (penalties, top-k/top-p/min-p, temperature, the seeded
   draw) to the step's logits, without accepting anything yet;
2. check the chosen token alone against the grammar;
3. if the grammar rejects it, apply the grammar to the whole vocabulary and the chain again;
4. accept the final token into the chain and the grammar.

Greedy decoding (temperature 0) picks the same token as the eager check: the best token, if
the grammar allows it, else the best allowed one. With sampling, the token drawn is still from
the grammar-constrained distribution: a token t the grammar allows is drawn at step 1 with
p(t), and after a rejection (probability R) with p(t)/(1-R) renormalised, p(t)/(1-R) in all.

``install(llm)`` swaps the instance's ``_init_sampler`` so ``create_chat_completion`` and the
rest of llama-cpp-python's generation code use it unchanged.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)


class LazyGrammarSampler:
    """A chain without the grammar, plus the grammar checked token by token (see module doc)."""

    def __init__(self, llama_cpp, chain, grammar_ptr, n_vocab: int):
        self._c = llama_cpp
        self.chain = chain  # a llama_cpp._internals.LlamaSampler (owns its C chain)
        self.grammar = grammar_ptr  # a llama_sampler*, owned here
        self.n_vocab = n_vocab
        self.buf = np.zeros(n_vocab, dtype=_TOKEN_DATA)
        self.ids = np.arange(n_vocab, dtype=np.int32)
        self.one = np.zeros(1, dtype=_TOKEN_DATA)
        self.rejections = 0
        self.checks = 0

    def _array(self, buf: np.ndarray):
        c = self._c
        return c.llama_token_data_array(data=buf.ctypes.data_as(ctypes.POINTER(c.llama_token_data)),
                                        size=len(buf), selected=-1, sorted=False)

    def _fill(self, logits) -> None:
        b = self.buf
        b["id"] = self.ids
        b["logit"] = logits
        b["p"] = 0.0

    def sample(self, ctx, idx: int = -1) -> int:
        c = self._c
        logits = np.ctypeslib.as_array(c.llama_get_logits_ith(ctx.ctx, idx), shape=(self.n_vocab,))
        self._fill(logits)
        arr = self._array(self.buf)
        c.llama_sampler_apply(self.chain.sampler, ctypes.byref(arr))
        token = int(arr.data[arr.selected].id)  # through the array's own pointer: a sampler may move it
        self.checks += 1
        one = self.one
        one["id"], one["logit"], one["p"] = token, 1.0, 0.0
        single = self._array(one)
        c.llama_sampler_apply(self.grammar, ctypes.byref(single))
        if not np.isfinite(one["logit"][0]):  # rejected: the whole vocabulary under the grammar, then the chain
            self.rejections += 1
            self._fill(logits)
            arr = self._array(self.buf)
            c.llama_sampler_apply(self.grammar, ctypes.byref(arr))
            c.llama_sampler_apply(self.chain.sampler, ctypes.byref(arr))
            token = int(arr.data[arr.selected].id)
        c.llama_sampler_accept(self.grammar, token)
        c.llama_sampler_accept(self.chain.sampler, token)
        return token

    def close(self) -> None:
        if self.grammar is not None:
            self._c.llama_sampler_free(self.grammar)
            self.grammar = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def install(llm: Any) -> None:
    """Make ``llm`` (a ``llama_cpp.Llama``) check grammars lazily; idempotent."""
    if getattr(llm, "_agora_lazy_grammar", False):
        return
    import llama_cpp

    eager = llm._init_sampler

    def init_sampler(*args, grammar=None, **kw):
        chain = eager(*args, grammar=None, **kw)
        if grammar is None:
            return chain
        g = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, grammar._grammar.encode("utf-8"),
                                                 grammar._root.encode("utf-8"))
        if not g:
            raise ValueError("llama.cpp could not build the grammar")
        return LazyGrammarSampler(llama_cpp, chain, g, llm.n_vocab())

    llm._init_sampler = init_sampler
    llm._agora_lazy_grammar = True
    llm._agora_eager_init_sampler = eager


@contextmanager
def eager_grammar(llm: Any) -> Iterator[None]:
    """llama-cpp-python's own whole-vocabulary grammar check for the duration (the benchmark's reference)."""
    lazy = llm.__dict__.get("_init_sampler")
    eager = getattr(llm, "_agora_eager_init_sampler", None)
    if lazy is None or eager is None:
        yield
        return
    llm._init_sampler = eager
    try:
        yield
    finally:
        llm._init_sampler = lazy
