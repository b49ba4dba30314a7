"""Engine throughput with scripted agents: agent-steps per second, and engine+client cost per decision.

    python benchmarks/engine_overhead.py            # traitors, taxation, market, macro at 1,000 agents
    python benchmarks/engine_overhead.py --quick    # traitors 12 players x 2 rounds; taxation, market, macro 100 x 3
    python benchmarks/engine_overhead.py --no-reference   # skip the per-agent reference runs
    python benchmarks/engine_overhead.py --only traitors_1000 market_1000   # some scenarios

Each scenario runs ``--repeats`` times (default 3) on each path, interleaved:
the batch path (scripted decisions of a phase as arrays, sim/batch.py) and the per-agent
reference path (``engine.batch_scripted=false``); figures are medians and
``<label>_speedup_vs_reference`` is their ratio (the reference runs in a child process:
its heap would slow the batch runs after it, ``run_apart``). Before each timed run the heap left by the
imports and earlier runs is collected and frozen (``--no-freeze`` skips it), as sim/montecarlo.py
does for its games. The target
is >= 50,000 scripted agent-steps/s per environment at 1,000 agents. ``agent_steps_per_s`` divides by
the run's wall time (setup and the final frames included); ``tick_agent_steps_per_s`` by the ticks alone.

An agent-step is one agent's decision in one tick: a ledger row with outcome ok (scripted
endpoints take the client's direct path and still write one row per decision), or, for
taxation's scripted workers, whose labour choices are one vectorised best response per
tick and never reach the client, one ``labor`` event per worker per tick (macro households: one
``household`` event per household per month). Engine+client
overhead per decision is the run's wall time per decision divided by the time of calling
the scripted policy through the provider alone.
Traitors runs 1,000 scripted players (a model-played table stays capped at 60); its 1,000-player
scenario plays 10 rounds (each a breakfast of tells, a banishment vote and a night vote) with the
default Bayes faithful (each updates beliefs over every other player: O(N^2) per round), and
``traitors_1000_random`` the same with random faithful votes (the engine's cost alone). Belief
probes are off in both: each probe is a vector over every other player (1M numbers a round at 1,000
players, each an event payload and a metric input), about 600 agent-steps/s here. An
environment that fails to import or run is skipped with a printed note.
Figures are printed last as ``name: value`` lines.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

from pydantic import BaseModel  # noqa: E402

import sim  # noqa: E402
from sim.inference.providers.scripted import ScriptedProvider  # noqa: E402
from sim.inference.types import ChatRequest  # noqa: E402

COMMON = ["llm=scripted", "run.dir=null", "seed=1", "agent.reflection.enabled=false", "run.checkpoint=false"]


class _Vote(BaseModel):
    target: str


def scenarios(quick: bool) -> list[tuple[str, list[str]]]:
    """(label, overrides) per environment run."""
    if quick:
        return [("traitors_12", ["env=traitors", "env.n_players=12", "env.n_traitors=2", "env.max_rounds=2",
                                 "env.belief_probe=false", "env.discussion_passes=0"]),
                ("taxation_100", ["env=taxation", "env.n_workers=100", "env.ticks=3"]),
                ("market_100", ["env=market", "env.n_traders=100", "env.ticks=3"]),
                ("macro_100", ["env=macro", "env.n_households=100", "env.months=3"])]
    return [("traitors_60", ["env=traitors", "env.n_players=60", "env.n_traitors=6",
                             "env.belief_probe=false", "env.discussion_passes=0"]),
            # no reaction or conclave speeches: the outcome's legibility check compiles one regex of every
            # other player's name per speech (quadratic in the table), which would swamp the engine's cost
            ("traitors_1000", ["env=traitors", "env.n_players=1000", "env.n_traitors=100", "env.reactions=false",
                               "env.conclave=false",
                               "env.belief_probe=false", "env.discussion_passes=0", "env.max_rounds=10"]),
            # the same table with random faithful votes: the engine's own cost, without the Bayes
            # suspicion model's O(N^2) work per round (1M log-odds at 1,000 players)
            ("traitors_1000_random", ["env=traitors", "env.n_players=1000", "env.n_traitors=100",
                                      "env.reactions=false", "env.conclave=false", "env.belief_probe=false",
                                      "env.discussion_passes=0", "env.max_rounds=10", "env.faithful_policy=random"]),
            ("taxation_100", ["env=taxation", "env.n_workers=100"]),
            ("taxation_1000", ["env=taxation", "env.n_workers=1000", "env.ticks=50"]),
            ("taxation_5000", ["env=taxation", "env.n_workers=5000", "env.ticks=50"]),
            ("market_100", ["env=market", "env.n_traders=100"]),
            ("market_1000", ["env=market", "env.n_traders=1000"]),
            ("market_10000", ["env=market", "env.n_traders=10000", "env.ticks=3"]),
            ("macro_1000", ["env=macro", "env.n_households=1000", "env.months=24"])]


# events that each record one scripted agent's vectorised decision that never reaches the client:
# a taxation worker's labour choice, a macro household's month (work and spend)
VECTORISED = ("labor", "household")


def agent_steps(ledger, events=None) -> int:
    """Decisions taken: ledger rows whose outcome is ok, plus vectorised scripted decisions (VECTORISED)."""
    n = 0
    metered: set = set()
    if ledger is not None and ledger.height and "outcome" in ledger.columns:
        n = int((ledger["outcome"] == "ok").sum())
        metered = set(ledger["purpose"].unique().to_list())
    if events is not None and events.height:
        for kind in VECTORISED:
            if kind not in metered:
                n += int((events["kind"] == kind).sum())
    return n


def direct_provider_us(n: int) -> float:
    """Microseconds per call of the scripted provider alone (the floor the stack adds to)."""
    prov = ScriptedProvider()
    req = ChatRequest(messages=(("user", "vote"),), model="scripted", scripted=lambda: _Vote(target="p1"))

    async def go() -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await prov.complete(req)
        return time.perf_counter() - t0

    with asyncio.Runner() as r:
        return r.run(go()) / n * 1e6


def run_one(overrides: list[str], freeze: bool = True) -> dict[str, float]:
    """One run through the session API: wall from summary.json, and the ticks alone (setup and the
    final frames excluded), which is what a long run's throughput tends to.

    With ``freeze`` the heap that exists before the run (modules, earlier scenarios) is collected
    and frozen first, as ``sim/montecarlo.py`` does for its games: otherwise one full collection
    of the ~340k objects the imports leave (0.1-0.25 s here) lands in the run or not, by chance.
    """
    from sim.config import compose, to_dict
    from sim.runner import Simulation

    session = Simulation(to_dict(compose(overrides + COMMON)), None)
    if freeze:
        gc.collect()
        gc.freeze()
    try:
        return _timed(session)
    finally:
        if freeze:
            gc.unfreeze()


_APART: list = []  # [the pool of ``run_apart``'s one child, the configs it has warmed]


def run_apart(overrides: list[str], freeze: bool = True) -> dict[str, float]:
    """``run_one`` in a child process with a heap of its own (one child, started once, reused).

    The per-agent reference path at 1,000 agents leaves a process several hundred MB of freed
    heap; batch runs after it in the same process ran about 10% slower, so the reference runs apart.
    The child is spawned, not forked (polars' thread pool does not survive a fork); the first call
    for a config warms its path on one tick, outside the timing.
    """
    import multiprocessing as mp

    if not _APART:
        _APART.extend([mp.get_context("spawn").Pool(1), set()])
    pool, warm = _APART
    if tuple(overrides) not in warm:
        pool.apply(sim.run, (overrides + COMMON + ["run.max_ticks=1"],), {"progress": False})
        warm.add(tuple(overrides))
    return pool.apply(run_one, (overrides, freeze))


def _timed(session) -> dict[str, float]:
    session.start()
    tick_s = 0.0
    more = True
    while more:
        t0 = time.perf_counter()
        more = session.step()
        tick_s += time.perf_counter() - t0
    res = session.finish()
    wall = float(res.summary.get("wall_s") or 0.0)
    steps = agent_steps(res.ledger, res.events)
    return {"wall_s": wall, "ticks": float(res.summary.get("ticks") or 0), "agent_steps": float(steps),
            "agent_steps_per_s": steps / wall if wall > 0 else float("nan"),
            "us_per_agent_step": wall / steps * 1e6 if steps else float("nan"),
            "tick_agent_steps_per_s": steps / tick_s if tick_s > 0 else float("nan")}


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the repeats (the box is shared: one run is one draw of its load)."""
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-reference", action="store_true", help="skip the per-agent reference runs")
    ap.add_argument("--only", nargs="+", default=None, metavar="LABEL", help="just these scenarios")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs per path, interleaved; figures are medians (default 3)")
    ap.add_argument("--no-freeze", action="store_true",
                    help="do not collect and freeze the heap before each timed run (see run_one)")
    a = ap.parse_args(argv)
    direct = direct_provider_us(2000)
    figs: dict[str, float] = {"direct_scripted_provider_us_per_call": direct}
    freeze = not a.no_freeze
    for label, ov in scenarios(a.quick):
        if a.only and label not in a.only:
            continue
        try:
            # warm the batch path (imports, model classes) on one tick
            sim.run(ov + COMMON + ["run.max_ticks=1", "engine.batch_scripted=true"], progress=False)
            runs, refs = [], []
            for _ in range(max(1, a.repeats)):  # interleaved, so both paths see the same load
                runs.append(run_one(ov, freeze))
                if not a.no_reference and runs[-1]["agent_steps"]:
                    refs.append(run_apart(ov + ["engine.batch_scripted=false"], freeze))
        except Exception as e:  # envs are still being written; a broken one must not hide the rest
            print(f"note: {label} skipped: {type(e).__name__}: {str(e)[:200]}")
            continue
        out = _median(runs)
        if not out["agent_steps"]:
            print(f"note: {label} took no metered decisions (scripted agents bypass the client?)")
        for k, v in out.items():
            figs[f"{label}_{k}"] = v
        if out["agent_steps"]:
            figs[f"{label}_engine_over_direct_ratio"] = out["us_per_agent_step"] / direct
        if refs:
            ref = _median(refs)
            figs[f"{label}_reference_agent_steps_per_s"] = ref["agent_steps_per_s"]
            figs[f"{label}_reference_tick_agent_steps_per_s"] = ref["tick_agent_steps_per_s"]
            figs[f"{label}_speedup_vs_reference"] = out["agent_steps_per_s"] / ref["agent_steps_per_s"]
            figs[f"{label}_tick_speedup_vs_reference"] = out["tick_agent_steps_per_s"] / ref["tick_agent_steps_per_s"]
    if _APART:
        _APART[0].close()
        _APART[0].join()
    print("# engine_overhead (scripted agents; wall_s from summary.json)")
    for k, v in figs.items():
        print(f"{k}: {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
