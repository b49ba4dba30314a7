"""benchmarks/peers.py --quick --agora-only: the Agora side and its bare-gather floor run end to end.

No peer virtualenv and no network: the peers are reported as skipped notes. No timing
assertions (a shared 2-core box makes thresholds flaky); the server-side call count must
equal N*T, which is what makes the wall-time ratios comparable. The peers themselves run
only when their venv is already built (``--no-install``; never a download here).
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_benchmarks_smoke import ROOT, figures


def _peers_module():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "benchmarks" / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_peers_quick_agora_only_prints_agora_figures():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--agora-only"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figs = figures(proc.stdout)
    assert {"agents", "ticks", "agora_wall_s", "agora_tick_s", "agora_calls"} <= figs.keys(), proc.stdout
    assert figs["agents"] == 20 and figs["ticks"] == 2
    assert figs["agora_calls"] == figs["agents"] * figs["ticks"]  # counted by the server
    assert figs["agora_wall_s"] > 0
    # the bare gather replays exactly Agora's calls: same count, same prompts
    assert figs["gather_calls"] == figs["agora_calls"]
    assert figs["gather_prompt_chars_per_call"] == figs["agora_prompt_chars_per_call"]
    assert figs["gather_wall_s"] > 0 and figs["agora_cpu_s"] > 0
    assert figs["agora_over_gather"] == pytest.approx(figs["agora_wall_s"] / figs["gather_wall_s"], rel=1e-2)
    assert not any(k.endswith("_over_agora") for k in figs)  # no peer ran
    assert "note: mesa_llm skipped: --agora-only" in proc.stdout
    assert "note: concordia skipped: --agora-only" in proc.stdout
    assert "expected N*T" not in proc.stdout


def test_peer_python_is_chosen_by_running_it_not_by_name(tmp_path):
    """A pyenv shim named python3.12 that fails is skipped; the oldest working Python >= 3.12 wins."""
    peers = _peers_module()
    shim = tmp_path / "python3.12"
    shim.write_text("#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    shim.chmod(0o755)
    fakes = {}
    for ver in ("3.13", "3.12", "3.11"):
        f = tmp_path / f"fake{ver}"
        major, minor = ver.split(".")
        f.write_text(f"#!/bin/sh\necho {major} {minor}\n")
        f.chmod(0o755)
        fakes[ver] = str(f)
    assert peers.python_version(shim) is None
    assert peers.find_peer_python(candidates=[str(shim), fakes["3.11"], fakes["3.13"], fakes["3.12"]]) == \
        (fakes["3.12"], (3, 12))
    # none >= 3.12: this interpreter, and the caller notes the older releases
    assert peers.find_peer_python(candidates=[str(shim), fakes["3.11"]]) == (sys.executable, sys.version_info[:2])


def test_peer_venv_fallback_says_older_releases(tmp_path, monkeypatch):
    peers = _peers_module()
    monkeypatch.setattr(peers, "find_peer_python", lambda explicit=None: ("/usr/bin/python3.11", (3, 11)))
    notes: list[str] = []
    args = peers.argparse.Namespace(peers_venv=None, peers_python=None)
    venv, base = peers.peer_venv(args, notes)
    assert (venv.name, base) == ("venv-py3.11", "/usr/bin/python3.11")
    assert len(notes) == 1 and "no Python >= 3.12 found" in notes[0] and "mesa-llm 0.2.x" in notes[0]


def _built_peer_venv() -> Path | None:
    peers = _peers_module()
    for venv in sorted(peers.VENV_ROOT.glob("venv-py3.1[2-9]*")):
        if all(peers.peer_importable(peers.venv_python(venv), m) is None for _, m in peers.PEERS.values()):
            return venv
    return None


@pytest.mark.slow
def test_peers_quick_with_newest_peers_when_their_venv_is_built():
    venv = _built_peer_venv()
    if venv is None:
        pytest.skip("no peers' venv with mesa-llm and gdm-concordia on Python >= 3.12 (built by a full run)")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--no-install",
                           "--peers-venv", str(venv)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figs = figures(proc.stdout)
    assert "skipped" not in proc.stdout, proc.stdout
    assert figs["mesa_llm_calls"] == figs["concordia_calls"] == figs["agents"] * figs["ticks"], proc.stdout
    assert {"mesa_llm_over_agora", "concordia_over_agora", "agora_over_gather"} <= figs.keys()
    assert "mesa_llm.step_agents_parallel_sync" in proc.stdout  # really parallel, not Mesa's silent sequential
    assert "run_tasks_in_background" in proc.stdout
