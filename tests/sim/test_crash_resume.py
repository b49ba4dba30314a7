"""Killed runs, resumed: nothing lost or doubled, no reply paid twice, the budget replayed exactly.

A kill is simulated at precise points by ``os._exit`` in a child process (no ``finally``, no
flush: what SIGKILL leaves), or in process by stepping a session and never finishing it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import sim
import sim.runner as runner
from sim.cli import main
from sim.config import compose, to_dict
from sim.runner import RunFailed, open_session, replay, resume
from sim.testing.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["llm=scripted", "seed=5", "env.n_players=8", "env.n_traitors=2", "run.progress=off"]
# an LLM run whose budget halts it in tick 1, after some calls were denied. One call at a time:
# these tests compare two live runs (a reference and a killed one), and under concurrency which
# call a nearly spent budget denies depends on which reply the server sent back first (a replay
# from the run's own cache reproduces its denials whatever the concurrency: test_replay*)
LLM = ["llm=openai", "llm.api_key_env=null", "llm.model=loop-model", "llm.rate_limit.rpm=null",
       "engine.concurrency=1",
       "llm.rate_limit.tpm=null", "llm.fallback_models=[]", "agent.reflection.enabled=false",
       "budget.show_remaining=false", "llm.cache.mode=record", "seed=5", "env.n_players=6", "env.n_traitors=1",
       "run.progress=off", "budget.run_usd=0.0004", "budget.on_exhaust=halt"]


@pytest.fixture(autouse=True)
def agora_home(tmp_path, monkeypatch):
    home = tmp_path / "agora-home"
    monkeypatch.setenv("AGORA_HOME", str(home))
    return home


def _tables(d: Path) -> dict[str, pl.DataFrame]:
    out = {n: pl.read_parquet(d / f"{n}.parquet") for n in ("events", "ledger", "metrics")}
    # which run wrote a row, how long a reply took and whether it came from the cache are not results
    out["ledger"] = out["ledger"].drop("run_id", "latency_ms", "cache_hit")
    return out


def _same_run(a: Path, b: Path) -> None:
    ta, tb = _tables(a), _tables(b)
    for name in ta:
        assert ta[name].equals(tb[name]), name
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for k in ("status", "ticks", "outcome"):
        assert sa[k] == sb[k], k
    for k in ("calls", "attempts", "denied", "cost_nano"):
        assert sa["llm"][k] == sb["llm"][k], k


# ---------------------------------------------------------------- kill points
CHILD = """
import os, sys, json, importlib
mod, attr, when, nth, overrides = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
import sim, sim.runner
owner_name, _, fn = attr.rpartition(".")
owner = importlib.import_module(mod)
owner = getattr(owner, owner_name) if owner_name else owner
orig, n = getattr(owner, fn), [0]
def wrapped(*a, **k):
    n[0] += 1
    if n[0] == nth and when == "before":
        os._exit(137)
    out = orig(*a, **k)
    if n[0] == nth and when == "after":
        os._exit(137)
    return out
setattr(owner, fn, wrapped)
sim.run(overrides)
"""


def _killed_at(d: Path, point: tuple[str, str, str, int], overrides: list[str]) -> None:
    p = subprocess.run([sys.executable, "-c", CHILD, *map(str, point), json.dumps([*overrides, f"run.dir={d}"])],
                       cwd=ROOT, env=os.environ, capture_output=True, text=True, timeout=120)
    assert p.returncode == 137, p.stderr[-2000:]


@pytest.mark.parametrize("point", [
    ("sim.rundir", "RunDir.write_part", "after", 5),            # a tick's events part written, not its ledger
    ("sim.rundir", "RunDir.write_checkpoint", "before", 3),      # parts of a tick written, its checkpoint not
    ("sim.rundir", "RunDir.write_checkpoint", "after", 3),       # checkpoint written, partial summary not
    ("sim.runner", "atomic_write_parquet", "after", 1),          # finishing: events.parquet written
    ("sim.runner", "atomic_write_parquet", "after", 3),          # finishing: metrics.parquet written
    ("sim.rundir", "atomic_write_bytes", "before", 12),           # somewhere in the middle
], ids=["mid-tick-parts", "before-ckpt", "after-ckpt", "finish-events", "finish-metrics", "mid-run"])
def test_kill_anywhere_then_resume_gives_the_uninterrupted_run(tmp_path, point):
    ref = tmp_path / "ref"
    sim.run([*SMALL, f"run.dir={ref}"])
    d = tmp_path / "cut"
    _killed_at(d, point, SMALL)
    resume(d)
    _same_run(ref, d)
    ev = pl.read_parquet(d / "events.parquet")
    assert ev["seq"].to_list() == list(range(ev.height)), "no row doubled or missing"
    assert not [p.name for p in d.rglob("*.tmp")], "a write cut by the kill leaves no temporary file behind"


def test_kill_while_streaming_the_final_file_leaves_no_temporary_file(tmp_path):
    ref = tmp_path / "ref"
    sim.run([*SMALL, f"run.dir={ref}"])
    d = tmp_path / "cut"
    # the final events file's temporary copy is on disk when the process dies
    _killed_at(d, ("sim.runner", "_joined", "after", 1), SMALL)
    (d / ".events.parquet.cut.tmp").write_bytes(b"PAR1 half a file")
    (d / "parts" / ".events-0000009.parquet.cut.tmp").write_bytes(b"PAR1")
    resume(d)
    _same_run(ref, d)
    assert not list(d.rglob("*.tmp"))


# ---------------------------------------------------------------- the end of a run
def test_kill_after_the_last_tick_of_a_budget_halted_run_can_be_resumed(tmp_path):
    """The tick that exhausts the budget ends the run; a kill before the final files are written
    left summary.json saying ``aborted_budget`` and resume refused: no events.parquet, ever."""
    with LoopbackServer() as srv:
        ref = sim.run([*LLM, f"llm.base_url={srv.base_url}", f"run.dir={tmp_path / 'ref'}"])
    assert ref.status == "aborted_budget"
    d = tmp_path / "cut"
    with LoopbackServer() as srv:
        s = open_session(to_dict(compose([*LLM, f"llm.base_url={srv.base_url}", f"run.dir={d}"])))
        s.start()
        while s.step():
            pass
        s._runner.close()  # killed before finish
        assert not (d / "events.parquet").exists()
        paid = len(srv.requests)
        res = resume(d)
        assert len(srv.requests) == paid, "resume bought a reply again"
    assert res.status == "aborted_budget"
    _same_run(tmp_path / "ref", d)


# ---------------------------------------------------------------- budgets replay exactly
def test_resume_of_a_budget_halted_llm_run_replays_denials_and_never_respends(tmp_path, monkeypatch):
    """Replayed ticks take their replies from the cache; a cached reply used to settle before the
    next call reserved, so calls the live run was denied went through on resume (and were bought)."""
    with LoopbackServer() as srv:
        sim.run([*LLM, f"llm.base_url={srv.base_url}", f"run.dir={tmp_path / 'ref'}"])
    monkeypatch.setattr(runner, "CHEAP_CHECKPOINT_S", -1.0)
    monkeypatch.setattr(runner, "CHECKPOINT_SHARE", 1e-9)  # only the checkpoint of tick 0: tick 1 is replayed
    d = tmp_path / "cut"
    with LoopbackServer() as srv:
        with pytest.raises(RunFailed):
            sim.run([*LLM, f"llm.base_url={srv.base_url}", f"run.dir={d}"], on_tick=_raise)
        paid = len(srv.requests)
        resume(d)
        assert len(srv.requests) == paid, "resume bought replies the killed run was denied"
    _same_run(tmp_path / "ref", d)
    s = json.loads((d / "summary.json").read_text())
    assert s["llm"]["cost_nano"] <= 0.0004 * 1e9


def test_replay_of_a_budget_halted_llm_run_is_identical(tmp_path, capsys):
    with LoopbackServer() as srv:
        sim.run([*LLM, f"llm.base_url={srv.base_url}", f"run.dir={tmp_path / 'rec'}"])
    res = replay(tmp_path / "rec", tmp_path / "out")
    assert res.status == "aborted_budget"
    _same_run(tmp_path / "rec", tmp_path / "out")


def _raise(s):
    raise RuntimeError("killed by the test")


# ---------------------------------------------------------------- lazily read results
def test_lazy_result_after_the_run_folder_is_gone_is_one_clear_error(tmp_path):
    import shutil

    d = tmp_path / "run"
    res = sim.run(["env=market", "llm=scripted", "seed=3", "env.n_traders=6", "env.ticks=3", "run.progress=off",
                   f"run.dir={d}"])
    shutil.move(d, tmp_path / "moved")
    for table in ("events", "ledger"):
        with pytest.raises(runner.RunDirError) as e:
            getattr(res, table)
        assert str(d) in str(e.value) and "moved or deleted" in str(e.value)


def test_lazy_result_of_a_spilled_run_whose_folder_is_gone_is_one_clear_error(tmp_path, monkeypatch):
    import shutil
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(runner, "MEMORY_ROWS", 40)
    res = sim.run(MARKET)
    (spill,) = tmp_path.glob("agora-spill-*")
    shutil.rmtree(spill)
    with pytest.raises(runner.RunDirError) as e:
        res.ledger
    assert "moved or deleted" in str(e.value)


# ---------------------------------------------------------------- spill folders of in-memory runs
MARKET = ["env=market", "llm=scripted", "seed=3", "env.n_traders=30", "env.ticks=12", "run.progress=off", "run.dir=null"]


@pytest.mark.parametrize("end", ["done", "exception", "interrupt"])
def test_spill_folder_is_private_and_removed_with_the_result(tmp_path, monkeypatch, end):
    import gc
    import stat
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(runner, "MEMORY_ROWS", 40)
    seen = []

    def on_tick(s):
        seen.extend(tmp_path.glob("agora-spill-*"))
        if s.env.tick == 6 and end != "done":
            raise KeyboardInterrupt if end == "interrupt" else RuntimeError("boom")

    if end == "done":
        res = sim.run(MARKET, on_tick=on_tick)
        assert res.ledger.height  # read back from the spill while the result lives
    else:
        with pytest.raises(RunFailed):
            sim.run(MARKET, on_tick=on_tick)
    assert seen, "the run spilled"
    mode = stat.S_IMODE(os.lstat(seen[0]).st_mode)
    assert mode == 0o700 and not seen[0].is_symlink()
    res = None
    gc.collect()
    assert not list(tmp_path.glob("agora-spill-*")), "the spill folder outlived its run"
