"""Cost-of-pass and the inference production frontier.

``cost_of_pass(spend, success)``: mean spend / mean success over replications (games), the
expected USD per unit of the environment's success event (``Environment.success_value``: a
faithful win, welfare, surplus), with a 95% interval for a ratio of means: Fieller's (exact
for normal means; unbounded above when the success mean is not clearly above zero) or a
percentile bootstrap over games. Both stay in [0, inf].

``run_frontier``: a grid of cells (policy x tier x budget), each run over the same seeds
(common random numbers), in process; ``frontier.parquet`` holds one row per cell with spend,
outcome and cost-of-pass, their intervals, the marginal value of compute over the next-smaller
budget of the same policy and tier (``mv``: outcome per extra USD, Fieller interval paired by
game) and whether the cell is on the Pareto hull of (spend, outcome). ``drop`` removes a tier:
the counterfactual frontier without it. ``baseline`` (run overrides, e.g. ``["llm=scripted"]``)
adds the cost-of-pass of the success *gained over* that baseline, game by game on the same
seeds: ``gain_mean`` (with its interval) and ``cop_gain`` = mean(spend) / mean(success -
baseline success), e.g. USD per unit of welfare gained over scripted play.

Every output labels simulated tiers: each row's ``tier_kind`` (simulated, mixed, scripted or
llm), ``is_llm`` (a language model answered a call in some game) and ``note`` ("simulated
tier: not an LLM" for an oracle tier); the plot's subtitle and `agora frontier`'s output say
so too (``frontier_label``). ``mv_note`` says why a marginal value is empty or unbounded.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

Z95 = 1.959963984540054


# ---------------------------------------------------------------- cost-of-pass
@dataclass(frozen=True)
class Ratio:
    value: float
    lo: float
    hi: float
    n: int


def cost_of_pass(spend: Sequence[float], success: Sequence[float], method: str = "fieller",
                 level: float = 0.95, boot: int = 2000, seed: int = 0) -> Ratio:
    """mean(spend) / mean(success) with its interval; inf when nothing succeeded."""
    s, w = np.asarray(spend, dtype=float), np.asarray(success, dtype=float)
    if s.shape != w.shape or s.size == 0:
        raise ValueError("spend and success: two equal, non-empty sequences (one entry per game)")
    n = s.size
    a, b = s.mean(), w.mean()
    value = a / b if b > 0 else math.inf
    if method == "fieller":
        lo, hi = _fieller(s, w, _z(level))
    elif method == "bootstrap":
        lo, hi = _bootstrap(s, w, level, boot, seed)
    else:
        raise ValueError(f"method={method!r}: fieller or bootstrap")
    return Ratio(value, max(0.0, lo), max(0.0, hi), n)


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


def _fieller(s: np.ndarray, w: np.ndarray, z: float) -> tuple[float, float]:
    """Fieller's interval for mean(s)/mean(w): the R with (a - R b)^2 <= z^2 Var(a - R b)."""
    n = s.size
    a, b = s.mean(), w.mean()
    if n < 2:
        return 0.0, math.inf
    vaa, vbb = s.var(ddof=1) / n, w.var(ddof=1) / n
    vab = float(np.cov(s, w, ddof=1)[0, 1]) / n
    qa = b * b - z * z * vbb
    qb = a * b - z * z * vab
    qc = a * a - z * z * vaa
    disc = qb * qb - qa * qc
    if qa <= 0 or disc < 0:  # the success mean is not clearly above 0: unbounded above
        return (max(0.0, (qc / (2 * qb)) if qb > 0 and qa <= 0 else 0.0), math.inf)
    r = math.sqrt(disc)
    lo, hi = (qb - r) / qa, (qb + r) / qa
    if hi < 0:  # the success mean is clearly below 0 (a loss over a baseline): nothing is ever bought
        return math.inf, math.inf
    return lo, hi


def _bootstrap(s: np.ndarray, w: np.ndarray, level: float, boot: int, seed: int) -> tuple[float, float]:
    idx = np.random.default_rng(seed).integers(0, s.size, size=(boot, s.size))
    ratios = _ratios(s[idx].mean(axis=1), w[idx].mean(axis=1))
    tail = (1 - level) / 2
    # no interpolation: a resample with no success is inf, and inf never averages with a number
    return (float(np.quantile(ratios, tail, method="inverted_cdf")),
            float(np.quantile(ratios, 1 - tail, method="inverted_cdf")))


def _ratios(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.inf)


def paired_difference(spend_a, success_a, spend_b, success_b, level: float = 0.95, boot: int = 2000,
                      seed: int = 0) -> Ratio:
    """CoP(a) - CoP(b) for two cells run on the same seeds: games are resampled together."""
    sa, wa, sb, wb = (np.asarray(x, dtype=float) for x in (spend_a, success_a, spend_b, success_b))
    if not (sa.shape == wa.shape == sb.shape == wb.shape):
        raise ValueError("paired cells: the same games (seeds) in both")
    idx = np.random.default_rng(seed).integers(0, sa.size, size=(boot, sa.size))
    d = _ratios(sa[idx].mean(1), wa[idx].mean(1)) - _ratios(sb[idx].mean(1), wb[idx].mean(1))
    d = d[np.isfinite(d)]
    point = cost_of_pass(sa, wa).value - cost_of_pass(sb, wb).value
    if d.size == 0:
        return Ratio(point, -math.inf, math.inf, sa.size)
    tail = (1 - level) / 2
    return Ratio(point, float(np.quantile(d, tail, method="inverted_cdf")),
                 float(np.quantile(d, 1 - tail, method="inverted_cdf")), sa.size)


def mean_interval(x: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, lo, hi) with a normal interval; a 0/1 outcome gets Wilson's, which stays in [0, 1]."""
    v = np.asarray(x, dtype=float)
    m = float(v.mean())
    if v.size and set(np.unique(v)) <= {0.0, 1.0}:
        from sim.stats import wilson_interval

        lo, hi = wilson_interval(int(v.sum()), v.size, z=_z(level))
        return m, lo, hi
    h = _z(level) * float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else math.inf
    return m, m - h, m + h


def marginal_value(spend: Sequence[float], outcome: Sequence[float]) -> list[float | None]:
    """Outcome gained per extra USD between adjacent budgets (sorted by spend); None where spend is equal."""
    pts = sorted(zip(spend, outcome))
    out: list[float | None] = []
    for (s0, o0), (s1, o1) in zip(pts, pts[1:]):
        out.append((o1 - o0) / (s1 - s0) if s1 > s0 else None)
    return out


def marginal_ratio(d_outcome: Sequence[float], d_spend: Sequence[float], level: float = 0.95) -> Ratio:
    """mean(d_outcome) / mean(d_spend) over paired games (the same seeds in two cells), with Fieller's interval.

    The marginal value of compute: outcome gained per extra USD. It may be negative (a tighter
    budget that happened to do better); the interval is (-inf, inf) when the extra spend is not
    clearly above zero, and the value is nan when the two cells spent exactly the same. When the
    extra spend changed the outcome of no game the value is 0 and the interval nan: a zero-width
    [0, 0] would read as certainty, but it only says these games had no spread to measure.
    """
    o, s = np.asarray(d_outcome, dtype=float), np.asarray(d_spend, dtype=float)
    a, b = float(o.mean()), float(s.mean())
    if b == 0:
        return Ratio(math.nan, math.nan, math.nan, o.size)
    if not o.any():  # no game changed: 0 gained, and no spread to build an interval from (not [0, 0])
        return Ratio(0.0, math.nan, math.nan, o.size)
    value = a / b
    if o.size < 2:
        return Ratio(value, -math.inf, math.inf, o.size)
    z = _z(level)
    n = o.size
    vaa, vbb, vab = o.var(ddof=1) / n, s.var(ddof=1) / n, float(np.cov(o, s, ddof=1)[0, 1]) / n
    qa, qb, qc = b * b - z * z * vbb, a * b - z * z * vab, a * a - z * z * vaa
    disc = qb * qb - qa * qc
    if qa <= 0 or disc < 0:
        return Ratio(value, -math.inf, math.inf, n)
    r = math.sqrt(disc)
    lo, hi = sorted(((qb - r) / qa, (qb + r) / qa))
    return Ratio(value, lo, hi, n)


def budget_steps(rows: list[dict], games: dict[str, dict], level: float = 0.95) -> list[dict]:
    """Marginal value of compute of each cell over the next-smaller budget of the same policy and tier.

    ``rows`` are frontier rows, ``games`` their per-game spend and success (same seeds in every
    cell). Budgets are ordered with ``None`` (unlimited) last. A row's ``mv`` is (its outcome -
    the smaller budget's) / (its spend - the smaller budget's), outcome per USD, with ``mv_lo``,
    ``mv_hi`` (Fieller, paired by game) and ``mv_from`` (the smaller cell); null for the smallest.
    ``mv_note`` says why ``mv`` or its interval is empty or unbounded (``MV_NOTES``): where the
    extra spend changed no game's outcome, ``mv`` and its interval are null with the note
    ``no change in any game``, never a zero-width [0, 0] that reads as certainty.
    """
    out = {r["cell"]: {"mv": None, "mv_lo": None, "mv_hi": None, "mv_from": None, "mv_note": MV_NOTES["smallest"]}
           for r in rows}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["policy"], r["tier"]), []).append(r)
    for members in groups.values():
        members.sort(key=lambda r: math.inf if r["budget_usd"] is None else r["budget_usd"])
        for lo_row, hi_row in zip(members, members[1:]):
            g0, g1 = games[lo_row["cell"]], games[hi_row["cell"]]
            pairs = [(w1 - w0, s1 - s0) for s0, w0, s1, w1 in zip(g0["spend"], g0["success"], g1["spend"], g1["success"])
                     if not (math.isnan(w0) or math.isnan(w1))]
            if not pairs:
                continue
            r = marginal_ratio([p[0] for p in pairs], [p[1] for p in pairs], level)
            fin = (lambda x: None if math.isnan(x) else x)
            step = {"mv": fin(r.value), "mv_lo": fin(r.lo), "mv_hi": fin(r.hi), "mv_from": lo_row["cell"],
                    "mv_note": None}
            if math.isnan(r.value):
                step["mv_note"] = MV_NOTES["no_spend"]
            elif math.isnan(r.lo):  # no game changed: null, not 0 [0, 0]
                step.update(mv=None, mv_note=MV_NOTES["no_change"])
            elif math.isinf(r.lo) and math.isinf(r.hi):
                step["mv_note"] = MV_NOTES["unbounded"]
            out[hi_row["cell"]] = step
    return [out[r["cell"]] for r in rows]


MV_NOTES = {"smallest": "smallest budget",
            "no_spend": "no extra spend",
            "no_change": "no change in any game",  # extra spend, but every game's outcome as before: no interval
            "unbounded": "extra spend not clearly above 0: no information"}


def pareto(spend: Sequence[float], outcome: Sequence[float]) -> list[bool]:
    """On the hull: no other cell has less or equal spend and a higher outcome (or equal outcome, less spend)."""
    pts = list(zip(spend, outcome))
    return [not any((s2 <= s and o2 > o) or (s2 < s and o2 >= o) for s2, o2 in pts) for s, o in pts]


# ---------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Cell:
    policy: str
    tier: str
    budget: float | None

    @property
    def name(self) -> str:
        b = "unlimited" if self.budget is None else f"${self.budget:g}"
        return f"{self.policy}:{self.tier}:{b}"


def cells(tiers: list[str], policies: list[str], budgets: list[float | None], drop: Sequence[str] = ()) -> list[Cell]:
    """The grid without the dropped tiers; a multi-tier policy runs from the cheapest kept tier to ``tier``."""
    kept = [t for t in tiers if t not in set(drop)]
    out = []
    for p in policies:
        for i, t in enumerate(kept):
            if p in ("cascade", "router", "voc_gate") and i == 0:
                continue  # needs a cheaper tier below it
            out += [Cell(p, t, b) for b in budgets]
    return out


def cell_overrides(c: Cell, tiers: list[str], drop: Sequence[str] = (), n: int = 5) -> list[str]:
    kept = [t for t in tiers if t not in set(drop)]
    ov = [f"llm.model={c.tier}", "budget.run_usd=" + ("null" if c.budget is None else repr(float(c.budget)))]
    if c.policy == "single":
        return ov
    if c.policy == "best_of_n":
        return ov + ["deliberation.policy=best_of_n", f"deliberation.tiers=[{c.tier}]", f"deliberation.n={n}"]
    return ov + [f"deliberation.policy={c.policy}", f"deliberation.tiers=[{kept[0]},{c.tier}]"]


def cell_tiers(c: Cell, tiers: list[str], drop: Sequence[str] = ()) -> list[str]:
    """The tiers a cell's games call: its own, and for a multi-tier policy the cheapest kept tier first."""
    kept = [t for t in tiers if t not in set(drop)]
    return [c.tier] if c.policy in ("single", "best_of_n") or kept[0] == c.tier else [kept[0], c.tier]


SIMULATED = "simulated tier: not an LLM"


def tier_label(cfg: dict, names: Sequence[str], is_llm: bool) -> dict[str, Any]:
    """``tier_kind``, ``note`` and ``is_llm`` of a cell whose games call the tiers ``names``.

    A tier is an oracle tier when its provider (``deliberation.tier_llm.<name>``, else the
    ``llm`` section's) is ``oracle``: simulated, with a known accuracy and cost, never an LLM.
    ``is_llm`` is what the games' summaries say: a language model answered at least one call.
    """
    llm = cfg.get("llm") or {}
    tier_llm = (cfg.get("deliberation") or {}).get("tier_llm") or {}
    prov = {t: (tier_llm.get(t) or {}).get("provider") or llm.get("provider") for t in names}
    sim = [t for t in names if prov[t] == "oracle"]
    other = [t for t in names if prov[t] != "oracle"]
    if sim and not other:
        kind, note = "simulated", SIMULATED
    elif sim:
        kind, note = "mixed", (f"mixed: {', '.join(sim)} {SIMULATED}; "
                               f"{', '.join(f'{t} ({prov[t]})' for t in other)} not simulated")
    elif all(prov[t] == "scripted" for t in names):
        kind, note = "scripted", "scripted: not an LLM"
    else:
        kind, note = "llm", None if is_llm else "no call was answered by a language model: not an LLM result"
    return {"tier_kind": kind, "is_llm": bool(is_llm), "note": note}


def cell_label(base: list[str], c: Cell, tiers: list[str], drop: Sequence[str], n: int,
               is_llm: Sequence[bool]) -> dict[str, Any]:
    """The cell's ``tier_kind``/``is_llm``/``note`` columns (``tier_label``) from its composed config."""
    from sim.config import compose, to_dict

    cfg = to_dict(compose([*base, *cell_overrides(c, tiers, drop, n), "run.dir=null"]))
    return tier_label(cfg, cell_tiers(c, tiers, drop), any(is_llm))


def run_cell(base: list[str], c: Cell, tiers: list[str], seeds: Sequence[int], drop: Sequence[str] = (),
             n: int = 5) -> dict[str, Any]:
    """Every seed of one cell in process: per-game spend (USD) and success value."""
    return run_games([*base, *cell_overrides(c, tiers, drop, n)], seeds)


def run_games(overrides: list[str], seeds: Sequence[int]) -> dict[str, Any]:
    """Per-game spend (USD), success value and ``is_llm`` (a language model answered a call) on every seed."""
    from environments import registry
    from sim.config import compose, to_dict
    from sim.runner import _run_memory

    cfg = to_dict(compose([*overrides, "run.dir=null", "run.checkpoint=false"]))
    cls = registry.env_class(cfg["env"]["name"])
    spend, success, is_llm = [], [], []
    for s in seeds:
        res = _run_memory({**cfg, "seed": int(s)})
        v = cls.success_value(res.summary["outcome"])
        spend.append(float(res.summary["llm"]["usd"]))
        success.append(float("nan") if v is None else float(v))
        is_llm.append(bool(res.summary["llm"].get("is_llm")))
    return {"spend": spend, "success": success, "is_llm": is_llm}


def summarise(c: Cell, spend: list[float], success: list[float], method: str = "fieller") -> dict[str, Any]:
    ok = [(s, w) for s, w in zip(spend, success) if not math.isnan(w)]
    sp = [s for s, _ in ok]
    sc = [w for _, w in ok]
    ms, slo, shi = mean_interval(sp) if sp else (math.nan,) * 3
    mo, olo, ohi = mean_interval(sc) if sc else (math.nan,) * 3
    cop = cost_of_pass(sp, sc, method) if sp else Ratio(math.nan, math.nan, math.nan, 0)
    return {"cell": c.name, "policy": c.policy, "tier": c.tier, "budget_usd": c.budget, "games": len(ok),
            "spend_mean": ms, "spend_lo": max(0.0, slo), "spend_hi": shi,
            "outcome_mean": mo, "outcome_lo": olo, "outcome_hi": ohi,
            "cop": cop.value, "cop_lo": cop.lo, "cop_hi": cop.hi, "interval": method}


def gain_columns(spend: list[float], success: list[float], base_success: list[float],
                 method: str = "fieller") -> dict[str, Any]:
    """Success gained over the baseline game by game (same seeds) and its cost-of-pass, with 95% intervals."""
    ok = [(s, w - b) for s, w, b in zip(spend, success, base_success) if not (math.isnan(w) or math.isnan(b))]
    if not ok:
        return {k: math.nan for k in ("gain_mean", "gain_lo", "gain_hi", "cop_gain", "cop_gain_lo", "cop_gain_hi")}
    gm, glo, ghi = mean_interval([g for _, g in ok])
    r = cost_of_pass([s for s, _ in ok], [g for _, g in ok], method)
    return {"gain_mean": gm, "gain_lo": glo, "gain_hi": ghi, "cop_gain": r.value, "cop_gain_lo": r.lo,
            "cop_gain_hi": r.hi}


def cell_slug(c: Cell) -> str:
    """A folder name for a cell's runs: ``cascade-large-unlimited``, ``single-small-0.1``."""
    return f"{c.policy}-{c.tier}-{'unlimited' if c.budget is None else format(c.budget, 'g')}"


def run_cell_sweep(base: list[str], c: Cell, tiers: list[str], seeds: Sequence[int], out: Path,
                   hydra: Sequence[str] = (), drop: Sequence[str] = (), n: int = 5) -> dict[str, Any]:
    """One cell as a Hydra multirun over its seeds (``sim.sweep.hydra_main``, any launcher in ``hydra``).

    Each game is a run folder ``<out>/runs/<cell slug>/<job>`` (Hydra's output in
    ``<out>/hydra/<cell slug>``); per-game spend and success are read back from each run's
    summary.json, in seed order, so the numbers are those of the in-process path.
    """
    import sys

    from environments import registry
    from sim.config import CONF_DIR, as_hydra, compose, to_dict
    from sim.sweep import check_sweep, hydra_main

    seeds = [int(s) for s in seeds]
    runs = Path(out) / "runs" / cell_slug(c)
    ov = [*base, *cell_overrides(c, tiers, drop, n), f"seed={','.join(map(str, seeds))}", f"run.dir={runs}",
          "run.checkpoint=false", "run.progress=off", "run.overwrite=true",
          f"hydra.sweep.dir={Path(out) / 'hydra' / cell_slug(c)}", *hydra]
    check_sweep(ov)  # every point, one line on a bad one, before Hydra writes anything
    argv, sys.argv = sys.argv, ["agora", "--multirun", f"hydra.searchpath=[file://{CONF_DIR}]", *as_hydra(ov)]
    try:
        hydra_main()
    finally:
        sys.argv = argv
    cls = registry.env_class(to_dict(compose([*base, "run.dir=null"]))["env"]["name"])
    by_seed = {}
    for summ in sorted(runs.glob("*/summary.json")):
        s = json.loads(summ.read_text())
        by_seed[int(s["seed"])] = (s, str(summ.parent.relative_to(out)))
    missing = [s for s in seeds if s not in by_seed]
    if missing:
        raise RuntimeError(f"frontier cell {c.name}: no summary.json for seeds {missing[:5]} under {runs}")
    spend, success, is_llm, paths = [], [], [], []
    for seed in seeds:
        summ, rel = by_seed[seed]
        v = cls.success_value(summ.get("outcome") or {}) if summ.get("status") != "failed" else None
        spend.append(float(summ["llm"]["usd"]))
        success.append(float("nan") if v is None else float(v))
        is_llm.append(bool(summ["llm"].get("is_llm")))
        paths.append(rel)
    return {"spend": spend, "success": success, "is_llm": is_llm, "runs": paths}


def run_frontier(base: list[str], tiers: list[str], policies: list[str], budgets: list[float | None],
                 seeds: Sequence[int], drop: Sequence[str] = (), n: int = 5, method: str = "fieller",
                 progress=None, sweep: Sequence[str] | None = None, out: Path | None = None,
                 baseline: Sequence[str] | None = None):
    """The frontier table (polars): one row per cell, ``on_hull`` marking the Pareto hull.

    ``sweep=None``: every game in this process, nothing written. ``sweep=[hydra overrides]`` (e.g.
    ``["hydra/launcher=joblib"]``, or ``[]`` for Hydra's basic launcher): each cell is a Hydra
    multirun writing one run folder per game under ``out``.
    """
    if sweep is not None and out is None:
        raise ValueError("a frontier run as a Hydra sweep needs an output folder (--out)")
    rows, games = [], {}
    base_success = run_games([*base, *baseline], seeds)["success"] if baseline is not None else None
    for c in cells(tiers, policies, budgets, drop):
        g = (run_cell(base, c, tiers, seeds, drop, n) if sweep is None
             else run_cell_sweep(base, c, tiers, seeds, Path(out), sweep, drop, n))
        games[c.name] = g
        rows.append(summarise(c, g["spend"], g["success"], method))
        rows[-1].update(cell_label(base, c, tiers, drop, n, g.get("is_llm", ())))
        if base_success is not None:
            g["baseline_success"] = base_success
            rows[-1].update(gain_columns(g["spend"], g["success"], base_success, method))
        if progress:
            progress(c, rows[-1])
    return table(rows, games), games


def table(rows: list[dict], games: dict[str, dict]):
    """The frontier frame: the cells' rows, their marginal value over the next-smaller budget, the hull."""
    import polars as pl

    steps = budget_steps(rows, games)
    rows = [{**r, **m} for r, m in zip(rows, steps)]
    schema = {"mv": pl.Float64, "mv_lo": pl.Float64, "mv_hi": pl.Float64, "mv_from": pl.Utf8, "mv_note": pl.Utf8,
              "tier_kind": pl.Utf8, "is_llm": pl.Boolean, "note": pl.Utf8}
    present = set().union(*rows) if rows else set()
    df = pl.DataFrame(rows, infer_schema_length=None,
                      schema_overrides={k: v for k, v in schema.items() if k in present})
    if len(df):
        df = df.with_columns(pl.Series("on_hull", pareto(df["spend_mean"].to_list(), df["outcome_mean"].to_list())))
    return df


def write(df, out: Path, title: str = "Inference production frontier", games: dict | None = None) -> list[Path]:
    """frontier.parquet, frontier.html and frontier.png (when vl-convert is there) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "frontier.parquet"]
    df.write_parquet(paths[0])
    if games is not None:
        (out / "frontier_games.json").write_text(json.dumps(games, sort_keys=True))
        paths.append(out / "frontier_games.json")
        runs = {rel: cell for cell, g in games.items() for rel in g.get("runs", ())}
        if runs:  # each run folder of a swept frontier knows its cell (the spend page reads this)
            (out / RUNS_INDEX).write_text(json.dumps(runs, indent=1, sort_keys=True))
            paths.append(out / RUNS_INDEX)
    chart = frontier_chart(df, title)
    chart.save(str(out / "frontier.html"))
    paths.append(out / "frontier.html")
    try:
        chart.save(str(out / "frontier.png"))
        paths.append(out / "frontier.png")
    except Exception:  # noqa: BLE001 - PNG export needs vl-convert-python; HTML always works
        pass
    return paths


RUNS_INDEX = "frontier_runs.json"


def cell_of_run(run_path: Path, root: Path | None = None, up: int = 4) -> tuple[Path, str] | None:
    """(frontier folder, cell id) of a run folder written by a swept ``agora frontier``; None otherwise.

    Looks for ``frontier_runs.json`` (written next to frontier.parquet, in the frontier's
    ``--out``) in the run's parent folders, ``up`` levels at most and never above ``root``.
    """
    run_path = Path(run_path).resolve()
    top = Path(root).resolve() if root is not None else None
    for parent in list(run_path.parents)[:up]:
        if top is not None and parent != top and top not in parent.parents:
            break  # outside the runs root: not read
        index = parent / RUNS_INDEX
        if index.is_file():
            try:
                runs = json.loads(index.read_text())
            except (OSError, ValueError):
                return None
            rel = str(run_path.relative_to(parent))
            return (parent, runs[rel]) if isinstance(runs, dict) and isinstance(runs.get(rel), str) else None
    return None


def frontier_label(df) -> str | None:
    """One line saying which cells' tiers are simulated (not an LLM); None when every cell is a model's.

    Read from the ``tier_kind`` column of a frontier table (polars; ``tier_label``); a frame without it (written before the
    column existed) gets None: nothing is claimed either way.
    """
    if "tier_kind" not in list(df.columns):
        return None
    rows = df.to_dicts()
    kinds = {r["tier_kind"] for r in rows}
    sim = list(dict.fromkeys(r["tier"] for r in rows if r["tier_kind"] == "simulated"))
    parts = []
    if sim or "mixed" in kinds:
        parts.append("simulated tiers: not an LLM" + (f" (oracle tiers {', '.join(sim)}: known accuracy and cost)"
                                                      if sim else ""))
    if "mixed" in kinds:
        parts.append("cells of kind 'mixed' also call a model that is not simulated (see their note)")
    if "scripted" in kinds:
        parts.append("scripted cells: not an LLM")
    return "; ".join(parts) or None


def frontier_chart(df, title: str = "Inference production frontier"):
    """Outcome vs spend per cell with 95% interval bars, the Pareto hull as a line inside its 95% outcome band.

    The subtitle says when tiers are simulated (``frontier_label``): oracle tiers, not an LLM.
    """
    import altair as alt

    label = frontier_label(df)
    data = df.to_pandas() if hasattr(df, "to_pandas") else df
    base = alt.Chart(data).encode(x=alt.X("spend_mean:Q", title="spend per game (USD)"),
                                  y=alt.Y("outcome_mean:Q", title="outcome (success per game)"))
    tip = ["cell", "spend_mean", "outcome_mean", "cop", "cop_lo", "cop_hi", "games",
           *(["tier_kind"] if "tier_kind" in data.columns else [])]
    pts = base.mark_point(filled=True, size=70).encode(color="policy:N", shape="tier:N", tooltip=tip)
    ybars = base.mark_rule().encode(y="outcome_lo:Q", y2="outcome_hi:Q", color="policy:N")
    xbars = base.mark_rule().encode(x="spend_lo:Q", x2="spend_hi:Q", color="policy:N")
    on_hull = alt.Chart(data[data["on_hull"]].sort_values("spend_mean"))
    hull = on_hull.mark_line(color="black", strokeDash=[4, 3]).encode(x="spend_mean:Q", y="outcome_mean:Q")
    # the hull's 95% outcome band: where the efficient frontier could lie, cell by cell
    band = on_hull.mark_area(color="gray", opacity=0.2).encode(x="spend_mean:Q", y="outcome_lo:Q", y2="outcome_hi:Q")
    head = alt.TitleParams(title, subtitle=[label]) if label else title
    return (band + ybars + xbars + pts + hull).properties(title=head, width=560, height=360)
