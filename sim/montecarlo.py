"""Many small in-memory games: one config, many seeds, one polars frame of outcomes.

``run_batch(overrides, seeds, workers)`` composes and validates the config once,
then plays every seed in-process (``workers`` processes, each taking a contiguous
chunk of seeds: no process per game, no file written, nothing kept but each
game's summary). Every game is the same ``Simulation`` a single ``sim.run`` with
``run.dir=null`` plays, so a row's outcome is exactly that run's
``summary["outcome"]`` (tests/sim/test_montecarlo.py). Frontier and baseline
benchmarks use it; ``agora run -m seed=range(N) run.dir=null`` prints its frame.
"""
from __future__ import annotations

import copy
import gc
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Iterable, Sequence

import polars as pl

RUN_COLUMNS = ("seed", "status", "ticks", "wall_s", "calls", "usd", "error")


class Runs(list):
    """``sim.run_many``'s results: a list of ``RunResult``, and ``.frame``, their outcomes as one frame."""

    @property
    def frame(self) -> pl.DataFrame:
        return frame([outcome_row(r.summary) for r in self])


def batch_config(overrides: Sequence[str]) -> dict:
    """The composed, validated config every game of a batch shares (in memory, no checkpoints)."""
    from sim.config import compose, preflight, to_dict

    cfg = to_dict(compose(list(overrides)))
    cfg["run"]["dir"] = None
    cfg["run"]["checkpoint"] = False
    cfg["run"]["progress"] = False
    return preflight(cfg)


def outcome_row(summary: dict[str, Any]) -> dict[str, Any]:
    """One frame row from a run summary: run columns, then the outcome (nested keys joined by '.')."""
    llm = summary.get("llm") or {}
    row = {"seed": summary.get("seed"), "status": summary.get("status"), "ticks": summary.get("ticks"),
           "wall_s": summary.get("wall_s"), "calls": llm.get("calls"), "usd": llm.get("usd"),
           "error": summary.get("error")}
    for k, v in _flat(summary.get("outcome") or {}):
        row[f"outcome.{k}" if k in RUN_COLUMNS else k] = v
    return row


def _flat(d: dict, prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in d.items():
        if isinstance(v, dict):
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def play(cfg: dict, seeds: Iterable[int]) -> list[dict[str, Any]]:
    """Play ``cfg`` once per seed in this process; one outcome row per game."""
    from sim.runner import RunFailed, Simulation

    rows = []
    # what exists now (modules, the config) outlives every game: kept out of the collector's
    # full passes, which otherwise scan it again every few games (~10% of a small game's time)
    gc.freeze()
    try:
        for s in seeds:
            c = copy.copy(cfg)  # only the seed differs; sections are shared, never written by a run
            c["seed"] = int(s)
            try:
                res = Simulation(c, None).run(progress=False)
            except RunFailed as e:
                res = e.result
            rows.append(outcome_row(res.summary))
    finally:
        gc.unfreeze()
    return rows


def frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Rows (any outcome keys, some missing) as one frame; the run columns first."""
    if not rows:
        return pl.DataFrame(schema={"seed": pl.Int64, "status": pl.Utf8})
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return pl.DataFrame([{k: _cell(r.get(k)) for k in keys} for r in rows], infer_schema_length=None)


def _cell(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def run_batch(overrides: Sequence[str], seeds: Sequence[int], workers: int = 1,
              cfg: dict | None = None) -> pl.DataFrame:
    """Play the config once per seed; one row per game (in seed order) with its outcome.

    ``workers > 1`` splits the seeds into that many contiguous chunks played by as many
    processes; ``cfg`` (from ``batch_config``) skips composing when the caller has it.
    """
    cfg = cfg if cfg is not None else batch_config(overrides)
    seeds = [int(s) for s in seeds]
    if workers <= 1 or len(seeds) < 2:
        return frame(play(cfg, seeds))
    n = min(workers, len(seeds))
    chunks = [seeds[i * len(seeds) // n:(i + 1) * len(seeds) // n] for i in range(n)]
    with ProcessPoolExecutor(max_workers=n, mp_context=_context()) as ex:
        parts = list(ex.map(play, [cfg] * n, chunks))
    return frame([r for p in parts for r in p])


def _context():
    """Workers forked from a fork server that imported the engine once (no import per worker or pool).

    Not plain fork: a child forked from a process that has run polars can inherit its thread
    pool mid-state. Where there is no fork server, spawn (each worker imports once).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    from environments.registry import MODULES

    ctx.set_forkserver_preload(["sim.runner", "sim.montecarlo", "agents.cognition", *MODULES.values()])
    return ctx


def warm(workers: int) -> None:
    """Start the worker machinery once (the fork server's imports), so timed batches measure games only."""
    if workers > 1:
        with ProcessPoolExecutor(max_workers=1, mp_context=_context()) as ex:
            ex.submit(int, 0).result()


def timed(overrides: Sequence[str], seeds: Sequence[int], workers: int = 1) -> tuple[pl.DataFrame, float]:
    """``run_batch`` and its wall time in seconds (composing included)."""
    t0 = time.perf_counter()
    out = run_batch(overrides, seeds, workers)
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- agora run -m ... run.dir=null
def seed_sweep(overrides: Sequence[str]) -> tuple[list[str], list[int], int] | None:
    """(fixed overrides, seeds, workers) when a sweep is only over ``seed`` and runs in memory, else None.

    ``hydra.launcher.n_jobs=N`` (the joblib launcher's knob) sets the worker processes.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sim.config import compose, to_dict

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    fixed, seeds, workers = [], None, 1
    for o in parsed:
        name = o.key_or_group
        if name.startswith("hydra"):
            if name == "hydra.launcher.n_jobs":
                workers = int(o.value())
            continue
        if o.is_sweep_override():
            if name != "seed" or not o.is_discrete_sweep():
                return None
            seeds = [int(v) for v in o.sweep_iterator()]
        else:
            fixed.append(f"{o.get_key_element()}={o.get_value_element_as_str()}")
    if seeds is None:
        return None
    d = to_dict(compose(fixed)).get("run", {}).get("dir")
    if d not in (None, "null", "None", ""):
        return None
    return fixed, seeds, workers


def report(out: pl.DataFrame, env_name: str) -> list[str]:
    """Lines for a batch: games by status, the environment's sweep rows, means of numeric outcomes."""
    from environments import registry

    lines = [f"{out.height} games: " + ", ".join(f"{s} {n}" for s, n in
                                                 out.group_by("status").len().sort("status").iter_rows())]
    done = out.filter(pl.col("status").is_in(["completed", "degraded"]))
    for r in registry.env_class(env_name).sweep_rows(done.to_dicts()):
        iv = r.get("interval")
        val = r.get("value")
        shown = "n/a" if val is None else (f"{val:.4g}" if isinstance(val, float) else str(val))
        lines.append(f"{r['metric']}: {shown}" + (f"  [{iv[0]:.4f}, {iv[1]:.4f}]" if iv else ""))
    for c, dt in zip(out.columns, out.dtypes):
        if c not in RUN_COLUMNS and dt.is_numeric() and done.height:
            m = done[c].mean()
            if m is not None:
                lines.append(f"mean {c}: {m:.6g}")
    return lines


def cli_batch(overrides: Sequence[str]) -> int | None:
    """``agora run -m seed=... run.dir=null``: the seeds played in this process (and its workers), no files.

    None when the sweep is not a pure seed sweep in memory (then Hydra's multirun runs it).
    """
    got = seed_sweep(overrides)
    if got is None:
        return None
    fixed, seeds, workers = got
    cfg = batch_config(fixed)
    t0 = time.perf_counter()
    out = run_batch([], seeds, workers, cfg=cfg)
    wall = time.perf_counter() - t0
    for line in report(out, cfg["env"]["name"]):
        print(line)
    print(f"wall_s: {wall:.2f} ({out.height / wall:.1f} games/s, {workers} worker(s); nothing written)")
    return 0
