"""Agora against its peers on one workload: N agents, one LLM call each per tick, one loopback server.

    python benchmarks/peers.py               # N=100 agents, T=3 ticks, 3 interleaved repeats
    python benchmarks/peers.py --quick       # N=20, T=2, 1 repeat
    python benchmarks/peers.py --agora-only  # no peer virtualenv (offline; the smoke test)

The loopback OpenAI-compatible server (``sim/testing/loopback.py``, 50 ms per reply,
``--latency-ms``) runs in its own process, so no client shares its GIL; it counts
the chat requests each side makes.

- Agora: ``sim.run`` in this process, ``env=taxation`` with a fixed planner and LLM
  workers, so the only calls are the labor phase's one per worker per tick, through
  the real engine (``act_all``) and metered client (``llm=openai`` at the server's
  base_url; the key comes from an environment variable set here to a dummy value).
- mesa-llm and Concordia (gdm-concordia) are installed from PyPI into a separate
  virtualenv (``~/.cache/agora-peers/venv`` or ``--peers-venv``; reused when present)
  and driven by ``benchmarks/peers_drivers/*_driver.py`` through their public APIs,
  with the concurrency each offers (the drivers say which mode they used).

Each side's figure is the wall time of its T ticks after start-up, imports, agent
creation and one warm-up call (Agora: a one-tick warm-up run). Sides run interleaved
``--repeats`` times and each side's median is reported. The calls each side made are
counted by the server and checked against N*T. A peer that cannot be installed or
fails is reported as ``note: <peer> skipped: <reason>`` and the script still exits 0.
Figures are printed last as ``name: value`` lines; ``*_over_agora`` > 1 means Agora
is faster.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a plain script

DRIVERS = ROOT / "benchmarks" / "peers_drivers"
DEFAULT_VENV = Path.home() / ".cache" / "agora-peers" / "venv"
PEER_PACKAGES = ("mesa-llm", "gdm-concordia")
# name -> (driver file, module that must import)
PEERS = {"mesa_llm": ("mesa_llm_driver.py", "mesa_llm"), "concordia": ("concordia_driver.py", "concordia")}
DUMMY_KEY = "sk-peers-dummy"  # the loopback server ignores it; the clients refuse to start without one
AGORA_KEY_ENV = "AGORA_PEERS_API_KEY"


# ------------------------------------------------------------------ loopback server (own process)


class Server:
    """``peers_drivers/loopback_serve.py`` as a child process; ``stats()`` -> (chat requests, prompt chars)."""

    def __init__(self, latency_s: float) -> None:
        self.proc = subprocess.Popen([sys.executable, str(DRIVERS / "loopback_serve.py"), str(latency_s)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.close()
            raise RuntimeError("loopback server did not start")

    def stats(self) -> tuple[int, int]:
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        n, chars = self.proc.stdout.readline().split()
        return int(n), int(chars)

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------ Agora side (in-process)


def agora_overrides(base_url: str, n: int, ticks: int) -> list[str]:
    """Taxation, fixed planner, LLM workers: the labor phase is the run's only calls (N per tick)."""
    return ["env=taxation", "env.planner=fixed", "env.llm_workers=true", f"env.n_workers={n}", f"env.ticks={ticks}",
            "env.period_ticks=1", "llm=openai", f"llm.base_url={base_url}", f"llm.api_key_env={AGORA_KEY_ENV}",
            "llm.model=bench", f"llm.concurrency={n}", f"engine.concurrency={n}", "llm.max_retries=0",
            "llm.cache.mode=off", "llm.rate_limit.rpm=null", "llm.rate_limit.tpm=null", "budget=unlimited",
            "agent.reflection.enabled=false", "run.dir=null", "run.checkpoint=false", "seed=1"]


@contextmanager
def setup_clock(env_cls, stamps: list[float]):
    """Stamp the end of the environment's ``setup`` (agents created), where the tick clock starts."""
    orig = env_cls.setup

    def setup(self):
        orig(self)
        stamps.append(time.perf_counter())

    env_cls.setup = setup
    try:
        yield
    finally:
        env_cls.setup = orig


def agora_once(server: Server, n: int, ticks: int) -> dict:
    import sim
    from environments import registry

    os.environ[AGORA_KEY_ENV] = DUMMY_KEY
    stamps: list[float] = []
    before = server.stats()
    with setup_clock(registry.env_class("taxation"), stamps):
        res = sim.run(agora_overrides(server.base_url, n, ticks), progress=False,
                      on_tick=lambda _s: stamps.append(time.perf_counter()))
    after = server.stats()
    ok = int((res.ledger["outcome"] == "ok").sum()) if res.ledger.height else 0
    tick_s = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"wall_s": stamps[-1] - stamps[0], "tick_s": tick_s, "calls": after[0] - before[0],
            "prompt_chars": after[1] - before[1], "ok_replies": ok, "ledger_rows": res.ledger.height,
            "status": res.summary["status"]}


def agora_mode() -> str:
    import openai

    return (f"Agora engine act_all: asyncio.gather under a semaphore of N on one asyncio.Runner, metered client "
            f"-> OpenAIProvider (AsyncOpenAI, openai {openai.__version__})")


# ------------------------------------------------------------------ peers (separate virtualenv)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def peer_importable(py: Path, module: str) -> str | None:
    """None when ``module`` imports in the peers' venv, else a one-line reason."""
    if not py.exists():
        return f"no interpreter at {py}"
    env = peer_env("http://127.0.0.1:9/v1")
    proc = subprocess.run([str(py), "-c", f"import {module}"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tempfile.gettempdir())
    if proc.returncode == 0:
        return None
    tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
    return f"import {module} failed: {tail[:200]}"


def ensure_venv(venv: Path, modules: list[str], notes: list[str]) -> dict[str, str | None]:
    """Create the venv and ``pip install mesa-llm gdm-concordia`` when a module is missing.

    Returns module -> None (usable) or the reason it is not.
    """
    py = venv_python(venv)
    missing = {m: peer_importable(py, m) for m in modules}
    if not any(missing.values()):
        return missing
    try:
        if not py.exists():
            print(f"# creating the peers' virtualenv at {venv}", flush=True)
            venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True,
                           timeout=300)
        print(f"# pip install {' '.join(PEER_PACKAGES)} into {venv} (minutes on first use)", flush=True)
        proc = subprocess.run([str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--retries", "1",
                               *PEER_PACKAGES], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-2:])[:300]
            notes.append(f"note: pip install {' '.join(PEER_PACKAGES)} failed: {tail}")
    except (OSError, subprocess.SubprocessError) as exc:
        notes.append(f"note: could not set up {venv}: {type(exc).__name__}: {str(exc)[:200]}")
    return {m: peer_importable(py, m) for m in modules}


def peer_env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY") and k != "PYTHONPATH"}
    env.update({"OPENAI_API_KEY": DUMMY_KEY, "OPENAI_BASE_URL": base_url,  # openai SDK (Concordia)
                "OPENAI_API_BASE": base_url,  # litellm (mesa-llm)
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm would fetch its price map at import
                "NO_PROXY": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"})
    return env


def peer_once(py: Path, peer: str, server: Server, n: int, ticks: int, timeout: float) -> dict:
    """Run one peer driver; raises RuntimeError with a short reason when it fails."""
    driver = DRIVERS / PEERS[peer][0]
    before = server.stats()
    with tempfile.TemporaryDirectory(prefix=f"agora-peers-{peer}-") as cwd:  # no stray .env is read
        try:
            proc = subprocess.run([str(py), str(driver), "--agents", str(n), "--ticks", str(ticks)],
                                  capture_output=True, text=True, env=peer_env(server.base_url), cwd=cwd,
                                  timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"driver timed out after {timeout:.0f} s") from exc
    after = server.stats()
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"driver exit {proc.returncode}: {tail[:300]}")
    try:
        out = json.loads(lines[-1])
    except ValueError as exc:
        raise RuntimeError(f"driver printed no JSON: {lines[-1][:200]}") from exc
    warm = int(out.get("warmup_calls", 0))
    out["calls"] = after[0] - before[0] - warm
    out["prompt_chars"] = after[1] - before[1]  # includes the tiny warm-up prompt
    return out


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N=20, T=2, 1 repeat")
    ap.add_argument("--agents", type=int, default=None, help="N (default 100; --quick 20)")
    ap.add_argument("--ticks", type=int, default=None, help="T (default 3; --quick 2)")
    ap.add_argument("--repeats", type=int, default=None, help="interleaved runs per side (default 3; --quick 1)")
    ap.add_argument("--latency-ms", type=float, default=50.0, help="loopback server latency per reply")
    ap.add_argument("--peers-venv", type=Path, default=DEFAULT_VENV, help=f"default {DEFAULT_VENV}")
    ap.add_argument("--agora-only", action="store_true", help="skip the peers (no virtualenv, no network)")
    ap.add_argument("--peer-timeout", type=float, default=600.0, help="seconds per peer driver run")
    a = ap.parse_args(argv)
    n = a.agents or (20 if a.quick else 100)
    ticks = a.ticks or (2 if a.quick else 3)
    repeats = a.repeats or (1 if a.quick else 3)
    expected = n * ticks
    notes: list[str] = []
    modes: dict[str, str] = {"agora": agora_mode()}

    peers: list[str] = []
    py = venv_python(a.peers_venv)
    if a.agora_only:
        notes += [f"note: {p} skipped: --agora-only" for p in PEERS]
    else:
        usable = ensure_venv(a.peers_venv, [m for _, m in PEERS.values()], notes)
        for peer, (_, module) in PEERS.items():
            if usable[module] is None:
                peers.append(peer)
            else:
                notes.append(f"note: {peer} skipped: {usable[module]}")

    runs: dict[str, list[dict]] = {"agora": [], **{p: [] for p in peers}}
    server = Server(a.latency_ms / 1000.0)
    try:
        agora_once(server, 2, 1)  # warm-up: lazy imports and first-use costs, not timed
        for _ in range(repeats):
            runs["agora"].append(agora_once(server, n, ticks))
            for peer in list(peers):
                try:
                    out = peer_once(py, peer, server, n, ticks, a.peer_timeout)
                except (RuntimeError, OSError) as exc:
                    notes.append(f"note: {peer} skipped: {exc}")
                    peers.remove(peer)
                    runs.pop(peer)
                    continue
                modes[peer] = f"{out.get('mode', '?')} [{out.get('version', '?')}]"
                runs[peer].append(out)
    finally:
        server.close()

    figs: dict[str, float] = {"agents": n, "ticks": ticks, "latency_ms": a.latency_ms, "repeats": repeats}
    wall: dict[str, float] = {}
    for side, rs in runs.items():
        if not rs:
            continue
        wall[side] = statistics.median(r["wall_s"] for r in rs)
        calls = [r["calls"] for r in rs]
        bad = [c for c in calls if c != expected]
        if bad:
            notes.append(f"note: {side} made {bad} calls in a run, expected N*T = {expected}")
        if side == "agora" and any(r["ok_replies"] != expected for r in rs):
            notes.append(f"note: agora ledger ok rows {[r['ok_replies'] for r in rs]}, expected {expected}")
        figs[f"{side}_wall_s"] = wall[side]
        figs[f"{side}_tick_s"] = wall[side] / ticks
        figs[f"{side}_wall_min_s"] = min(r["wall_s"] for r in rs)
        figs[f"{side}_calls"] = statistics.median(calls)
        figs[f"{side}_prompt_chars_per_call"] = statistics.median(r["prompt_chars"] for r in rs) / max(1, expected)
    for peer in PEERS:
        if peer in wall and wall.get("agora"):
            figs[f"{peer}_over_agora"] = wall[peer] / wall["agora"]

    print(f"# peers: N={n} agents x T={ticks} ticks, one LLM call per agent per tick, loopback "
          f"{a.latency_ms:g} ms; median of {repeats} interleaved run(s); tick wall after start-up and warm-up")
    for side, mode in modes.items():
        if side in runs:
            print(f"# {side} mode: {mode}")
            print(f"# {side} walls (s): {[round(r['wall_s'], 3) for r in runs[side]]}")
    for line in notes:
        print(line)
    for k, v in figs.items():
        print(f"{k}: {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
