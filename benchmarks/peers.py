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
- gather: the floor for Agora's tick, in this process right after each Agora run: the
  request bodies the server received from that run, replayed tick by tick as a bare
  ``asyncio.gather`` of ``chat.completions.create`` on the same transport, nothing else.
- mesa-llm and Concordia (gdm-concordia) are installed from PyPI into a separate
  virtualenv and driven by ``benchmarks/peers_drivers/*_driver.py`` through their
  public APIs, with the concurrency each offers (the drivers say which mode they used).
  Their newest releases (mesa-llm 0.3.x, gdm-concordia 2.4.x) need Python >= 3.12, so
  the venv (``~/.cache/agora-peers/venv-pyX.Y``, or ``--peers-venv``; reused when
  present) is built from the oldest Python >= 3.12 found (this one, pyenv's versions,
  ``uv python find``, PATH; each one run to check it), else from this one with a note
  that pip then resolves older releases. The versions that ran are printed.

Each side's figure is the wall time of its T ticks after start-up, imports, agent
creation and one warm-up call (Agora: a one-tick warm-up run). Sides run interleaved
``--repeats`` times and each side's median is reported; ``*_cpu_s`` is this process's
CPU time over the ticks (Agora and gather only), which a busy machine disturbs less
than wall time. The calls each side made are counted by the server and checked
against N*T. A peer that cannot be installed or fails is reported as
``note: <peer> skipped: <reason>`` and the script still exits 0. Figures are printed
last as ``name: value`` lines; ``*_over_agora`` > 1 means Agora is faster, and
``agora_over_gather`` > 1 is what Agora's engine adds to the bare calls.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
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
VENV_ROOT = Path.home() / ".cache" / "agora-peers"  # one venv per Python minor: venv-py3.12, ...
PEER_PACKAGES = ("mesa-llm", "gdm-concordia")
PEER_REPORTED = ("mesa-llm", "mesa", "litellm", "gdm-concordia", "openai")
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

    def bodies(self, start: int) -> list[dict]:
        """The chat request bodies the server received from the ``start``-th on, in arrival order."""
        self.proc.stdin.write(f"bodies {start}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

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
def tick_clock(env_cls, stamps: list[float]):
    """Stamp the end of the environment's ``setup`` (agents created) and the end of every tick.

    Ticks are stamped by wrapping ``Simulation.step`` (one tick per call, metrics and
    parts included), not by ``on_tick``, which the runner does not call after the last tick.
    """
    from sim.runner import Simulation

    orig_setup, orig_step = env_cls.setup, Simulation.step

    def setup(self):
        orig_setup(self)
        stamps.append((time.perf_counter(), time.process_time()))

    def step(self):
        more = orig_step(self)
        stamps.append((time.perf_counter(), time.process_time()))
        return more

    env_cls.setup, Simulation.step = setup, step
    try:
        yield
    finally:
        env_cls.setup, Simulation.step = orig_setup, orig_step


def agora_once(server: Server, n: int, ticks: int) -> dict:
    import sim
    from environments import registry

    os.environ[AGORA_KEY_ENV] = DUMMY_KEY
    stamps: list[tuple[float, float]] = []  # (wall, this process's CPU)
    before = server.stats()
    with tick_clock(registry.env_class("taxation"), stamps):
        res = sim.run(agora_overrides(server.base_url, n, ticks), progress=False)
    after = server.stats()
    ok = int((res.ledger["outcome"] == "ok").sum()) if res.ledger.height else 0
    tick_s = [b[0] - a[0] for a, b in zip(stamps, stamps[1:])]
    return {"wall_s": stamps[-1][0] - stamps[0][0], "cpu_s": stamps[-1][1] - stamps[0][1], "tick_s": tick_s,
            "calls": after[0] - before[0],
            "prompt_chars": after[1] - before[1], "ok_replies": ok, "ledger_rows": res.ledger.height,
            "status": res.summary["status"], "bodies": server.bodies(before[0])}


def gather_once(server: Server, bodies: list[dict], n: int, ticks: int) -> dict:
    """Agora's own calls replayed as a bare ``asyncio.gather`` per tick: the floor for Agora's tick.

    The request bodies are the ones the server received from Agora's run, replayed tick by
    tick (N at a time, in arrival order) through ``chat.completions.create`` on a fresh
    ``AsyncOpenAI`` client with the transport Agora's provider uses, on one
    ``asyncio.Runner`` as the engine does. Like Agora's timed run, its connections are
    opened in tick 1. Nothing else happens: no engine, no parsing, no ledger, no events.
    """
    import asyncio

    import openai

    # the provider's transport choice (aiohttp when installed), so the gap is Agora, not the HTTP stack
    from sim.inference.providers.openai_provider import _http_client

    async def make() -> openai.AsyncOpenAI:  # aiohttp's session must be made inside the loop
        return openai.AsyncOpenAI(base_url=server.base_url, api_key=DUMMY_KEY, max_retries=0, timeout=600.0,
                                  http_client=_http_client(600.0))

    async def tick(client: openai.AsyncOpenAI, batch: list[dict]) -> list:
        return await asyncio.gather(*(client.chat.completions.create(**b) for b in batch))

    before = server.stats()
    tick_s: list[float] = []
    with asyncio.Runner() as runner:
        client = runner.run(make())
        cpu0 = time.process_time()
        for k in range(ticks):
            t0 = time.perf_counter()
            replies = runner.run(tick(client, bodies[k * n:(k + 1) * n]))
            tick_s.append(time.perf_counter() - t0)
        cpu = time.process_time() - cpu0
        runner.run(client.close())
    after = server.stats()
    ok = sum(1 for r in replies if r.choices and r.choices[0].message.content)
    return {"wall_s": sum(tick_s), "cpu_s": cpu, "tick_s": tick_s, "calls": after[0] - before[0],
            "prompt_chars": after[1] - before[1], "ok_last_tick": ok}


def gather_mode() -> str:
    return "Agora's request bodies replayed: asyncio.gather of chat.completions.create per tick, nothing else"


def peer_venv(a: argparse.Namespace, notes: list[str]) -> tuple[Path, str]:
    """The peers' venv and the interpreter to build it from; notes when the newest peers cannot run."""
    chosen = a.peers_venv is not None and venv_python(a.peers_venv).exists() or a.peers_python
    if a.peers_venv is not None and venv_python(a.peers_venv).exists() and not a.peers_python:
        base, ver = str(venv_python(a.peers_venv)), python_version(venv_python(a.peers_venv)) or (0, 0)
    else:
        base, ver = find_peer_python(a.peers_python)
    if ver < MIN_PEER_PYTHON:
        why = "as chosen" if chosen else "no Python >= 3.12 found"
        notes.append(f"note: the peers' venv runs Python {ver[0]}.{ver[1]} ({why}): pip resolves older "
                     "releases there (mesa-llm 0.2.x, gdm-concordia 2.1.x), not the newest")
    return a.peers_venv or VENV_ROOT / f"venv-py{ver[0]}.{ver[1]}", base


def agora_mode() -> str:
    import openai

    return (f"Agora engine act_all: asyncio.gather under a semaphore of N on one asyncio.Runner, metered client "
            f"-> OpenAIProvider (AsyncOpenAI, openai {openai.__version__})")


# ------------------------------------------------------------------ peers (separate virtualenv)


MIN_PEER_PYTHON = (3, 12)  # mesa-llm 0.3.x and gdm-concordia 2.4.x; on 3.11 pip resolves 0.2.0 / 2.1.0


def python_version(exe: str | Path) -> tuple[int, int] | None:
    """(major, minor) of an interpreter that really runs and can make a venv, else None.

    Run, not trusted by name: a pyenv shim named ``python3.12`` exists on PATH and fails
    unless ``PYENV_VERSION`` selects it.
    """
    try:
        proc = subprocess.run([str(exe), "-c", "import sys, venv, ensurepip; print(*sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    parts = proc.stdout.split()
    if proc.returncode != 0 or len(parts) != 2:
        return None
    return int(parts[0]), int(parts[1])


def python_candidates() -> list[str]:
    """Where a Python >= 3.12 may be: this one, pyenv's versions, ``uv python find``, PATH."""
    out = [sys.executable]
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for d in sorted((pyenv_root / "versions").glob("3.1[2-9]*")):
        out += [str(d / "bin" / "python3"), str(d / "bin" / "python")]
    if shutil.which("uv"):
        try:
            proc = subprocess.run(["uv", "python", "find", ">=3.12"], capture_output=True, text=True, timeout=30)
            out += proc.stdout.split()[:1] if proc.returncode == 0 else []
        except (OSError, subprocess.SubprocessError):
            pass
    out += [w for w in (shutil.which(f"python3.{m}") for m in range(12, 16)) if w]
    return out


def find_peer_python(explicit: str | None = None, candidates: list[str] | None = None) -> tuple[str, tuple[int, int]]:
    """The interpreter for the peers' venv: ``explicit`` if given, else the oldest Python >= 3.12 found
    (the most wheels exist for it), else this interpreter (the older peer releases then)."""
    if explicit:
        ver = python_version(explicit)
        if ver is None:
            raise RuntimeError(f"--peers-python {explicit} does not run (or lacks venv/ensurepip)")
        return explicit, ver
    found = [(v, c) for c in dict.fromkeys(candidates if candidates is not None else python_candidates())
             if (v := python_version(c)) is not None and v >= MIN_PEER_PYTHON]
    if found:
        v, c = min(found, key=lambda vc: vc[0])
        return c, v
    return sys.executable, sys.version_info[:2]


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


def peer_versions(py: Path) -> str:
    """``Python 3.12.1: mesa-llm 0.3.2, ...`` as installed in the peers' venv."""
    code = ("import sys; from importlib import metadata as m\n"
            "def v(p):\n    try: return m.version(p)\n    except m.PackageNotFoundError: return 'absent'\n"
            f"print('Python ' + sys.version.split()[0] + ': ' + ', '.join(p + ' ' + v(p) for p in {PEER_REPORTED!r}))")
    proc = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip() or "unknown"


def ensure_venv(venv: Path, base_python: str, modules: list[str], notes: list[str],
                install: bool = True) -> dict[str, str | None]:
    """Create the venv from ``base_python`` and ``pip install mesa-llm gdm-concordia`` when a module is missing.

    Returns module -> None (usable) or the reason it is not. With ``install=False``
    an existing venv is only checked (no network).
    """
    py = venv_python(venv)
    missing = {m: peer_importable(py, m) for m in modules}
    if not any(missing.values()) or not install:
        return missing
    try:
        if not py.exists():
            print(f"# creating the peers' virtualenv at {venv} from {base_python}", flush=True)
            venv.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([base_python, "-m", "venv", str(venv)], check=True, capture_output=True, text=True,
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
    ap.add_argument("--peers-venv", type=Path, default=None,
                    help=f"the peers' virtualenv (default {VENV_ROOT}/venv-pyX.Y for the interpreter chosen)")
    ap.add_argument("--peers-python", default=None,
                    help="interpreter to build the peers' venv from (default: the oldest Python >= 3.12 found)")
    ap.add_argument("--no-install", action="store_true", help="use the peers' venv only if it is already built")
    ap.add_argument("--agora-only", action="store_true", help="skip the peers (no virtualenv, no network)")
    ap.add_argument("--peer-timeout", type=float, default=600.0, help="seconds per peer driver run")
    a = ap.parse_args(argv)
    n = a.agents or (20 if a.quick else 100)
    ticks = a.ticks or (2 if a.quick else 3)
    repeats = a.repeats or (1 if a.quick else 3)
    expected = n * ticks
    notes: list[str] = []
    modes: dict[str, str] = {"agora": agora_mode(), "gather": gather_mode()}

    peers: list[str] = []
    py = Path()
    if a.agora_only:
        notes += [f"note: {p} skipped: --agora-only" for p in PEERS]
    else:
        try:
            venv, base = peer_venv(a, notes)
        except RuntimeError as exc:  # a --peers-python that does not run
            print(f"error: {exc}", file=sys.stderr)
            return 2
        py = venv_python(venv)
        usable = ensure_venv(venv, base, [m for _, m in PEERS.values()], notes, install=not a.no_install)
        for peer, (_, module) in PEERS.items():
            if usable[module] is None:
                peers.append(peer)
            else:
                notes.append(f"note: {peer} skipped: {usable[module]}")
        if peers:
            print(f"# peers' venv {venv}: {peer_versions(py)}", flush=True)

    runs: dict[str, list[dict]] = {"agora": [], "gather": [], **{p: [] for p in peers}}
    server = Server(a.latency_ms / 1000.0)
    try:
        agora_once(server, 2, 1)  # warm-up: lazy imports and first-use costs, not timed
        for _ in range(repeats):
            runs["agora"].append(agora_once(server, n, ticks))
            runs["gather"].append(gather_once(server, runs["agora"][-1].pop("bodies"), n, ticks))
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
        if "cpu_s" in rs[0]:  # this process's CPU over the ticks: the client-side cost, less load-sensitive
            figs[f"{side}_cpu_s"] = statistics.median(r["cpu_s"] for r in rs)
        figs[f"{side}_calls"] = statistics.median(calls)
        figs[f"{side}_prompt_chars_per_call"] = statistics.median(r["prompt_chars"] for r in rs) / max(1, expected)
    for peer in PEERS:
        if peer in wall and wall.get("agora"):
            figs[f"{peer}_over_agora"] = wall[peer] / wall["agora"]
    if wall.get("gather"):  # > 1: Agora's tick costs more than the bare calls
        figs["agora_over_gather"] = wall["agora"] / wall["gather"]
        figs["agora_cpu_over_gather"] = figs["agora_cpu_s"] / max(figs["gather_cpu_s"], 1e-9)

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
