"""A run writes only into a new or empty folder (or its own); replay never writes over its recording."""
from __future__ import annotations

from pathlib import Path

import pytest

import sim
from sim.cli import main
from sim.rundir import RunDir

SMALL = ["llm=scripted", "seed=5", "env.n_players=8", "env.n_traitors=2", "run.progress=off"]


@pytest.fixture(autouse=True)
def agora_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AGORA_HOME", str(tmp_path / "agora-home"))


def _snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main(argv)
    return rc, capsys.readouterr().err.strip().splitlines()


# ---------------------------------------------------------------- run.dir
def test_run_dir_dot_never_overwrites_the_users_config(tmp_path, monkeypatch, capsys):
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.yaml").write_text("my: own settings\n")
    (work / "notes.txt").write_text("hello\n")
    monkeypatch.chdir(work)
    before = _snapshot(work)
    rc, err = _cli(["run", *SMALL, "run.dir=."], capsys)
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("error: run.dir=.: the folder is not empty and is not this run")
    assert "config.yaml" in err[0] and "run.overwrite=true" in err[0]
    assert _snapshot(work) == before and sorted(p.name for p in work.iterdir()) == ["config.yaml", "notes.txt"]


def test_second_run_into_a_run_folder_is_refused_and_touches_nothing(tmp_path, capsys):
    d = tmp_path / "run"
    sim.run([*SMALL, f"run.dir={d}"])
    before = _snapshot(d)
    rc, err = _cli(["run", *SMALL, "seed=6", f"run.dir={d}"], capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: run.dir={d}: the folder is not empty")
    assert _snapshot(d) == before
    # the same config again is still a second run: refused too
    rc, err = _cli(["run", *SMALL, f"run.dir={d}"], capsys)
    assert rc == 2 and _snapshot(d) == before


def test_overwrite_true_replaces_the_old_run_without_mixing(tmp_path):
    d = tmp_path / "run"
    sim.run([*SMALL, "env.n_players=14", "env.n_traitors=4", f"run.dir={d}"])
    (d / "mine.txt").write_text("kept\n")
    res = sim.run([*SMALL, "seed=6", f"run.dir={d}", "run.overwrite=true"])
    fresh = sim.run([*SMALL, "seed=6", f"run.dir={tmp_path / 'fresh'}"])
    assert res.summary["seed"] == 6 and res.events.equals(fresh.events)
    names = lambda p: sorted(f.name for f in (p / "parts").iterdir())  # noqa: E731
    assert names(d) == names(tmp_path / "fresh")  # no part of the old, longer run is left behind
    assert (d / "mine.txt").read_text() == "kept\n"


def test_empty_or_new_folder_is_fine(tmp_path):
    (tmp_path / "empty").mkdir()
    assert sim.run([*SMALL, f"run.dir={tmp_path / 'empty'}"]).status == "completed"
    assert sim.run([*SMALL, f"run.dir={tmp_path / 'new' / 'deeper'}"]).status == "completed"


def test_hydra_job_folder_counts_as_empty(tmp_path):
    """A sweep job's run.dir is Hydra's output folder, which already holds .hydra/ and the job log."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("x: 1\n")
    (tmp_path / "hydra_main.log").write_text("")
    assert RunDir(tmp_path).foreign_entries() == []
    (tmp_path / "other.txt").write_text("")
    assert RunDir(tmp_path).foreign_entries() == ["other.txt"]


# ---------------------------------------------------------------- replay
@pytest.fixture
def recording(tmp_path):
    d = tmp_path / "rec"
    sim.run([*SMALL, f"run.dir={d}"])
    return d


@pytest.mark.parametrize("out", [".", "sub", "parts"])
def test_replay_into_the_recording_is_refused(recording, capsys, out):
    before = _snapshot(recording)
    target = recording if out == "." else recording / out
    rc, err = _cli(["replay", str(recording), "--out", str(target)], capsys)
    assert rc == 2 and len(err) == 1 and "is the recording" in err[0]
    assert _snapshot(recording) == before and (out != "sub" or not target.exists())


def test_replay_through_a_symlink_to_the_recording_is_refused(recording, tmp_path, capsys):
    link = tmp_path / "link"
    link.symlink_to(recording)
    before = _snapshot(recording)
    rc, err = _cli(["replay", str(recording), "--out", str(link)], capsys)
    assert rc == 2 and "is the recording" in err[0] and _snapshot(recording) == before


def test_replay_into_a_non_empty_folder_needs_overwrite(recording, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x\n")
    rc, err = _cli(["replay", str(recording), "--out", str(out)], capsys)
    assert rc == 2 and len(err) == 1 and "--overwrite" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    rc, _ = _cli(["replay", str(recording), "--out", str(out), "--overwrite"], capsys)
    assert rc == 0 and (out / "events.parquet").exists() and (out / "keep.txt").exists()
    rc, _ = _cli(["replay", str(recording), "--out", str(tmp_path / "new")], capsys)
    assert rc == 0
