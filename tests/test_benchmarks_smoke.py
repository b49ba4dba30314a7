"""Benchmark scripts run end to end in --quick mode and print their figures last.

No timing assertions: a loaded 2-core box makes any threshold flaky. We check that
each script exits 0 and that its final ``name: value`` lines carry the expected names
with numeric values.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def figures(stdout: str) -> dict[str, float]:
    """The trailing ``name: value`` block of a benchmark's output."""
    out: dict[str, float] = {}
    for line in reversed(stdout.strip().splitlines()):
        name, sep, value = line.partition(": ")
        if not sep or line.startswith(("#", "note")):
            break
        out[name] = float(value)
    return out


def run_quick(script: str, timeout: float = 60) -> dict[str, float]:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return figures(proc.stdout)


def test_figures_parses_only_the_trailing_block():
    text = "noise: here\n# header\na: 1\nb: 2.5e-3\n"
    assert figures(text) == {"a": 1.0, "b": 0.0025}


@pytest.mark.parametrize("script,names", [
    ("client_overhead.py", {"direct_us_per_call", "stack_us_per_call", "overhead_us_per_call",
                            "stack_over_direct_ratio", "speedup_concurrent_over_sequential",
                            "concurrent_wall_over_one_call_ratio", "raw_gather_s"}),
    ("engine_overhead.py", {"direct_scripted_provider_us_per_call", "traitors_12_agent_steps_per_s",
                            "traitors_12_engine_over_direct_ratio", "taxation_100_agent_steps_per_s",
                            "market_100_agent_steps_per_s"}),
    ("macro_facts.py", {"phillips_corr_mean", "phillips_corr_ci_low", "phillips_corr_ci_high", "phillips_negative",
                        "okun_corr_mean", "inflation_p05", "inflation_p95", "unemployment_p05", "unemployment_p95",
                        "conserved"}),
    pytest.param("embedded_speed.py", {"prompt_tokens_per_s", "output_tokens_per_s_free_text",
                                       "output_tokens_per_s_json_grammar"}, marks=pytest.mark.slow),
])
def test_quick_run_prints_expected_figures(script, names):
    figs = run_quick(script)
    assert names <= figs.keys(), sorted(names - figs.keys())
    if script == "client_overhead.py":
        assert figs["ledger_rows"] == figs["overhead_calls"]  # one metered row per stack call
    if script == "macro_facts.py":
        assert figs["conserved"] == 1 and figs["okun_corr_mean"] < -0.99  # Okun: an identity with whole months
        assert figs["phillips_negative"] == (figs["phillips_corr_ci_high"] < 0)
