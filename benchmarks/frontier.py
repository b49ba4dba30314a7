"""A Traitors inference production frontier with oracle tiers (simulated, not an LLM).

    python benchmarks/frontier.py            # 3 tiers x 3 policies x 2 budgets, 200 games per cell
    python benchmarks/frontier.py --quick    # 30 games per cell
    python benchmarks/frontier.py --first-seed 1000   # another block of seeds (the exact values do not move)

Faithful are answered by oracle tiers (conf/llm/oracle.yaml: small 0.55 / medium 0.75 /
large 0.92 accuracy at 1e-4 / 1e-3 / 1e-2 USD per call); traitors vote as a scripted bloc.
Every cell runs the same seeds. For single-tier cells the exact faithful win probability
(environments/traitors/oracle_baseline.py) is printed next to the simulated rate. Prints
cells/s and games/s, then the frontier table (figures last): mv is the marginal value of compute,
wins per extra USD over the next-smaller budget of the same policy and tier, with its 95% interval.
--out writes frontier.parquet/html/png.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from environments.traitors.oracle_baseline import p_faithful_win_oracle  # noqa: E402
from sim.frontier import run_frontier, write  # noqa: E402

BASE = ["env=traitors", "llm=oracle", "env.traitor_policy=bloc", "env.discussion_passes=0", "env.belief_probe=false",
        "env.reactions=false", "env.conclave=false", "agent.reflection.enabled=false",
        "agent.llm_by_role={traitor: {provider: scripted, model: scripted}}"]
ACCURACY = {"small": 0.55, "medium": 0.75, "large": 0.92}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="30 games per cell")
    ap.add_argument("--games", type=int, default=200)
    ap.add_argument("--budgets", default="null,0.1", help="budget.run_usd per cell, comma-separated (null: none)")
    ap.add_argument("--first-seed", type=int, default=0, help="games use seeds first-seed .. first-seed+games-1")
    ap.add_argument("--out", default=None, help="write frontier.parquet/html/png here")
    a = ap.parse_args(argv)
    games = 30 if a.quick else a.games
    budgets = [None if b.strip() == "null" else float(b) for b in a.budgets.split(",")]
    t0 = time.perf_counter()
    seeds = range(a.first_seed, a.first_seed + games)
    df, _ = run_frontier(BASE, list(ACCURACY), ["single", "cascade", "best_of_n"], budgets, seeds)
    wall = time.perf_counter() - t0
    n_cells = len(df)
    print(f"grid: {n_cells} cells x {games} games = {n_cells * games} games in {wall:.1f}s: "
          f"{n_cells / wall:.2f} cells/s, {n_cells * games / wall:.1f} games/s (N=10, T=3, seeds {seeds.start}-"
          f"{seeds.stop - 1}, oracle tiers: not an LLM)")
    if a.out:
        print("wrote " + ", ".join(str(p) for p in write(df, Path(a.out))))
    print(f"{'cell':26s} {'USD/game':>9s} {'win rate [95%]':>22s} {'exact':>7s} {'USD/win [95%]':>26s} "
          f"{'mv: wins/USD [95%]':>24s} hull")
    for r in df.to_dicts():
        exact = (f"{p_faithful_win_oracle(10, 3, ACCURACY[r['tier']]):.4f}"
                 if r["policy"] == "single" and r["budget_usd"] is None else "")
        cop = f"{r['cop']:.4f} [{r['cop_lo']:.4f}, {r['cop_hi']:.4f}]"
        mv = (r.get("mv_note") or "" if r.get("mv_note") or r["mv"] is None or r["mv_lo"] is None
              else f"{r['mv']:.2f} [{r['mv_lo']:.2f}, {r['mv_hi']:.2f}]")
        print(f"{r['cell']:26s} {r['spend_mean']:9.4f} {r['outcome_mean']:8.3f} [{r['outcome_lo']:.3f}, "
              f"{r['outcome_hi']:.3f}] {exact:>7s} {cop:>26s} {mv:>24s} {'*' if r['on_hull'] else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
