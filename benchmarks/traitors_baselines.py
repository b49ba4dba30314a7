"""Scripted Traitors games through the real engine vs the exact random baseline.

    python benchmarks/traitors_baselines.py --players 10 --traitors 3 --games 400 \
        --faithful random --traitors-policy random

Prints the simulated faithful win rate with its 95% Wilson interval and the
exact probability under uniform random banishment (the recursion in
environments/traitors/baselines.py), figures last.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environments.traitors.baselines import p_faithful_win_random  # noqa: E402
from sim.config import compose, to_dict  # noqa: E402
from sim.runner import _run_memory  # noqa: E402
from sim.stats import games_needed, wilson_interval  # noqa: E402


def play(players: int, traitors: int, games: int, faithful: str, traitor_policy: str, seed0: int = 0,
         progress: bool = True) -> tuple[int, int]:
    base = to_dict(compose([
        "llm=scripted", "run.dir=null", f"env.n_players={players}", f"env.n_traitors={traitors}",
        f"env.faithful_policy={faithful}", f"env.traitor_policy={traitor_policy}", "env.discussion_passes=0",
        "env.belief_probe=false", "env.reactions=false", "env.conclave=false", "agent.reflection.enabled=false",
        "run.checkpoint=false", "budget=unlimited"]))
    wins = done = 0
    it = range(seed0, seed0 + games)
    if progress:
        try:
            from rich.progress import track

            it = track(it, description=f"{games} games")
        except ImportError:
            pass
    for s in it:
        cfg = {**base, "seed": s}
        res = _run_memory(cfg)
        w = res.summary["outcome"].get("winner")
        if w is not None:
            done += 1
            wins += w == "faithful"
    return wins, done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--players", type=int, default=10)
    ap.add_argument("--traitors", type=int, default=3)
    ap.add_argument("--games", type=int, default=400)
    ap.add_argument("--faithful", choices=["random", "majority", "bayes"], default="random")
    ap.add_argument("--traitors-policy", choices=["random", "bloc"], default="random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="100 games")
    a = ap.parse_args(argv)
    games = 100 if a.quick else a.games
    t0 = time.perf_counter()
    wins, n = play(a.players, a.traitors, games, a.faithful, a.traitors_policy, a.seed, progress=sys.stderr.isatty())
    wall = time.perf_counter() - t0
    exact = p_faithful_win_random(a.players, a.traitors)
    lo, hi = wilson_interval(wins, n)
    rate = wins / n if n else float("nan")
    print(f"setup: N={a.players} T={a.traitors} faithful={a.faithful} traitors={a.traitors_policy} games={n} "
          f"wall={wall:.1f}s ({n / wall:.1f} games/s)")
    print(f"exact P(faithful win | uniform random banishment) = {exact} = {float(exact):.5f}")
    print(f"simulated faithful win rate = {rate:.4f}  95% Wilson [{lo:.4f}, {hi:.4f}]")
    inside = lo <= float(exact) <= hi
    print(f"exact value inside interval: {'yes' if inside else 'no'}; lift over random = {rate - float(exact):+.4f}")
    if rate not in (0.0, 1.0) and abs(rate - float(exact)) > 1e-9:
        print(f"games needed to tell this rate from random (alpha 0.05, power 0.8): {games_needed(rate, float(exact))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
