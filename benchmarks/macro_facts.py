"""Macro stylised facts over many seeds of the scripted economy (docs/macro.md).

    python benchmarks/macro_facts.py                 # 20 seeds x 20 years x 100 households
    python benchmarks/macro_facts.py --rule buffer_stock
    python benchmarks/macro_facts.py --quick

Each seed is one engine run, `sim.run(["env=macro", "llm=scripted", ...])`; the annual
figures come from its outcome. Reported:
- Phillips: correlation of annual wage inflation with annual unemployment (years 2..),
  per seed (mean and 95% t-interval on Fisher z, over seeds) and pooled over every seed-year.
  EconAgent (economics.md §4) reports a negative relation for LLM agents and a positive,
  wrong one for its rule-based baseline.
- Okun: correlation of the yearly change in unemployment with real GDP growth. With
  all-or-nothing hours, real GDP = A x hours x P0 = A x H x P0 x N x 12 x (1 - u), so growth is
  -du / (1 - u_prev) exactly (up to supply shocks): Okun's law is an identity here, not a finding.
- Bands of annual inflation and unemployment (5th-95th percentile, min, max over seed-years).
- Conservation: every run checks coin and goods after every phase (a breach fails the run).
Figures are printed last.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

import sim  # noqa: E402
from environments.macro import metrics as mm  # noqa: E402


def run_seed(seed: int, households: int, years: int, rule: str) -> dict:
    r = sim.run(["env=macro", "llm=scripted", "run.dir=null", f"env.n_households={households}",
                 f"env.months={12 * years}", f"env.scripted_rule={rule}", "env.survey=false", f"seed={seed}"],
                progress=False)
    return r.summary["outcome"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--households", type=int, default=100)
    ap.add_argument("--rule", choices=["composite", "buffer_stock", "mix"], default="composite")
    ap.add_argument("--seed", type=int, default=0, help="first seed")
    ap.add_argument("--quick", action="store_true", help="4 seeds x 6 years x 30 households")
    a = ap.parse_args(argv)
    seeds, years, n = (4, 6, 30) if a.quick else (a.seeds, a.years, a.households)

    t0 = time.perf_counter()
    per_seed_phillips, per_seed_okun, wi, un, infl, conserved = [], [], [], [], [], True
    for s in range(a.seed, a.seed + seeds):
        o = run_seed(s, n, years, a.rule)
        years_ = o["annual"][1:]  # year 1 has no inflation
        per_seed_phillips.append(o["phillips_corr"] if o["phillips_corr"] is not None else math.nan)
        per_seed_okun.append(o["okun_corr"] if o["okun_corr"] is not None else math.nan)
        wi += [y["wage_inflation"] for y in years_]
        un += [y["unemployment"] for y in years_]
        infl += [y["inflation"] for y in years_]
        conserved = conserved and bool(o["conservation_ok"])
    wall = time.perf_counter() - t0

    ph_m, ph_lo, ph_hi = mm.corr_mean_interval(per_seed_phillips)
    ok_m, ok_lo, ok_hi = mm.corr_mean_interval(per_seed_okun)
    pooled = mm.phillips(wi, un)
    p_lo, p_hi = mm.pooled_corr_interval(pooled, len(wi))
    inf_q = np.percentile(infl, [5, 95])
    un_q = np.percentile(un, [5, 95])

    print(f"Design: {seeds} seeds x {years} years x {n} households, scripted rule {a.rule}, survey off;")
    print("annual figures from years 2.. (year 1 has no inflation). EconAgent reports inflation within")
    print("about -5%..5% and unemployment 2-12% for its LLM agents (economics.md §4).")
    print(f"Phillips (wage inflation vs unemployment): per-seed mean {ph_m:+.3f}, 95% CI [{ph_lo:+.3f}, {ph_hi:+.3f}]; "
          f"pooled {pooled:+.3f} over {len(wi)} seed-years, 95% CI [{p_lo:+.3f}, {p_hi:+.3f}]")
    print(f"Okun (d unemployment vs real GDP growth): per-seed mean {ok_m:+.4f}, 95% CI [{ok_lo:+.4f}, {ok_hi:+.4f}] "
          "(an identity with all-or-nothing hours)")
    print(f"annual inflation: 5-95% band [{100 * inf_q[0]:+.2f}%, {100 * inf_q[1]:+.2f}%], "
          f"min {100 * min(infl):+.2f}%, max {100 * max(infl):+.2f}%")
    print(f"annual unemployment: 5-95% band [{100 * un_q[0]:.2f}%, {100 * un_q[1]:.2f}%], "
          f"min {100 * min(un):.2f}%, max {100 * max(un):.2f}%")
    print(f"conservation of coin and goods every month: {conserved}; {wall:.1f}s")
    print()
    print(f"phillips_corr_mean: {ph_m}")
    print(f"phillips_corr_ci_low: {ph_lo}")
    print(f"phillips_corr_ci_high: {ph_hi}")
    print(f"phillips_corr_pooled: {pooled}")
    print(f"okun_corr_mean: {ok_m}")
    print(f"inflation_p05: {inf_q[0]}")
    print(f"inflation_p95: {inf_q[1]}")
    print(f"unemployment_p05: {un_q[0]}")
    print(f"unemployment_p95: {un_q[1]}")
    print(f"conserved: {int(conserved)}")
    print(f"seconds: {wall}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
