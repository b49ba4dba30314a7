"""Damaged or hostile run folders: resume, report, replay and lazily read results say one line
(``error: ...``, exit 2), never a traceback, never hang, and never read data from outside the run."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import sim
from sim.cli import main
from sim.rundir import RunDir, UnreadableTable
from sim.runner import RunFailed

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["llm=scripted", "seed=5", "env.n_players=8", "env.n_traitors=2", "run.progress=off"]


@pytest.fixture(autouse=True)
def agora_home(tmp_path, monkeypatch):
    monkeypatch.setenv("AGORA_HOME", str(tmp_path / "agora-home"))


def _stop(s):
    if s.env.tick >= 2:
        raise RuntimeError("stopped by the test")


@pytest.fixture
def killed(tmp_path) -> Path:
    """A run as a kill leaves it: parts and a checkpoint, no final files, summary still running."""
    d = tmp_path / "run"
    with pytest.raises(RunFailed):
        sim.run([*SMALL, f"run.dir={d}"], on_tick=_stop)
    for n in ("events", "ledger", "metrics"):
        (d / f"{n}.parquet").unlink()
    s = json.loads((d / "summary.json").read_text())
    (d / "summary.json").write_text(json.dumps(s | {"status": "running", "partial": True}))
    return d


@pytest.fixture
def foreign(tmp_path) -> Path:
    f = tmp_path / "elsewhere" / "foreign.parquet"
    f.parent.mkdir()
    pl.DataFrame({"call_id": [999], "phase": ["FOREIGN"], "purpose": ["x"], "outcome": ["ok"], "tokens_in": [1],
                  "tokens_out": [1], "cost_nano": [10**12]}).write_parquet(f)
    return f


def _cli(capsys, *args: str) -> tuple[int, str, list[str]]:
    capsys.readouterr()
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err.strip().splitlines()


def _part(d: Path, table: str, i: int = 0) -> Path:
    return sorted((d / "parts").glob(f"{table}-*.parquet"))[i]


def test_report_never_reads_a_part_linked_from_outside(killed, foreign, capsys):
    os.symlink(foreign, killed / "parts" / "ledger-0000999.parquet")
    rc, out, err = _cli(capsys, "report", str(killed))
    assert "FOREIGN" not in out
    assert rc == 0 and any("ledger unreadable" in e and "link" in e for e in err), err


def test_report_never_reads_a_parts_folder_linked_from_outside(killed, foreign, capsys):
    os.symlink(foreign, foreign.parent / "ledger-0000001.parquet")
    shutil.rmtree(killed / "parts")
    os.symlink(foreign.parent, killed / "parts")
    rc, out, err = _cli(capsys, "report", str(killed))
    assert "FOREIGN" not in out and rc == 0


def test_resume_refuses_a_parts_folder_linked_elsewhere_and_deletes_nothing_there(killed, tmp_path, capsys):
    real = tmp_path / "real-parts"
    shutil.move(killed / "parts", real)
    os.symlink(real, killed / "parts")
    before = sorted(p.name for p in real.iterdir())
    rc, _, err = _cli(capsys, "resume", str(killed))
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {killed / 'parts'}: "), err
    assert sorted(p.name for p in real.iterdir()) == before


@pytest.mark.parametrize("swap", ["link", "huge", "fifo"])
def test_resume_refuses_a_checkpointed_part_swapped_before_reading_it(killed, capsys, swap):
    part = _part(killed, "events", 0)
    data = part.read_bytes()
    part.unlink()
    if swap == "link":
        (killed.parent / "copy.parquet").write_bytes(data)  # even the same bytes: a link is not the run's file
        os.symlink(killed.parent / "copy.parquet", part)
    elif swap == "huge":
        with open(part, "wb") as f:
            f.truncate(1 << 40)  # sparse: 1 TiB that must never be read into memory
    else:
        os.mkfifo(part)  # a read would block forever
    rc, _, err = _cli(capsys, "resume", str(killed))
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {part}: checkpoint refused: "), err


@pytest.mark.parametrize("damage", ["truncated", "garbage", "fifo", "link"])
def test_replay_of_a_damaged_recording_is_one_line(tmp_path, foreign, damage):
    """The replay itself runs from config and cache; comparing with the damaged recording said a traceback
    (or, for a FIFO among the parts, never returned)."""
    rec = tmp_path / "rec"
    sim.run([*SMALL, f"run.dir={rec}"])
    (rec / "events.parquet").unlink()  # a killed recording: its events are its parts
    part = _part(rec, "events", 1)
    if damage == "truncated":
        part.write_bytes(part.read_bytes()[:40])
    elif damage == "garbage":
        part.write_bytes(b"PAR1" + os.urandom(500) + b"PAR1")
    elif damage == "fifo":
        os.mkfifo(rec / "parts" / "events-0999999.parquet")
    else:
        os.symlink(foreign, rec / "parts" / "events-0999999.parquet")
    p = subprocess.run([sys.executable, "-m", "sim.cli", "replay", str(rec), "--out", str(tmp_path / "out")],
                       cwd=ROOT, env=os.environ, capture_output=True, text=True, timeout=120)
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(err) == 1 and err[0].startswith("error: ") and "parts" in err[0], p.stderr


@pytest.mark.parametrize("text", ["run: [unclosed", "- just\n- a list\n", "run: 3\nllm: {}\n"])
def test_replay_of_a_recording_with_a_bad_config_is_one_line(tmp_path, capsys, text):
    rec = tmp_path / "rec"
    sim.run([*SMALL, f"run.dir={rec}"])
    (rec / "config.yaml").write_text(text)
    rc, _, err = _cli(capsys, "replay", str(rec), "--out", str(tmp_path / "out"))
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {rec / 'config.yaml'}: "), err


def test_read_table_names_the_bad_file_and_is_an_oserror_for_readers_that_carry_on(killed):
    part = _part(killed, "ledger", 0)
    part.write_bytes(b"not parquet")
    with pytest.raises(UnreadableTable) as e:
        RunDir(killed).read_table("ledger")
    assert str(e.value).startswith(f"{part}: ") and isinstance(e.value, (OSError, ValueError))
