"""Hydra sweeps as real `agora run -m` subprocesses: joblib and Ray launchers, sweep report, sweep budget."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import polars as pl
import pytest

from sim.stats import wilson_interval
from sim.sweep import ACCOUNT, committed_nano, reserve, settle
from sim.testing.loopback import LoopbackServer

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["env=traitors", "llm=scripted", "seed=range(3)", "env.n_players=6", "env.n_traitors=1"]
RUN_FILES = ("summary.json", "events.parquet", "ledger.parquet", "config.yaml")


def agora(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`agora ARGS` in a fresh interpreter (the console script is `sim.cli:main`)."""
    e = {**os.environ, "HYDRA_FULL_ERROR": "1", **(env or {})}
    p = subprocess.run([sys.executable, "-m", "sim.cli", *args], cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=timeout)
    assert p.returncode == 0, f"agora {' '.join(args)} exited {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


def check_sweep_dirs(sweep: Path, n: int) -> list[dict]:
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    assert [p.name for p in jobs] == [str(i) for i in range(n)]
    summaries = []
    for d in jobs:
        for f in RUN_FILES:
            assert (d / f).is_file(), f"{d / f} missing"
        s = json.loads((d / "summary.json").read_text())
        assert s["status"] == "completed" and s["dir"] == str(d)
        led = pl.read_parquet(d / "ledger.parquet")
        assert led.height == s["llm"]["attempts"]
        assert pl.read_parquet(d / "events.parquet").height > 0
        summaries.append(s)
    assert sorted(s["seed"] for s in summaries) == list(range(n))  # one job per seed, each in its own folder
    return summaries


def check_report(sweep: Path, summaries: list[dict]) -> None:
    out = agora("report", str(sweep), "--json").stdout
    rep = json.loads(out)
    assert rep["runs"] == len(summaries)
    agg = rep["traitors/scripted"]
    wins = sum(s["outcome"]["winner"] == "faithful" for s in summaries)
    assert agg["n"] == len(summaries)
    assert agg["win_rate"] == pytest.approx(wins / len(summaries))
    assert agg["ci"] == pytest.approx(list(wilson_interval(wins, len(summaries))))
    assert 0 <= agg["ci"][0] <= agg["win_rate"] <= agg["ci"][1] <= 1
    assert agg["p_random"] == pytest.approx(0.375)  # N=6, T=1 exact recursion
    table = agora("report", str(sweep)).stdout
    assert "faithful win rate" in table and "Sweep: 3 runs" in table


def test_joblib_sweep_one_run_dir_per_job_and_report(tmp_path):
    sweep = tmp_path / "sweep"
    p = agora("run", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *SMALL, f"hydra.sweep.dir={sweep}")
    assert "Joblib.Parallel(n_jobs=2" in p.stdout + p.stderr
    assert p.stdout.count("[job] traitors") == 3
    summaries = check_sweep_dirs(sweep, 3)
    check_report(sweep, summaries)


# ---------------------------------------------------------------- Ray

RAY_MARKERS = ("raylet", "gcs_server", "ray::", "ray/_private", "ray/dashboard", "ray/autoscaler",
               "default_worker.py", "log_monitor.py", "plasma_store")


def ray_processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every Ray-looking process on this machine (read from /proc)."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if any(m in cmd for m in RAY_MARKERS):
            found[int(d.name)] = (ppid, cmd)
    return found


def ray_processes_of(temp_dir: str) -> dict[int, str]:
    """The Ray processes of the instance whose ``_temp_dir`` is ``temp_dir``: the head processes name
    it on their command line; workers and agents (``ray::IDLE``...) are children of the raylet."""
    procs = ray_processes()
    ours = {p for p, (_, cmd) in procs.items() if temp_dir in cmd}
    grew = True
    while grew:
        kids = {p for p, (pp, _) in procs.items() if pp in ours and p not in ours}
        ours |= kids
        grew = bool(kids)
    return {p: procs[p][1][:160] for p in ours}


@pytest.fixture
def ray_temp_dir():
    """A short private Ray temp dir (Unix socket paths must stay under 107 bytes). After the test, any
    process of that Ray instance still alive fails the test and is ended, by pid."""
    d = tempfile.mkdtemp(prefix="agray", dir="/tmp")
    yield d
    deadline = time.monotonic() + 15
    while (left := ray_processes_of(d)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(d, ignore_errors=True)
    assert not left, f"Ray processes left running after the sweep: {left}"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ray_sweep_on_local_instance(tmp_path, ray_temp_dir):
    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("hydra_plugins.hydra_ray_launcher") is None:
        pytest.skip("ray / hydra-ray-launcher not installed (pip install -e '.[ray]')")
    sweep = tmp_path / "sweep"
    p = agora("run", "-m", "hydra/launcher=ray", "+hydra.launcher.ray.init.num_cpus=2",
              "+hydra.launcher.ray.init.include_dashboard=false",
              f"+hydra.launcher.ray.init._temp_dir={ray_temp_dir}", *SMALL, f"hydra.sweep.dir={sweep}",
              env={"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"})
    out = p.stdout + p.stderr
    assert "Ray Launcher is launching 3 jobs" in out and "Started a local Ray instance" in out
    assert any(Path(ray_temp_dir).glob("session_*"))  # the instance really lived in our temp dir
    summaries = check_sweep_dirs(sweep, 3)
    check_report(sweep, summaries)


# ---------------------------------------------------------------- sweep budget

def test_sweep_budget_account_grants_waits_and_settles(tmp_path):
    acct = tmp_path / ACCOUNT
    # sweep 150, run cap 100 (nano-USD x 1e-9)
    k0, g0 = reserve(acct, "0", 150e-9, 100e-9)
    assert (k0, g0) == ("0", 100)
    got: dict = {}

    def second():
        got["r"] = reserve(acct, "1", 150e-9, 100e-9, poll_s=0.02)

    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()  # only 50 left while job 0 still holds 100: it waits for the hand-back
    settle(acct, "0", 30)  # job 0 spent 30 of its 100
    t.join(5)
    assert got["r"] == ("1", 100)  # 150 - 30 = 120 left >= a full run cap
    # nobody else running: a partial grant rather than a wait
    settle(acct, "1", 100)
    assert reserve(acct, "2", 150e-9, 100e-9) == ("2", 20)
    settle(acct, "2", 20)
    # nothing left: a zero grant (the job then runs with run_usd=0, on_exhaust=halt)
    assert reserve(acct, "3", 150e-9, 100e-9) == ("3", 0)
    settle(acct, "3", 0)
    st = json.loads(acct.read_text())
    assert committed_nano(st) == (150, 0)
    # the same job number used again in the same folder keeps the earlier entry
    assert reserve(acct, "0", 150e-9, 100e-9)[0] == "0.1"


def test_sweep_budget_dead_job_keeps_its_reservation(tmp_path):
    acct = tmp_path / ACCOUNT
    reserve(acct, "0", 200e-9, 100e-9)
    st = json.loads(acct.read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    st["jobs"]["0"]["pid"] = dead.pid
    acct.write_text(json.dumps(st))
    # the dead job's 100 stay committed, but nobody waits on it
    assert reserve(acct, "1", 200e-9, 150e-9, poll_s=0.01) == ("1", 100)


def test_concurrent_reservations_never_exceed_the_sweep(tmp_path):
    acct = tmp_path / ACCOUNT
    grants = []

    def job(i):
        key, g = reserve(acct, str(i), 1000e-9, 300e-9, poll_s=0.005)
        grants.append(g)
        time.sleep(0.01)
        settle(acct, key, g)  # spend the whole grant

    threads = [threading.Thread(target=job, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(grants) == 8 and sum(grants) == 1000
    assert sorted(grants, reverse=True)[:3] == [300, 300, 300]


def test_sweep_budget_caps_total_spend_across_jobs(tmp_path):
    sweep, runs = tmp_path / "sweep", tmp_path / "runs"
    run_usd, sweep_usd = 0.0002, 0.0003
    with LoopbackServer() as srv:
        p = agora("run", "-m", "env=traitors", "llm=openai", "llm.api_key_env=null", "llm.model=test-model",
                  f"llm.base_url={srv.base_url}", "seed=range(3)", "env.n_players=5", "env.n_traitors=1",
                  "env.discussion_passes=0", "env.max_rounds=1", "agent.reflection.enabled=false",
                  f"budget.run_usd={run_usd}", f"budget.sweep_usd={sweep_usd}", f"hydra.sweep.dir={sweep}",
                  f"run.dir={runs}")  # a fixed run.dir: each job gets its own sub-folder
    assert p.stdout.count("sweep_budget: granted") == 3
    acct = json.loads((sweep / ACCOUNT).read_text())
    assert acct["sweep_nano"] == 300_000 and set(acct["jobs"]) == {"0", "1", "2"}
    total, left_nano = 0, 300_000
    for i in range(3):
        s = json.loads((runs / str(i) / "summary.json").read_text())
        job = acct["jobs"][str(i)]
        assert job["state"] == "done" and job["spent_nano"] == s["llm"]["cost_nano"] > 0
        # the basic launcher runs jobs one after another: each gets min(run cap, what is left)
        assert job["reserved_nano"] == min(200_000, left_nano)
        assert s["budget_usd"] == pytest.approx(job["reserved_nano"] / 1e9)
        assert s["llm"]["cost_nano"] <= job["reserved_nano"]
        assert pl.read_parquet(runs / str(i) / "ledger.parquet")["cost_nano"].sum() == s["llm"]["cost_nano"]
        left_nano -= s["llm"]["cost_nano"]
        total += s["llm"]["cost_nano"]
    assert total <= 300_000
    assert acct["jobs"]["2"]["reserved_nano"] < 200_000  # the last job got only what was left


def test_exhausted_sweep_budget_aborts_the_job_instead_of_playing_it(tmp_path):
    sweep = tmp_path / "sweep"
    with LoopbackServer() as srv:
        agora("run", "-m", "env=traitors", "llm=openai", "llm.api_key_env=null", "llm.model=test-model",
              f"llm.base_url={srv.base_url}", "seed=0", "env.n_players=5", "env.n_traitors=1",
              "budget.run_usd=0.0002", "budget.sweep_usd=0", f"hydra.sweep.dir={sweep}")
        assert srv.chat_requests == []  # nothing was sent
    s = json.loads((sweep / "0" / "summary.json").read_text())
    assert s["status"] == "aborted_budget" and s["budget_usd"] == 0 and s["llm"]["cost_nano"] == 0
    assert s["outcome"]["winner"] is None
    assert json.loads((sweep / ACCOUNT).read_text())["jobs"]["0"]["reserved_nano"] == 0


def test_sweep_usd_is_validated():
    from sim.config import ConfigError, compose

    assert compose(["budget.sweep_usd=1.5"]).budget.sweep_usd == 1.5
    with pytest.raises(ConfigError, match="budget.sweep_usd"):
        compose(["budget.sweep_usd=-1"])
