"""Scripted (or oracle) Traitors games through the real engine vs the exact baseline.

    python benchmarks/traitors_baselines.py --players 10 --traitors 3 --games 10000 \
        --faithful random --traitors-policy random
    python benchmarks/traitors_baselines.py --faithful oracle --accuracy 0.8 --traitors-policy bloc

Games run through the batch runner (sim/montecarlo.py: one composed config, ``--workers``
processes, in-memory games, one frame of outcomes). Prints the simulated faithful win
rate with its 95% Wilson interval, the exact probability (uniform random banishment:
the recursion in environments/traitors/baselines.py; oracle faithful of accuracy Q:
environments/traitors/oracle_baseline.py), wall time and games/s, and the speed of the
per-agent reference path (``engine.batch_scripted=false``) on the first ``--reference``
games, measured in the same run; figures last.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environments.traitors.baselines import p_faithful_win_random  # noqa: E402
from sim.montecarlo import batch_config, run_batch, warm  # noqa: E402
from sim.stats import games_needed, wilson_interval  # noqa: E402

LEAN = ["env.discussion_passes=0", "env.belief_probe=false", "env.reactions=false", "env.conclave=false",
        "agent.reflection.enabled=false", "budget=unlimited"]


def overrides(players: int, traitors: int, faithful: str, traitor_policy: str, accuracy: float | None) -> list[str]:
    ov = ["env=traitors", f"env.n_players={players}", f"env.n_traitors={traitors}",
          f"env.traitor_policy={traitor_policy}", *LEAN]
    if faithful != "oracle":
        return ["llm=scripted", f"env.faithful_policy={faithful}", *ov]
    # faithful answered by a simulated tier of known accuracy; traitors stay scripted
    q = float(accuracy if accuracy is not None else 0.8)
    return ["llm=oracle", "llm.model=q", f"+llm.oracle.tiers.q={{accuracy: {q}, input_tokens: 500, output_median: 10}}",
            "+llm.prices.q={input_per_mtok: 0, output_per_mtok: 0, shadow: true}",
            "+agent.llm_by_role.traitor={provider: scripted, model: scripted}", *ov]


def exact(players: int, traitors: int, faithful: str, accuracy: float | None):
    if faithful == "oracle":
        from environments.traitors.oracle_baseline import p_faithful_win_oracle

        return p_faithful_win_oracle(players, traitors, float(accuracy if accuracy is not None else 0.8))
    return p_faithful_win_random(players, traitors)


def play(players: int, traitors: int, games: int, faithful: str, traitor_policy: str, seed0: int = 0,
         progress: bool = False, workers: int = 1, accuracy: float | None = None) -> tuple[int, int]:
    """(faithful wins, decided games) over ``games`` seeds from ``seed0`` (``progress`` is unused: kept
    for callers of the earlier signature)."""
    wins, n, _ = play_batch(overrides(players, traitors, faithful, traitor_policy, accuracy), games, seed0, workers)
    return wins, n


def play_batch(ov: list[str], games: int, seed0: int, workers: int, reference: bool = False) -> tuple[int, int, float]:
    """(faithful wins, decided games, wall seconds) over ``games`` seeds from ``seed0``."""
    cfg = batch_config(ov + [f"engine.batch_scripted={'false' if reference else 'true'}"])
    t0 = time.perf_counter()
    out = run_batch([], range(seed0, seed0 + games), workers, cfg=cfg)
    wall = time.perf_counter() - t0
    decided = out.filter(out["winner"].is_not_null()) if "winner" in out.columns else out.clear()
    return int((decided["winner"] == "faithful").sum()), decided.height, wall


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--players", type=int, default=10)
    ap.add_argument("--traitors", type=int, default=3)
    ap.add_argument("--games", type=int, default=400)
    ap.add_argument("--faithful", choices=["random", "majority", "bayes", "oracle"], default="random")
    ap.add_argument("--accuracy", type=float, default=None, help="oracle faithful: P(vote for a traitor)")
    ap.add_argument("--traitors-policy", choices=["random", "bloc"], default="random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    ap.add_argument("--reference", type=int, default=None,
                    help="games for the per-agent reference path's speed (default min(games, 500); 0: skip)")
    ap.add_argument("--quick", action="store_true", help="100 games")
    a = ap.parse_args(argv)
    games = 100 if a.quick else a.games
    ov = overrides(a.players, a.traitors, a.faithful, a.traitors_policy, a.accuracy)
    t0 = time.perf_counter()
    warm(a.workers)  # worker start-up (imports), paid once per command; counted in command_wall_s
    wins, n, wall = play_batch(ov, games, a.seed, a.workers)
    command_wall = time.perf_counter() - t0
    n_ref = min(games, 500) if a.reference is None else a.reference
    ref = play_batch(ov, n_ref, a.seed, a.workers, reference=True) if n_ref else None
    p0 = exact(a.players, a.traitors, a.faithful, a.accuracy)
    lo, hi = wilson_interval(wins, n)
    rate = wins / n if n else float("nan")
    label = f"oracle(q={a.accuracy if a.accuracy is not None else 0.8})" if a.faithful == "oracle" else a.faithful
    print(f"setup: N={a.players} T={a.traitors} faithful={label} traitors={a.traitors_policy} games={n} "
          f"workers={a.workers}")
    what = "faithful oracle of accuracy q" if a.faithful == "oracle" else "uniform random banishment"
    print(f"exact P(faithful win | {what}) = {p0} = {float(p0):.5f}")
    print(f"simulated faithful win rate = {rate:.4f}  95% Wilson [{lo:.4f}, {hi:.4f}]")
    inside = lo <= float(p0) <= hi
    print(f"exact value inside interval: {'yes' if inside else 'no'}; lift over exact = {rate - float(p0):+.4f}")
    if rate not in (0.0, 1.0) and abs(rate - float(p0)) > 1e-9:
        print(f"games needed to tell this rate from the exact value (alpha 0.05, power 0.8): "
              f"{games_needed(rate, float(p0))}")
    print()
    print(f"command_wall_s: {command_wall:.2f}")
    print(f"wall_s: {wall:.2f}")
    print(f"games_per_s: {n / wall:.1f}")
    if ref is not None and ref[1]:
        print(f"reference_games: {ref[1]}")
        print(f"reference_games_per_s: {ref[1] / ref[2]:.1f}")
        print(f"speedup_vs_reference: {(n / wall) / (ref[1] / ref[2]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
