"""Conformance: every registered environment passes the same checks (scripted agents).

In the spirit of PettingZoo's ``api_test``: a new environment registered in
``environments/registry.py`` is picked up here with no edit to this file. Each
environment declares ``quick`` overrides for a run of a few ticks.
"""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import sim
from environments import registry
from sim.engine import Environment, MetricSpec
from sim.events import PUBLIC

ROOT = Path(__file__).resolve().parents[2]
NAMES = list(registry.ENVIRONMENTS)


def base(name: str, seed: int = 5) -> list[str]:
    cls = registry.env_class(name)
    return [f"env={name}", "llm=scripted", f"seed={seed}", *cls.quick]


def strip_volatile(events: pl.DataFrame) -> pl.DataFrame:
    """Events minus wall-clock-dependent payloads (none are expected; kept explicit)."""
    return events


@pytest.fixture(scope="module", params=NAMES)
def ref(request, tmp_path_factory):
    name = request.param
    d = tmp_path_factory.mktemp(f"ref-{name}")
    return name, sim.run([*base(name), f"run.dir={d}"])


def test_declares_the_whole_contract(ref):
    name, _ = ref
    cls = registry.env_class(name)
    assert issubclass(cls, Environment) and cls.name == name
    assert cls.phases and all(callable(getattr(cls, f"phase_{p}", None)) for p in cls.phases)
    assert cls.Config.model_fields, "Config is a pydantic model with fields"
    assert cls.quick, "quick overrides for a short run"
    assert all(isinstance(m, MetricSpec) and m.title and m.source in ("tick", "outcome") for m in cls.metrics)
    keys = [(m.source, m.key) for m in cls.metrics]
    assert len(keys) == len(set(keys)), "a metric is declared once per source"


def test_same_seed_same_events(ref):
    name, r1 = ref
    r2 = sim.run([*base(name), "run.dir=null"])
    assert r1.events.equals(r2.events)
    assert r1.summary["outcome"] == r2.summary["outcome"]


def test_different_seed_different_events(ref):
    name, r1 = ref
    r2 = sim.run([*base(name, seed=6), "run.dir=null"])
    assert not r1.events.equals(r2.events)


def test_run_spans_several_ticks_and_completes(ref):
    name, r = ref
    assert r.summary["status"] == "completed"
    assert r.summary["ticks"] >= 3
    assert r.summary["llm"]["is_llm"] is False


def test_outcome_is_strict_json(ref):
    _, r = ref
    text = json.dumps(r.summary["outcome"], allow_nan=False)
    assert json.loads(text) == r.summary["outcome"]
    on_disk = json.loads((r.dir / "summary.json").read_text())
    assert on_disk["outcome"] == r.summary["outcome"]


def test_every_declared_metric_is_present(ref):
    name, r = ref
    cls = registry.env_class(name)
    metrics = pl.read_parquet(r.dir / "metrics.parquet")
    assert metrics.height == r.summary["ticks"]
    for m in cls.metrics:
        if m.source == "tick":
            assert m.key in metrics.columns, f"{name}: tick metric {m.key} missing from metrics.parquet"
        else:
            assert m.key in r.summary["outcome"], f"{name}: outcome metric {m.key} missing from summary"


def test_event_visibility_is_well_formed(ref):
    name, r = ref
    ev = r.events
    assert ev["seq"].to_list() == list(range(ev.height))
    assert ev["tick"].is_sorted()
    actors = set(ev["actor"].to_list())
    for vis in set(ev["visibility"].to_list()):
        kind, _, who = vis.partition(":")
        assert vis == PUBLIC or (kind in ("team", "private") and who), vis
        if kind == "private":
            assert who in actors or who.startswith(("p", "t", "w")) or who == "planner", vis
    for p in ev["payload"].head(200).to_list():
        json.loads(p)


def test_record_replay_gives_identical_events(ref, tmp_path):
    name, r = ref
    out = tmp_path / "replayed"
    rep = sim.replay(r.dir, out)
    assert rep.events.equals(r.events)


def test_checkpoint_round_trip_continues_identically(ref, tmp_path):
    """Stop after two ticks through the public session, resume from the directory: same events."""
    name, r = ref
    from sim.config import compose, to_dict
    from sim.rundir import RunDir
    from sim.runner import Simulation

    d = tmp_path / "half"
    cfg = to_dict(compose([*base(name), f"run.dir={d}"]))
    s = Simulation(cfg, RunDir(d).create())
    s.start()
    s.step()
    s.step()
    s._runner.close()  # as if the process died here: no finish
    res = sim.resume(d)
    assert res.events.equals(r.events)
    assert res.summary["outcome"] == r.summary["outcome"]


def test_kill_mid_run_then_resume_gives_identical_events(ref, tmp_path):
    name, r = ref
    d = tmp_path / "killed"
    env = {**os.environ, "AGORA_TEST_TICK_DELAY": "0.5"}
    p = subprocess.Popen([sys.executable, "-m", "sim.cli", "run", *base(name), f"run.dir={d}"], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline:  # poll for the first tick's checkpoint
        s = d / "summary.json"
        try:
            if s.exists() and json.loads(s.read_text()).get("ticks", 0) >= 1:
                break
        except ValueError:
            pass
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    assert json.loads((d / "summary.json").read_text())["status"] == "running", "killed before it finished"
    res = sim.resume(d)
    assert res.events.equals(r.events)
    assert pl.read_parquet(d / "events.parquet").equals(r.events)
