"""Engine: determinism, resume after a real kill, atomic writes, bad overrides, visibility."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import sim
from sim.config import ConfigError, compose
from sim.events import EventLog, filter_visible, visible_to
from sim.rundir import atomic_write_json, atomic_write_parquet

ROOT = Path(__file__).resolve().parents[2]
AGORA = [sys.executable, "-m", "sim.cli"]


def test_same_seed_gives_identical_events(tmp_path):
    a = sim.run(["llm=scripted", "seed=7", f"run.dir={tmp_path/'a'}"])
    b = sim.run(["llm=scripted", "seed=7", f"run.dir={tmp_path/'b'}"])
    assert a.events.height > 50
    assert a.events.equals(b.events)
    assert (tmp_path / "a/events.parquet").read_bytes() == (tmp_path / "b/events.parquet").read_bytes()
    c = sim.run(["llm=scripted", "seed=8", "run.dir=null"])
    assert not a.events.equals(c.events)


def test_in_memory_run_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = sim.run(["llm=scripted", "run.dir=null"])
    assert res.dir is None and not any(tmp_path.iterdir())
    assert res.summary["status"] == "completed"
    assert res.summary["outcome"]["winner"] in ("faithful", "traitors")


def test_run_directory_contract(tmp_path):
    res = sim.run(["llm=scripted", f"run.dir={tmp_path}", "seed=3"])
    s = json.loads((tmp_path / "summary.json").read_text())
    for k in ("env", "seed", "status", "ticks", "outcome", "llm", "budget_usd", "wall_s"):
        assert k in s
    for k in ("calls", "tokens_in", "tokens_out", "usd"):
        assert k in s["llm"]
    assert s["llm"]["is_llm"] is False and "not an LLM" in s["llm"]["note"]
    led = pl.read_parquet(tmp_path / "ledger.parquet")
    assert "provider" in led.columns and set(led["provider"]) == {"scripted"}
    assert s["llm"]["calls"] == led.filter(pl.col("outcome") == "ok").height
    assert pl.read_parquet(tmp_path / "metrics.parquet").height == s["ticks"]
    assert (tmp_path / "config.yaml").exists()
    assert list((tmp_path / "trust").glob("*.graphml"))
    assert res.events.equals(pl.read_parquet(tmp_path / "events.parquet"))


def test_phases_are_visible_in_the_event_log():
    res = sim.run(["llm=scripted", "run.dir=null", "seed=2"])
    starts = res.events.filter((pl.col("kind") == "phase_start") & (pl.col("tick") == 1))["phase"].to_list()
    assert starts == ["breakfast", "roundtable", "belief", "banish", "reactions", "recruit", "conclave",
                      "murder"][: len(starts)]
    assert starts[:4] == ["breakfast", "roundtable", "belief", "banish"]


def test_resume_after_kill_gives_same_events(tmp_path):
    ref = sim.run(["llm=scripted", "seed=11", "env.n_players=14", "env.n_traitors=4", f"run.dir={tmp_path/'ref'}"])
    d = tmp_path / "killed"
    # a slow-ish run in a real subprocess, killed with SIGKILL once a checkpoint exists
    env = {**os.environ, "AGORA_TEST_TICK_DELAY": "0.4"}
    p = subprocess.Popen(AGORA + ["run", "llm=scripted", "seed=11", "env.n_players=14", "env.n_traitors=4",
                                  f"run.dir={d}"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        s = d / "summary.json"
        if s.exists() and json.loads(s.read_text()).get("ticks", 0) >= 2:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    partial = json.loads((d / "summary.json").read_text())
    assert partial["status"] == "running" and partial["ticks"] < ref.summary["ticks"]
    out = subprocess.run(AGORA + ["resume", str(d)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    resumed = pl.read_parquet(d / "events.parquet")
    assert resumed.equals(ref.events)
    assert json.loads((d / "summary.json").read_text())["status"] == "completed"


def test_atomic_writes_leave_old_file_on_failure(tmp_path):
    f = tmp_path / "x.json"
    atomic_write_json(f, {"a": 1})

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(Exception):
        atomic_write_json(f, {"a": Boom()})
    assert json.loads(f.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]
    pq = tmp_path / "t.parquet"
    atomic_write_parquet(pq, pl.DataFrame({"a": [1]}))
    with pytest.raises(Exception):
        atomic_write_parquet(pq, pl.DataFrame({"a": [object()]}))
    assert pl.read_parquet(pq)["a"].to_list() == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet", "x.json"]


@pytest.mark.parametrize("override,needle", [
    ("env=nosuch", "env=nosuch is not a known option; allowed: "),
    ("llm=gpt9", "llm=gpt9 is not a known option"),
    ("env.n_players=abc", "env.n_players"),
    ("env.bogus=1", "unknown key 'env.bogus'"),
    ("env.n_traitors=5", "env.n_traitors=5"),
    ("budget.on_exhaust=panic", "budget.on_exhaust"),
    ("env.speaker_order=loud", "env.speaker_order='loud'"),
])
def test_bad_override_is_one_clear_line(override, needle):
    with pytest.raises(ConfigError) as e:
        compose([override])
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_cli_bad_override_exit_2_no_traceback():
    out = subprocess.run(AGORA + ["run", "env.n_players=-3"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().startswith("error: env.n_players=-3")
    assert len(out.stderr.strip().splitlines()) == 1


def test_visibility_filter():
    log = EventLog()
    log.emit(1, "x", "p1", "speech", {"t": 1})
    log.emit(1, "x", "p2", "vote", {}, "private:p2")
    log.emit(1, "x", "p3", "speech", {}, "team:traitors")
    log.emit(1, "x", "p1", "belief", {}, "private:p10")
    df = log.frame()
    assert filter_visible(df, "p1").height == 1
    assert filter_visible(df, "p2").height == 2
    assert filter_visible(df, "p3", ["traitors"]).height == 2
    assert not visible_to("private:p10", "p1") and visible_to("team:a", "x", ["a"])
    with pytest.raises(ValueError):
        log.emit(1, "x", "p1", "speech", {}, "secret")


def test_agents_memories_hold_only_what_they_could_see(tmp_path):
    from sim.runner import Simulation
    from sim.config import to_dict

    cfg = to_dict(compose(["llm=scripted", "run.dir=null", "seed=4", "agent.memory.scripted=true"]))
    s = Simulation(cfg, None)
    s.run(progress=False)
    env = s.env
    events = s.events.frame()
    for a in env.players():
        seen = set(a.memory.records()[i].text for i in range(len(a.memory)) if a.memory.kinds[i] == "observation")
        assert seen
        hidden = filter_visible(events, "nobody")  # public only
        if a.role == "faithful":
            team_texts = events.filter(pl.col("visibility") == "team:traitors")
            assert team_texts.height > 0
        # every stored memory came from an event this agent was allowed to see
        allowed = set(filter_visible(events, a.aid, a.teams)["seq"].to_list())
        srcs = [r.source_seq for r in a.memory.records() if r.source_seq is not None]
        assert srcs and set(srcs) <= allowed
        assert hidden.height < events.height


def test_event_payload_text_is_canonical_json():
    import json

    import numpy as np

    from sim.events import dumps

    ref = lambda p: json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False,  # noqa: E731
                               default=lambda o: o.item() if hasattr(o, "item") else list(o))
    for p in ({"worker": "w001", "hours": 12.5, "income": 123.4567}, {"b": [1, 2.5, np.float64(0.1)],
              "a": {"z": 'é\n"', "y": (1, 2)}, "c": None, "d": True, "f": 1e16, "g": {1: 2}}, {}):
        assert dumps(p) == ref(p)
