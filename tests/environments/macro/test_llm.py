"""LLM households with the embedded model (SmolLM2-135M): a short run completes with valid decisions.

Kept to 15 calls (2 households x 6 months, one survey with one expert): about 10 s a call on a loaded
2-core box (prompts are ~900 tokens).
"""
from __future__ import annotations

import json

import polars as pl
import pytest

import sim

import os

# ~12 minutes on a loaded 2-core box: kept out of `make test` (CI keeps tests/slow/test_embedded_model.py);
# run with AGORA_LONG_TESTS=1
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("AGORA_LONG_TESTS"), reason="long embedded-model test")]


def test_embedded_model_households_decide_on_the_menus(tmp_path):
    r = sim.run(["env=macro", "llm=local", "env.n_households=2", "env.months=6", "env.n_experts=1",
                 "env.survey_every=6", "env.shocks=[{month: 4, kind: news, text: 'Factories reopen.'}]",
                 "agent.reflection.enabled=false", "seed=2", f"run.dir={tmp_path / 'run'}"], progress=False)
    s = r.summary
    assert s["status"] == "completed" and s["llm"]["is_llm"] is True and s["llm"]["usd"] > 0
    calls = [json.loads(p) for p in r.events.filter(pl.col("kind") == "llm_call")["payload"]]
    decide = [c for c in calls if c["purpose"] == "decide"]
    assert len(decide) == 2 * 6
    assert sum(c["source"] == "llm" and c["valid"] for c in decide) >= len(decide) // 2
    for h in (json.loads(p) for p in r.events.filter(pl.col("kind") == "household")["payload"]):
        assert h["work_pct"] % 2 == 0 and h["consume_pct"] % 2 == 0
    assert len([c for c in calls if c["purpose"] == "forecast"]) == 2 + 1  # one survey, month 6
    assert s["outcome"]["conservation_ok"] is True
    assert s["outcome"]["welfare_per_usd"] is not None and s["outcome"]["usd_per_household"] > 0
