"""Random-vs-random games through the real engine agree with the exact recursion."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from environments.traitors.baselines import p_faithful_win_random
from sim.stats import wilson_interval

spec = importlib.util.spec_from_file_location(
    "traitors_baselines", Path(__file__).resolve().parents[3] / "benchmarks" / "traitors_baselines.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


@pytest.mark.slow
@pytest.mark.parametrize("n,t,games", [(5, 1, 120), (7, 2, 120)])
def test_random_vs_random_matches_recursion(n, t, games):
    wins, done = bench.play(n, t, games, "random", "random", seed0=1000, progress=False)
    assert done == games
    lo, hi = wilson_interval(wins, done, z=2.576)
    assert lo <= float(p_faithful_win_random(n, t)) <= hi


def test_bayes_faithful_with_tells_beat_chance():
    wins, done = bench.play(6, 1, 40, "bayes", "random", seed0=0, progress=False)
    assert done == 40
    assert wins / done > float(p_faithful_win_random(6, 1))  # Bayesian faithful with tells beat chance
