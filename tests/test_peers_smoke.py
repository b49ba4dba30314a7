"""benchmarks/peers.py --quick --agora-only: the Agora side runs end to end and prints its figures.

No peer virtualenv and no network: the peers are reported as skipped notes. No timing
assertions (a shared 2-core box makes thresholds flaky); the server-side call count must
equal N*T, which is what makes the wall-time ratios comparable.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def trailing_figures(stdout: str) -> dict[str, float]:
    """The ``name: value`` block the script prints last (stops at notes and headers)."""
    out: dict[str, float] = {}
    for line in reversed(stdout.strip().splitlines()):
        name, sep, value = line.partition(": ")
        if not sep or line.startswith(("#", "note")):
            break
        out[name] = float(value)
    return out


def test_peers_quick_agora_only_prints_agora_figures():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--agora-only"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figs = trailing_figures(proc.stdout)
    assert {"agents", "ticks", "agora_wall_s", "agora_tick_s", "agora_calls"} <= figs.keys(), proc.stdout
    assert figs["agents"] == 20 and figs["ticks"] == 2
    assert figs["agora_calls"] == figs["agents"] * figs["ticks"]  # counted by the server
    assert figs["agora_wall_s"] > 0
    assert not any(k.endswith("_over_agora") for k in figs)  # no peer ran
    assert "note: mesa_llm skipped: --agora-only" in proc.stdout
    assert "note: concordia skipped: --agora-only" in proc.stdout
    assert "expected N*T" not in proc.stdout
