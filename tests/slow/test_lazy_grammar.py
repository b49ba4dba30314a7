"""The embedded model's lazy grammar check (sim/inference/providers/lazy_grammar.py), on the real model.

Greedy decoding must pick exactly what llama-cpp-python's whole-vocabulary check picks; sampled
answers must always satisfy the grammar (the lazy check falls back to the whole vocabulary when
the sampled token is rejected, and that fallback must actually happen here).
"""
from __future__ import annotations

import json

import pytest

from environments.traitors.actions import belief_model, vote_model
from sim.inference.caps import bounded_menus

pytest.importorskip("llama_cpp")

MSGS = [{"role": "system", "content": "A party game. Players: p1 Maya, p2 Elena, p3 Dmitri, p4 Vera, p5 Bruno."},
        {"role": "user", "content": "Say in one sentence whom you suspect, then vote to banish a player."}]
SPEECH_VOTE = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 120},
                                                "target": {"type": "string", "enum": ["p2", "p3", "p4", "p5"]}},
               "required": ["text", "target"]}


@pytest.fixture(scope="module")
def llm():
    from sim.inference.providers.local import bundled_gguf, load_llama

    return load_llama(bundled_gguf(), 2048, None)


def _ask(llm, schema, temperature, seed, eager=False):
    from sim.inference.providers.lazy_grammar import eager_grammar

    llm.reset()
    kw = dict(messages=MSGS, max_tokens=160, temperature=temperature, seed=seed,
              response_format={"type": "json_object", "schema": schema})
    if eager:
        with eager_grammar(llm):
            return llm.create_chat_completion(**kw)["choices"][0]["message"]["content"]
    return llm.create_chat_completion(**kw)["choices"][0]["message"]["content"]


@pytest.mark.slow
def test_greedy_answers_equal_the_eager_grammar_check(llm):
    assert getattr(llm, "_agora_lazy_grammar", False)  # the provider's models check grammars lazily
    schemas = [SPEECH_VOTE, bounded_menus(vote_model(["p2", "p3", "p4"]).model_json_schema()),
               bounded_menus(belief_model(["p2", "p3", "p4", "p5"], "top").model_json_schema())]
    for schema in schemas:
        lazy, eager = _ask(llm, schema, 0.0, 1), _ask(llm, schema, 0.0, 1, eager=True)
        assert lazy == eager
        json.loads(lazy)


@pytest.mark.slow
def test_sampled_answers_always_satisfy_the_grammar_and_rejections_fall_back(llm, monkeypatch):
    from sim.inference.providers import lazy_grammar

    seen = []
    real = lazy_grammar.LazyGrammarSampler.sample

    def spy(self, ctx, idx=-1):
        tok = real(self, ctx, idx)
        seen.append(self)
        return tok

    monkeypatch.setattr(lazy_grammar.LazyGrammarSampler, "sample", spy)
    for seed in range(6):
        out = json.loads(_ask(llm, SPEECH_VOTE, 1.0, seed))
        assert set(out) == {"text", "target"} and out["target"] in {"p2", "p3", "p4", "p5"}
        assert len(out["text"]) <= 120
    samplers = {id(s): s for s in seen}.values()
    assert sum(s.rejections for s in samplers) > 0  # the whole-vocabulary fallback ran
    assert sum(s.checks for s in samplers) > sum(s.rejections for s in samplers)  # most tokens passed first time
