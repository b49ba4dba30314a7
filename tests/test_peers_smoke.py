"""benchmarks/peers.py --quick --agora-only: the Agora side runs end to end and prints its figures.

No peer virtualenv and no network: the peers are reported as skipped notes. No timing
assertions (a shared 2-core box makes thresholds flaky); the server-side call count must
equal N*T, which is what makes the wall-time ratios comparable.
"""
from __future__ import annotations

import subprocess
import sys

from tests.test_benchmarks_smoke import ROOT, figures


def test_peers_quick_agora_only_prints_agora_figures():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers.py"), "--quick", "--agora-only"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figs = figures(proc.stdout)
    assert {"agents", "ticks", "agora_wall_s", "agora_tick_s", "agora_calls"} <= figs.keys(), proc.stdout
    assert figs["agents"] == 20 and figs["ticks"] == 2
    assert figs["agora_calls"] == figs["agents"] * figs["ticks"]  # counted by the server
    assert figs["agora_wall_s"] > 0
    assert not any(k.endswith("_over_agora") for k in figs)  # no peer ran
    assert "note: mesa_llm skipped: --agora-only" in proc.stdout
    assert "note: concordia skipped: --agora-only" in proc.stdout
    assert "expected N*T" not in proc.stdout
