"""Compare taxation planners on the same economy (same seed, same skills).

    .venv/bin/python benchmarks/taxation_planners.py [--quick] [--workers N] [--seed S] [--llm]

Runs fixed US federal, free market, Saez and grid planners with scripted rational workers
(and the LLM planner on the embedded model with --llm), then prints the last period's
metrics per planner and checks the grid optimum: the grid schedule's simulated welfare must
equal what the search predicted and no other planner's final schedule, evaluated with the
same equilibrium model, may beat it on the grid.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sim  # noqa: E402
from environments.taxation.metrics import resolve_swf  # noqa: E402
from environments.taxation.planners import equilibrium_outcomes  # noqa: E402

COLUMNS = [("productivity", "productivity"), ("equality", "equality"), ("eq_x_prod", "eq_times_prod"),
           ("utilitarian", "utilitarian_welfare"), ("inv_income", "inverse_income_welfare"), ("usd", "compute_usd")]


def planner_runs(quick: bool, llm: bool) -> list[tuple[str, list[str]]]:
    runs = [("us_federal", ["env.planner=fixed", "env.preset=us_federal"]),
            ("free_market", ["env.planner=fixed", "env.preset=free_market"]),
            ("saez", ["env.planner=saez"]),
            ("grid", ["env.planner=grid"] + (["env.grid_rates=[0.0,0.45,0.9]"] if quick else []))]
    if llm:
        runs.append(("llm", ["env.planner=llm", "llm=local", "env.llm_workers=false",
                             "agent.reflection.enabled=false"]))
    return runs


def run_all(workers: int, seed: int, quick: bool, llm: bool) -> list[tuple[str, dict, float]]:
    ticks = 8 if quick else 30
    base = ["env=taxation", "llm=scripted", "run.dir=null", f"seed={seed}", f"env.n_workers={workers}",
            f"env.ticks={ticks}"]
    out = []
    for name, extra in planner_runs(quick, llm):
        if name == "llm":
            extra = extra + [f"env.ticks={min(ticks, 3)}"]
        t0 = time.perf_counter()
        r = sim.run(base + extra, progress=False)
        out.append((name, r.summary["outcome"], time.perf_counter() - t0))
    return out


def table(rows: list[tuple[str, dict, float]]) -> str:
    head = f"{'planner':<12}" + "".join(f"{c:>14}" for c, _ in COLUMNS) + f"{'wall_s':>9}"
    lines = [head, "-" * len(head)]
    for name, o, wall in rows:
        cells = "".join(f"{_fmt(o.get(k)):>14}" for _, k in COLUMNS)
        lines.append(f"{name:<12}{cells}{wall:>9.2f}")
    return "\n".join(lines)


def _fmt(x) -> str:
    if x is None:
        return "nan"
    return f"{x:.6f}" if abs(x) < 1 else f"{x:.2f}"


def grid_check(rows: list[tuple[str, dict, float]], workers: int, seed: int) -> list[str]:
    """Simulated grid welfare == predicted; grid >= every other final schedule under the same model."""
    from environments.taxation.env import TaxationConfig, draw_skills, utility_params
    from sim.config import compose, to_dict
    from sim.seeding import np_rng

    cfg = to_dict(compose(["env=taxation", f"env.n_workers={workers}", f"seed={seed}"]))
    ecfg = TaxationConfig.model_validate(cfg["env"])
    skills = draw_skills(ecfg, np_rng(seed, "skills"))
    opts = [float(h) for h in range(0, ecfg.hours_cap + 1, ecfg.hours_step)]
    score = resolve_swf(ecfg.swf)
    by = {n: o for n, o, _ in rows}
    g = by["grid"]
    msgs = [f"grid: simulated {ecfg.swf} {g['inverse_income_welfare']:.4f} vs predicted "
            f"{g['grid_predicted_welfare']:.4f} -> "
            f"{'ok' if np.isclose(g['inverse_income_welfare'], g['grid_predicted_welfare']) else 'MISMATCH'}"]
    grid_w = g["grid_predicted_welfare"]
    for name, o, _ in rows:
        out = equilibrium_outcomes(skills, o["cutoffs"], np.asarray([o["final_rates"]]), utility_params(ecfg),
                                   float(ecfg.hours_cap), opts)
        w = float(np.asarray(score(out.utility, out.pre_tax_income, out.post_tax_income))[0])
        on_grid = all(any(np.isclose(r, x) for x in ecfg.grid_rates) for r in o["final_rates"])
        verdict = ("ok" if w <= grid_w + 1e-9 else "BEATS GRID") if on_grid else \
            ("off-grid, better than grid" if w > grid_w else "off-grid, below grid")
        msgs.append(f"  {name:<12} equilibrium {ecfg.swf} {w:.4f}: {verdict}")
    return msgs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="8 ticks and a 3-point grid")
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--llm", action="store_true", help="also run the LLM planner on the embedded model")
    a = ap.parse_args(argv)
    rows = run_all(a.workers, a.seed, a.quick, a.llm)
    msgs = grid_check(rows, a.workers, a.seed) if not a.quick else \
        [f"grid (quick 3-point grid): simulated {rows[3][1]['inverse_income_welfare']:.4f} vs predicted "
         f"{rows[3][1]['grid_predicted_welfare']:.4f}"]
    print("\n".join(msgs))
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
