"""A Traitors game on the embedded model, then its replay from the recorded cache.

    python benchmarks/embedded_traitors.py            # 8 players, 2 traitors, full game (slow: minutes+)
    python benchmarks/embedded_traitors.py --quick    # 4 players, 1 traitor, 1 round, 1 discussion pass

Live: llm=local (SmolLM2-135M via llama-cpp-python) into a temporary run dir, cache mode
record. Replay: ``sim.runner.replay(path, out)`` answers every call from llm_cache.jsonl.
Reports wall time, calls, generated tokens/s, the replay's speed-up, and whether the
replayed event log equals the live one.
Figures are printed last as ``name: value`` lines.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

import polars as pl  # noqa: E402

import sim  # noqa: E402
from sim.runner import replay  # noqa: E402


def game_overrides(quick: bool, run_dir: Path) -> list[str]:
    # --quick also drops the optional phases: on a shared 2-core box each call takes seconds
    size = ["env.n_players=4", "env.n_traitors=1", "env.max_rounds=1", "env.discussion_passes=1",
            "env.belief_probe=false", "env.reactions=false", "env.conclave=false",
            "agent.reflection.enabled=false", "llm.max_tokens=48"] if quick else \
        ["env.n_players=8", "env.n_traitors=2"]
    return ["env=traitors", "llm=local", "llm.cache.mode=record", "budget=unlimited", f"run.dir={run_dir}",
            "seed=1", *size]


def llm_totals(ledger: pl.DataFrame) -> tuple[int, int]:
    """(ok model calls, completion tokens) from a ledger frame."""
    if ledger.height == 0:
        return 0, 0
    ok = ledger.filter(pl.col("outcome") == "ok")
    out = int(ok["tokens_out"].sum()) if "tokens_out" in ok.columns else 0
    return ok.height, out


def same_events(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Event logs equal, ignoring any wall-clock column a writer might add."""
    drop = [c for c in a.columns if c in ("ts", "time", "wall_s", "created_at")]
    a2, b2 = a.drop(drop), b.drop([c for c in drop if c in b.columns])
    return a2.columns == b2.columns and a2.equals(b2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agora-bench-") as tmp:
        live_dir, replay_dir = Path(tmp) / "live", Path(tmp) / "replay"
        t0 = time.perf_counter()
        live = sim.run(game_overrides(a.quick, live_dir), progress=False)
        live_wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        rep = replay(live_dir, replay_dir, progress=False)
        rep_wall = time.perf_counter() - t0
    calls, toks = llm_totals(live.ledger)
    figs = {"live_status_ok": float(live.status == "completed"),
            "live_ticks": float(live.summary.get("ticks") or 0), "live_wall_s": live_wall,
            "live_calls": float(calls), "live_tokens_out": float(toks),
            "live_tokens_out_per_s": toks / live_wall if live_wall else float("nan"),
            "live_s_per_call": live_wall / calls if calls else float("nan"),
            "replay_wall_s": rep_wall, "replay_speedup_over_live": live_wall / rep_wall if rep_wall else float("nan"),
            "replay_events_identical": float(same_events(live.events, rep.events)),
            "events": float(live.events.height)}
    print(f"# embedded_traitors (live status={live.status}, replay status={rep.status})")
    for k, v in figs.items():
        print(f"{k}: {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
