"""Checkpoints: a run directory is data, never code.

Only a snapshot signed with this machine's key is ever unpickled; anything
else (a crafted pickle, a flipped byte, a truncated or empty file, an edited
part, the old ``latest.pkl``) is refused with one line naming the file.
"""
from __future__ import annotations

import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import time
import zlib
from pathlib import Path

import polars as pl
import pytest

import sim
from sim.cli import main
from sim.runner import RunFailed, Simulation, load_checkpoint, resume
from sim.rundir import CKPT_NAME, MAGIC, TAG_LEN, CheckpointError, RunDir, machine_key

SMALL = ["llm=scripted", "seed=5", "env.n_players=8", "env.n_traitors=2", "run.progress=off"]
SECRET = "sk-test-SECRET123"


@pytest.fixture(autouse=True)
def agora_home(tmp_path, monkeypatch):
    """A private machine key per test; never the user's own."""
    home = tmp_path / "agora-home"
    monkeypatch.setenv("AGORA_HOME", str(home))
    return home


class _Stop(Exception):
    pass


def _stop_after(tick: int):
    def on_tick(s):
        if s.env.tick >= tick:
            raise _Stop("stopped by the test")  # the run is left as a kill at this tick leaves it
    return on_tick


def _interrupted_run(d: Path, extra: list[str] = (), tick: int = 2) -> Path:
    with pytest.raises(RunFailed):
        sim.run([*SMALL, *extra, f"run.dir={d}"], on_tick=_stop_after(tick))
    assert (d / "checkpoints" / CKPT_NAME).exists()
    return d


def _resume_cli(d: Path, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    rc = main(["resume", str(d)])
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


class _Marker:
    """A pickle that, if ever loaded, runs a shell command that writes a file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ---------------------------------------------------------------- code never runs
def test_legacy_pickle_checkpoint_is_never_loaded(tmp_path, capsys):
    d = tmp_path / "run"
    _interrupted_run(d)
    marker = tmp_path / "PWNED"
    (d / "checkpoints" / CKPT_NAME).unlink()
    (d / "checkpoints" / "latest.pkl").write_bytes(pickle.dumps(_Marker(marker)))
    rc, err = _resume_cli(d, capsys)
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"error: {d / 'checkpoints' / 'latest.pkl'}: checkpoint refused")
    assert "no longer loaded" in err[0]
    assert not marker.exists()


def test_crafted_checkpoint_with_reduce_payload_is_refused_before_unpickling(tmp_path, capsys):
    d = tmp_path / "run"
    _interrupted_run(d)
    marker = tmp_path / "PWNED"
    body = zlib.compress(pickle.dumps(_Marker(marker)))
    f = d / "checkpoints" / CKPT_NAME
    f.write_bytes(MAGIC + b"\0" * TAG_LEN + body)  # right header, forged tag
    rc, err = _resume_cli(d, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {f}: checkpoint refused")
    assert not marker.exists()
    f.write_bytes(pickle.dumps(_Marker(marker)))  # a bare pickle renamed .ckpt
    rc, err = _resume_cli(d, capsys)
    assert rc == 2 and len(err) == 1 and "not an Agora checkpoint" in err[0]
    assert not marker.exists()


# ---------------------------------------------------------------- tampering
def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize("how", ["flip_header", "flip_tag", "flip_body", "flip_last", "truncated", "cut_in_tag",
                                 "empty", "appended"])
def test_tampered_checkpoint_is_refused_with_one_line(tmp_path, capsys, how):
    d = _interrupted_run(tmp_path / "run")
    f = d / "checkpoints" / CKPT_NAME
    data = f.read_bytes()
    bad = {"flip_header": lambda: _flip(data, 3), "flip_tag": lambda: _flip(data, len(MAGIC) + 5),
           "flip_body": lambda: _flip(data, len(MAGIC) + TAG_LEN + 40), "flip_last": lambda: _flip(data, len(data) - 1),
           "truncated": lambda: data[: len(data) // 2], "cut_in_tag": lambda: data[: len(MAGIC) + 7],
           "empty": lambda: b"", "appended": lambda: data + b"\0"}[how]()
    f.write_bytes(bad)
    before = sorted(p.name for p in (d / "parts").iterdir())
    rc, err = _resume_cli(d, capsys)
    assert rc == 2, err
    assert len(err) == 1 and err[0].startswith(f"error: {f}: checkpoint refused: "), err
    assert "Traceback" not in err[0]
    assert sorted(p.name for p in (d / "parts").iterdir()) == before  # a refused resume touches nothing


def test_checkpoint_from_another_machine_is_refused(tmp_path, capsys, monkeypatch):
    d = _interrupted_run(tmp_path / "run")
    monkeypatch.setenv("AGORA_HOME", str(tmp_path / "other-machine"))
    rc, err = _resume_cli(d, capsys)
    assert rc == 2 and len(err) == 1 and "another machine" in err[0]


def _edit_payload(part: Path) -> None:
    df = pl.read_parquet(part)
    i = df.height - 1
    payload = df["payload"].to_list()
    payload[i] = payload[i].replace("}", ',"forged":1}', 1) if payload[i] != "{}" else '{"forged":1}'
    df.with_columns(pl.Series("payload", payload)).write_parquet(part)


def test_edited_event_payload_in_a_part_is_refused(tmp_path, capsys):
    d = _interrupted_run(tmp_path / "run")
    part = sorted((d / "parts").glob("events-*.parquet"))[1]
    _edit_payload(part)
    rc, err = _resume_cli(d, capsys)
    assert rc == 2 and len(err) == 1
    assert err[0].startswith(f"error: {part}: checkpoint refused: ") and "sha256" in err[0]


def test_missing_part_is_refused(tmp_path, capsys):
    d = _interrupted_run(tmp_path / "run")
    part = sorted((d / "parts").glob("ledger-*.parquet"))[-1]
    part.unlink()
    rc, err = _resume_cli(d, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {part}: checkpoint refused: ")


def test_read_checkpoint_raises_checkpoint_error(tmp_path):
    d = _interrupted_run(tmp_path / "run")
    f = d / "checkpoints" / CKPT_NAME
    f.write_bytes(f.read_bytes()[:-3])
    with pytest.raises(CheckpointError) as e:
        RunDir(d).read_checkpoint()
    assert isinstance(e.value, ValueError) and e.value.path == f


# ---------------------------------------------------------------- resume still exact
def test_resume_from_signed_checkpoint_gives_identical_files(tmp_path):
    ref = sim.run([*SMALL, f"run.dir={tmp_path / 'ref'}"])
    d = _interrupted_run(tmp_path / "cut", tick=2)
    # a part of the tick in flight (written after the last checkpoint) is dropped on resume
    stray = d / "parts" / "events-0000099.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(stray)
    res = resume(d)
    assert res.status == "completed" and not stray.exists()
    assert res.events.equals(ref.events)
    for name in ("events", "ledger", "metrics"):
        a = pl.read_parquet(tmp_path / "ref" / f"{name}.parquet")
        b = pl.read_parquet(d / f"{name}.parquet")
        if name == "ledger":
            a, b = a.drop("run_id"), b.drop("run_id")
        assert a.equals(b), name


def test_resume_twice_from_the_same_interrupted_run(tmp_path):
    """A resumed run checkpoints on top of the restored parts: stop it again and resume again."""
    ref = sim.run([*SMALL, f"run.dir={tmp_path / 'ref'}"])
    d = _interrupted_run(tmp_path / "cut", tick=1)
    rd = RunDir(d)
    st = load_checkpoint(rd)
    rd.drop_parts_not_in(st["parts"])
    with pytest.raises(RunFailed):
        Simulation(st["cfg"], rd, resume_state=st).run(progress=False, on_tick=_stop_after(2))
    res = resume(d)
    assert res.events.equals(ref.events)


def test_resume_of_a_completed_run_is_one_line(tmp_path, capsys):
    d = tmp_path / "done"
    sim.run([*SMALL, f"run.dir={d}"])
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    rc, err = _resume_cli(d, capsys)
    assert rc == 2 and len(err) == 1
    assert err[0] == f"error: {d}: the run already finished (status completed); there is nothing to resume"
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before


# ---------------------------------------------------------------- nothing secret, key stays home
def test_no_secret_in_any_run_file_nor_in_the_snapshot(tmp_path):
    d = tmp_path / "run"
    _interrupted_run(d, extra=[f"+llm.class_kwargs.api_key={SECRET}"])
    files = [p for p in d.rglob("*") if p.is_file()]
    assert files
    for p in files:
        data = p.read_bytes()
        assert SECRET.encode() not in data, p
        if p.name == CKPT_NAME:
            raw = zlib.decompress(data[len(MAGIC) + TAG_LEN:])
            assert SECRET.encode() not in raw
            assert b"class_kwargs" in raw  # the config is there, scrubbed, so the check above looked at it
    # and the resumed run keeps going (it never needed the value)
    assert resume(d).status == "completed"


def test_secret_copied_into_state_is_never_written(tmp_path):
    from sim.rundir import RunDirError, encode_checkpoint

    cfg = {"llm": {"api_key": SECRET}}
    with pytest.raises(RunDirError):
        encode_checkpoint({"cfg": {"llm": {"api_key": "***"}}}, {"copied": SECRET}, cfg, b"k" * 32, [SECRET])


def test_machine_key_is_private_and_not_in_the_run(tmp_path, agora_home):
    d = _interrupted_run(tmp_path / "run")
    f = agora_home / "secret.key"
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    key = machine_key()
    assert len(key) == 32 and key == f.read_bytes()
    for p in d.rglob("*"):
        if p.is_file():
            assert key not in p.read_bytes()
            assert key.hex().encode() not in p.read_bytes()


def test_snapshot_holds_state_not_rows(tmp_path):
    d = _interrupted_run(tmp_path / "run", tick=2)
    meta, state = RunDir(d).read_checkpoint()
    assert set(state) == {"env", "client"}
    assert meta["tick"] == 2 and meta["rows"]["events"] > 0
    parts = {p.name for p in (d / "parts").glob("*.parquet")}
    assert set(meta["parts"]) <= parts and any(n.startswith("events-") for n in meta["parts"])


# ---------------------------------------------------------------- real signals, real LLM replies
ROOT = Path(__file__).resolve().parents[2]
KILL = ["llm=scripted", "seed=11", "env.n_players=14", "env.n_traitors=4", "run.progress=off"]


def _start_and_wait(d: Path, args: list[str], ticks: int, env: dict) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-m", "sim.cli", *args], cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:  # poll the run's own progress file
        try:
            if json.loads((d / "summary.json").read_text()).get("ticks", 0) >= ticks:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return p


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "double SIGKILL"])
def test_signals_then_resume_give_identical_events(tmp_path, agora_home, how):
    ref = sim.run([*KILL, f"run.dir={tmp_path / 'ref'}"])
    d = tmp_path / "cut"
    env = {**os.environ, "AGORA_HOME": str(agora_home), "AGORA_TEST_TICK_DELAY": "0.3"}
    sig = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "double SIGKILL": signal.SIGKILL}[how]
    p = _start_and_wait(d, ["run", *KILL, f"run.dir={d}"], 1, env)
    p.send_signal(sig)
    p.wait(30)
    if how == "double SIGKILL":  # the resumed run is killed too, one tick further on
        p = _start_and_wait(d, ["resume", str(d)], 3, env)
        p.send_signal(sig)
        p.wait(30)
    assert json.loads((d / "summary.json").read_text())["status"] in ("running", "failed")
    res = resume(d)
    assert res.status == "completed" and res.events.equals(ref.events)
    assert pl.read_parquet(d / "events.parquet").equals(ref.events)


def test_resume_reuses_paid_replies(tmp_path):
    """Replies the killed run paid for (in its llm_cache.jsonl) are reused, never bought again."""
    from sim.testing.loopback import LoopbackServer

    with LoopbackServer() as srv:
        llm = ["llm=openai", f"llm.base_url={srv.base_url}", "llm.api_key_env=null", "llm.model=loop-model",
               "llm.rate_limit.rpm=null", "llm.rate_limit.tpm=null", "llm.fallback_models=[]",
               "agent.reflection.enabled=false",
               # two live runs see different cached-token counts from the loopback (arrival order), so the
               # remaining budget in their prompts differs; without it the two runs ask the same questions
               "budget.show_remaining=false"]
        full = sim.run([*SMALL, *llm, f"run.dir={tmp_path / 'full'}"])
        paid = len(srv.requests)
        assert paid > 0 and full.status == "completed"
        d = _interrupted_run(tmp_path / "cut", extra=llm, tick=1)
        # as if the killed run had paid for every later reply before dying: they are all in its cache
        (d / "llm_cache.jsonl").write_bytes((tmp_path / "full" / "llm_cache.jsonl").read_bytes())
        before = len(srv.requests)
        res = resume(d)
        assert len(srv.requests) == before, "resume sent requests for replies it already had"
    assert res.events.equals(full.events)


def test_snapshot_round_trip_restores_zero_tails_and_config_refs(tmp_path):
    import numpy as np

    from sim.rundir import decode_checkpoint, encode_checkpoint

    cfg = {"llm": {"model": "m", "api_key": SECRET}, "env": {"n": [1, 2]}}
    clean = {"llm": {"model": "m", "api_key": "***"}, "env": {"n": [1, 2]}}
    grid = np.zeros((64, 512), np.float32)
    grid[:3] = 1.5
    state = {"grid": grid, "empty": np.zeros(4096), "full": np.arange(10.0), "strided": np.arange(20)[::2],
             "llm_cfg": cfg["llm"], "n": cfg["env"]["n"]}
    data = encode_checkpoint({"cfg": clean}, state, cfg, b"k" * 32, [SECRET])
    assert len(data) < 2000  # the 128 KB of zero tail is not stored
    meta, got = decode_checkpoint(tmp_path / "x", data, b"k" * 32)
    for k in ("grid", "empty", "full", "strided"):
        np.testing.assert_array_equal(got[k], state[k])
        assert got[k].dtype == state[k].dtype
    got["grid"][10, 0] = 2.0  # restored arrays are writable, as the live ones were
    assert got["llm_cfg"] == {"model": "m", "api_key": "***"} and got["llm_cfg"] is meta["cfg"]["llm"]
    assert got["n"] is meta["cfg"]["env"]["n"]
