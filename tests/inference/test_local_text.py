"""The local provider's plain-text path for single-string actions (no model needed)."""
from __future__ import annotations

import json

import pytest

from agents.cognition import Reflection
from environments.traitors.actions import RecruitAnswer, Speech, belief_model, vote_model
from sim.inference.providers.local import single_text_field, wrap_text


def test_only_single_free_string_schemas_take_the_text_path():
    assert single_text_field(Speech.model_json_schema()) == ("text", 160)
    assert single_text_field(Reflection.model_json_schema()) == ("insight", 160)
    assert single_text_field(vote_model(["p1", "p2"]).model_json_schema()) is None  # enum: grammar
    assert single_text_field(belief_model(["p1"], "list").model_json_schema()) is None
    assert single_text_field(RecruitAnswer.model_json_schema()) is None
    assert single_text_field(None) is None


@pytest.mark.parametrize("raw, want", [
    ('{"text": "I suspect p3 because he lied"}', "I suspect p3 because he lied"),
    ('{"text": "cut off by the token cap', "cut off by the token cap"),
    ('```json\n{"text": "fenced"}\n```', "fenced"),
    ('  "quoted"  ', "quoted"),
    ("plain words\nover two lines", "plain words over two lines"),
    ('{"text": "escaped \\"quote\\" inside"}', 'escaped "quote" inside'),
])
def test_wrap_text_extracts_the_string(raw, want):
    out = wrap_text(raw, "text", 160)
    assert json.loads(out) == {"text": want}
    Speech.model_validate_json(out)  # what the client will check


def test_wrap_text_cuts_at_a_word_boundary_within_max_length():
    out = json.loads(wrap_text(" ".join(["word"] * 80), "text", 160))["text"]
    assert len(out) <= 160 and out.endswith("word") and not out.endswith(" ")
    assert len(json.loads(wrap_text("x" * 300, "text", 160))["text"]) == 160


def test_empty_reply_stays_invalid_so_the_client_reasks():
    with pytest.raises(ValueError):
        Speech.model_validate_json(wrap_text("   ", "text", 160))


def test_default_threads_leave_busy_cores_alone():
    from sim.inference.providers.local import default_threads

    assert default_threads(cpus=2, load=0.1) == 2  # a quiet 2-core box: one thread per core
    assert default_threads(cpus=2, load=1.0) == 1  # one core taken: llama.cpp's barrier would stall
    assert default_threads(cpus=2, load=9.0) == 1  # never fewer than one
    assert default_threads(cpus=16, load=0.0) == 4  # at most 4
