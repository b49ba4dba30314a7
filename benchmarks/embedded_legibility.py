"""Legibility and wall time of `make run`'s game over several seeds (the embedded model).

    python benchmarks/embedded_legibility.py                     # 5 seeds of the default 8-player, 2-traitor game
    python benchmarks/embedded_legibility.py --seeds 3 env.speech=free   # the free-text path, 3 seeds
    python benchmarks/embedded_legibility.py --quick             # 4 players, 1 round, 1 seed

Each game is a real `sim.run` of the Makefile's RUN_DEFAULTS (plus any overrides) into a
temporary run folder. Per game it prints wall time, the load average, calls, prompt tokens
(cached share), output tokens, the legible speech share (environments/traitors/legibility.py:
names a player, 3-40 words, no markup, no echoed scaffolding, not a copy of another player's
speech), the belief seat-order |rho|, the belief-truth rho and the speech mode (free / grammar:
a grammar-constrained speech is labelled). Figures are printed last as ``name: value`` lines.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

import polars as pl  # noqa: E402

import sim  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_defaults() -> list[str]:
    """The Makefile's ``RUN_DEFAULTS`` line: the main job's config."""
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith("RUN_DEFAULTS"):
            return line.split("=", 1)[1].split()
    raise SystemExit("error: no RUN_DEFAULTS line in the Makefile")


def one_game(seed: int, extra: list[str], folder: Path) -> dict:
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    res = sim.run([*run_defaults(), *extra, f"seed={seed}", f"run.dir={folder / f's{seed}'}",
                   "budget=unlimited"], progress=False)
    wall = time.perf_counter() - t
    ok = res.ledger.filter(pl.col("outcome") == "ok")
    o = res.summary["outcome"]
    tok_in = int(ok["tokens_in"].sum() or 0)
    return {"seed": seed, "status": res.summary["status"], "wall_s": round(wall, 1),
            "load": round((load0 + os.getloadavg()[0]) / 2, 1), "rounds": o.get("rounds"), "winner": o.get("winner"),
            "calls": ok.height, "tokens_in": tok_in, "cached_share": round(int(ok["tokens_cached"].sum() or 0)
                                                                          / max(tok_in, 1), 3),
            "tokens_out": int(ok["tokens_out"].sum() or 0), "legible": o.get("legible_speech_share"),
            "seat_rho": o.get("belief_seat_rho"), "truth_rho": o.get("belief_truth_rho"),
            "speech_mode": o.get("speech_mode")}


def _mean(xs: list) -> float:
    xs = [x for x in xs if x is not None]
    return statistics.fmean(xs) if xs else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="games, seeds 1..N (default 5)")
    ap.add_argument("--quick", action="store_true", help="4 players, 1 traitor, 1 round, 1 seed")
    ap.add_argument("overrides", nargs="*", help="config overrides added to RUN_DEFAULTS")
    a = ap.parse_args()
    extra = list(a.overrides)
    seeds = a.seeds
    if a.quick:
        seeds = 1
        extra = ["env.n_players=4", "env.n_traitors=1", "env.max_rounds=1", "env.discussion_passes=1",
                 "env.reactions=false", "env.conclave=false", "agent.reflection.enabled=false", *extra]
    games = []
    with tempfile.TemporaryDirectory(prefix="agora-legibility-") as tmp:
        for seed in range(1, seeds + 1):
            g = one_game(seed, extra, Path(tmp))
            games.append(g)
            print(json.dumps(g), flush=True)
    modes = sorted({str(g["speech_mode"]) for g in games})
    print(f"note: speech mode {', '.join(modes)}; overrides: {' '.join(extra) or 'none'}")
    print(f"games: {len(games)}")
    print(f"legible_speech_share_mean: {_mean([g['legible'] for g in games]):.3f}")
    print(f"belief_seat_rho_mean: {_mean([g['seat_rho'] for g in games]):.3f}")
    print(f"belief_truth_rho_mean: {_mean([g['truth_rho'] for g in games]):.3f}")
    print(f"calls_mean: {_mean([g['calls'] for g in games]):.1f}")
    print(f"cached_share_mean: {_mean([g['cached_share'] for g in games]):.3f}")
    print(f"wall_s_median: {statistics.median(g['wall_s'] for g in games):.1f}")
    print(f"load_mean: {_mean([g['load'] for g in games]):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
