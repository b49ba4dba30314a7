"""Bounded memory and incremental checkpoints: rows leave memory for parts, nothing is lost or doubled."""
from __future__ import annotations

import polars as pl
import pytest

import sim
import sim.runner as runner
from sim.events import EventLog, Rows
from sim.rundir import RunDir
from sim.runner import RunFailed, Simulation, load_checkpoint, resume

TRAITORS = ["llm=scripted", "seed=5", "env.n_players=8", "env.n_traitors=2", "run.progress=off"]
MARKET = ["env=market", "llm=scripted", "seed=3", "env.n_traders=30", "env.ticks=12", "run.progress=off"]


@pytest.fixture(autouse=True)
def agora_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AGORA_HOME", str(tmp_path / "agora-home"))


def _small_memory(monkeypatch, rows: int = 40) -> None:
    monkeypatch.setattr(runner, "MEMORY_ROWS", rows)


# ---------------------------------------------------------------- Rows
def test_rows_count_and_read_back_rows_that_left_memory(tmp_path):
    log = EventLog()
    for i in range(10):
        log.emit(i, "p", "a", "k", {"i": i})
    rd = RunDir(tmp_path).create()
    log.rows.add_part(0, 6, rd.write_part("events", 0, log.frame(0, 6)))
    log.rows.forget(6)
    assert log.rows.held() == 4 and len(log.rows) == 10 and log.rows.base == 6
    assert [e.seq for e in log.rows] == list(range(10))
    assert [e.seq for e in log.rows[4:8]] == [4, 5, 6, 7]
    assert [e.seq for e in log.rows[7:]] == [7, 8, 9]
    assert log.rows[2].seq == 2 and log.rows[-1].seq == 9
    assert [e.seq for e in reversed(log.rows)] == list(range(9, -1, -1))
    assert log.frame()["seq"].to_list() == list(range(10))
    assert log.frame(3, 8)["seq"].to_list() == [3, 4, 5, 6, 7]
    log.emit(10, "p", "a", "k", {})
    assert log.rows[-1].seq == 10  # new rows keep counting from every row ever appended


def test_rows_never_forget_what_no_part_holds():
    r = Rows(list)
    r.extend([1, 2, 3])
    r.forget(3)
    assert r.held() == 3 and list(r) == [1, 2, 3]


# ---------------------------------------------------------------- in memory
@pytest.mark.parametrize("over", [TRAITORS, MARKET], ids=["traitors", "market"])
def test_in_memory_run_spills_and_gives_the_same_result(over, monkeypatch):
    ref = sim.run([*over, "run.dir=null"])
    _small_memory(monkeypatch)
    held = []
    res = sim.run([*over, "run.dir=null"], on_tick=lambda s: held.append(s.events.rows.held()))
    assert max(held) < ref.events.height / 2, "old rows left memory"
    assert res.summary["outcome"] == ref.summary["outcome"]
    assert res.summary["llm"]["calls"] == ref.summary["llm"]["calls"]
    assert res.events.equals(ref.events)
    assert res.ledger.drop("run_id").equals(ref.ledger.drop("run_id"))
    assert res.metrics.equals(ref.metrics)


# ---------------------------------------------------------------- run folder
def test_run_folder_files_are_the_parts_joined(tmp_path, monkeypatch):
    ref = sim.run([*MARKET, f"run.dir={tmp_path / 'ref'}"])
    _small_memory(monkeypatch)
    d = tmp_path / "small"
    res = sim.run([*MARKET, f"run.dir={d}"])
    for name in ("events", "ledger", "metrics"):
        a, b = pl.read_parquet(tmp_path / "ref" / f"{name}.parquet"), pl.read_parquet(d / f"{name}.parquet")
        if name == "ledger":
            a, b = a.drop("run_id"), b.drop("run_id")
        assert a.equals(b), name
    assert res.events.equals(ref.events)
    assert res.summary["outcome"] == ref.summary["outcome"]


def test_checkpoints_are_skipped_while_they_are_dear_and_resume_replays_the_gap(tmp_path, monkeypatch):
    """Checkpoints written rarely (as for a large run): a run stopped after tick 5 resumes from the last
    one; the parts after it are dropped and played again, so no event or ledger row is missing or doubled."""
    ref = sim.run([*TRAITORS, f"run.dir={tmp_path / 'ref'}"])
    _small_memory(monkeypatch)
    monkeypatch.setattr(runner, "CHEAP_CHECKPOINT_S", -1.0)
    monkeypatch.setattr(runner, "CHECKPOINT_SHARE", 1e-9)  # never due again after the forced one at tick 0
    d = tmp_path / "cut"
    from sim.config import compose, to_dict

    s = Simulation(to_dict(compose([*TRAITORS, f"run.dir={d}"])), RunDir(d).create())
    s.start()
    for _ in range(3):
        s.step()
    s._runner.close()  # the process dies here
    st = load_checkpoint(RunDir(d))
    assert st["tick"] == 0, "only the forced checkpoint was written"
    assert len(list((d / "parts").glob("events-*.parquet"))) > len(st["parts"]), "parts past the checkpoint"
    monkeypatch.setattr(runner, "CHEAP_CHECKPOINT_S", 0.1)
    res = resume(d)
    ev = pl.read_parquet(d / "events.parquet")
    assert ev["seq"].to_list() == list(range(ev.height))
    assert ev.equals(ref.events) and res.events.equals(ref.events)
    led = pl.read_parquet(d / "ledger.parquet").drop("run_id")
    assert led.equals(ref.ledger.drop("run_id"))
    assert res.summary["outcome"] == ref.summary["outcome"]
    assert res.summary["llm"]["calls"] == ref.summary["llm"]["calls"]


def test_resume_leaves_the_rows_on_disk_until_asked(tmp_path, monkeypatch):
    """A resumed run reads its verified parts lazily: none of the earlier rows is held in memory."""
    ref = sim.run([*MARKET, f"run.dir={tmp_path / 'ref'}"])
    d = tmp_path / "cut"
    with pytest.raises(RunFailed):
        sim.run([*MARKET, f"run.dir={d}"], on_tick=_stop_after(4))
    st = load_checkpoint(RunDir(d))
    rd = RunDir(d)
    rd.drop_parts_not_in(st["parts"])
    s = Simulation(st["cfg"], rd, resume_state=st)
    assert s.events.rows.held() == 0 and len(s.events.rows) == sum(n for _, n in st["events"]) > 0
    assert s.ledger.rows.held() == 0
    res = s.run(progress=False)
    assert res.events.equals(ref.events)
    assert res.summary["llm"]["calls"] == ref.summary["llm"]["calls"]


def _stop_after(tick: int):
    def on_tick(s):
        if s.env.tick >= tick:
            raise RuntimeError("stopped by the test")
    return on_tick


def test_on_tick_sees_every_tick_the_last_one_included():
    seen = []
    res = sim.run(["env=market", "llm=scripted", "run.dir=null", "env.n_traders=4", "env.ticks=5", "seed=2"],
                  progress=False, on_tick=lambda s: seen.append(s.env.tick))
    assert res.summary["ticks"] == 5
    assert seen == [1, 2, 3, 4, 5]
