"""`agora frontier`: run a cost-of-pass grid and write frontier.parquet, frontier.html and frontier.png."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HELP = """usage: agora frontier [--out DIR] [--drop TIER ...] [--interval fieller|bootstrap] [--sweep]
                      [--shapley agents|phases [--players A,B,...] [--shapley-seeds K]] [overrides]

Runs every cell of a grid on the same seeds (common random numbers) and writes, in --out
(default runs/frontier): frontier.parquet (one row per cell: spend, outcome and cost-of-pass
with 95% intervals, on the Pareto hull or not), frontier.html and frontier.png.

Grid keys (the rest are `agora run` overrides, e.g. env=traitors llm=oracle):
  frontier.tiers=[small,medium,large]      oracle tiers (or models), cheapest first
  frontier.policies=[single,cascade,best_of_n]
  frontier.budgets=[null,0.05]             budget.run_usd per cell (null: unlimited)
  frontier.seeds=200                       games per cell (seeds 0..N-1)
  frontier.n=5                             best_of_n samples
  frontier.baseline=[llm=scripted]         also the cost-of-pass of the success gained over this
                                           baseline on the same seeds (gain_*, cop_gain*: e.g. USD
                                           per unit of welfare gained over scripted play)
--drop TIER: the counterfactual frontier without that tier.
--sweep, or any Hydra override (hydra/launcher=joblib hydra.launcher.n_jobs=4): each cell runs as
  a Hydra multirun over its seeds through that launcher, one run folder per game under
  DIR/runs/<cell> (DIR/frontier_runs.json maps each to its cell; the spend page shows it).
  Without: every game in this process, no run folders.
The table's mv column is the marginal value of compute: outcome per extra USD over the
next-smaller budget of the same policy and tier, with a 95% interval (mv_lo, mv_hi); mv_note
says why it is empty or unbounded ("no change in any game": the extra spend changed no
game's outcome, so there is no interval, not a zero-width [0, 0]).
tier_kind, is_llm and note label each cell: "simulated tier: not an LLM" for oracle tiers.
--shapley agents|phases: for every cell whose policy deliberates, split its extra spend and
  extra success (over one call to the cell's tier: the single:<tier> cell; a cascade's may be
  negative, cheaper than its top tier alone) among the agents or phases by their Shapley
  values, on the first K seeds (--shapley-seeds, default 10) and written to DIR/shapley.parquet.
  Players: --players, else every agent (phase) that made a non-scripted call. Exact (2^n
  coalitions x K games per cell) up to 10 players, sampled above: for small populations.
Oracle tiers are simulated (known accuracy and cost), not an LLM.
"""

DEFAULTS = {"tiers": ["small", "medium", "large"], "policies": ["single", "cascade", "best_of_n"],
            "budgets": [None], "seeds": 50, "n": 5, "baseline": None}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one `error:` line from main, not argparse's usage block
        raise ValueError(f"{message}; see agora frontier --help")


def parse(argv: list[str]) -> tuple[argparse.Namespace, dict, list[str]]:
    ap = _Parser(prog="agora frontier", add_help=False)
    ap.add_argument("--out", default="runs/frontier")
    ap.add_argument("--drop", action="append", default=[])
    ap.add_argument("--interval", choices=["fieller", "bootstrap"], default="fieller")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--shapley", choices=["agents", "phases"], default=None)
    ap.add_argument("--players", default=None)
    ap.add_argument("--shapley-seeds", type=int, default=None)
    a, rest = ap.parse_known_args(argv)
    if (a.players is not None or a.shapley_seeds is not None) and a.shapley is None:
        raise ValueError("--players and --shapley-seeds go with --shapley agents|phases")
    if a.shapley_seeds is not None and a.shapley_seeds < 1:
        raise ValueError(f"--shapley-seeds {a.shapley_seeds}: a whole number >= 1")
    a.shapley_seeds = a.shapley_seeds or 10
    a.players = [p for p in a.players.split(",") if p] if a.players is not None else None
    grid, overrides, a.hydra = dict(DEFAULTS), [], []
    for o in rest:
        key, eq, value = o.partition("=")
        if key.startswith("frontier."):
            name = key.split(".", 1)[1]
            if name not in DEFAULTS or not eq:
                raise ValueError(f"unknown key '{key}'; frontier keys: {', '.join('frontier.' + k for k in DEFAULTS)}")
            grid[name] = yaml.safe_load(value)
        elif key.lstrip("+~").startswith(("hydra/", "hydra.")):
            a.hydra.append(o)  # a launcher or its settings: the grid runs as Hydra sweeps
        elif o.startswith("-"):
            raise ValueError(f"unknown option {o!r}; see agora frontier --help")
        else:
            overrides.append(o)
    _check(grid)
    return a, grid, overrides


def _check(g: dict) -> None:
    from sim.deliberation import POLICIES

    for key in ("tiers", "policies", "budgets"):
        if not isinstance(g[key], list) or not g[key]:
            raise ValueError(f"frontier.{key}={g[key]!r}: a non-empty list, e.g. frontier.{key}={DEFAULTS[key]}")
    bad = [p for p in g["policies"] if p not in POLICIES or p == "latent_budget"]
    if bad:
        raise ValueError(f"frontier.policies: {bad[0]!r} is not a frontier policy; allowed: "
                         f"{', '.join(p for p in POLICIES if p != 'latent_budget')}")
    if any(b is not None and (not isinstance(b, (int, float)) or b < 0) for b in g["budgets"]):
        raise ValueError(f"frontier.budgets={g['budgets']!r}: USD amounts >= 0 or null")
    b = g["baseline"]
    if b is not None and (not isinstance(b, list) or not all(isinstance(x, str) and "=" in x for x in b)):
        raise ValueError(f"frontier.baseline={b!r}: a list of run overrides, e.g. frontier.baseline=[llm=scripted]")
    for key in ("seeds", "n"):
        if not isinstance(g[key], int) or isinstance(g[key], bool) or g[key] < 1:
            raise ValueError(f"frontier.{key}={g[key]!r}: a whole number >= 1")


def main(argv: list[str]) -> int:
    if any(x in ("-h", "--help") for x in argv):
        print(HELP)
        return 0
    from sim.frontier import frontier_label, run_frontier, write

    try:
        a, g, overrides = parse(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    unknown = [t for t in a.drop if t not in g["tiers"]]
    if unknown:
        print(f"error: --drop {unknown[0]}: not in frontier.tiers={g['tiers']}", file=sys.stderr)
        return 2
    sweep = a.hydra if (a.sweep or a.hydra) else None
    df, games = run_frontier(overrides, g["tiers"], g["policies"], g["budgets"], range(g["seeds"]), a.drop,
                             g["n"], a.interval, sweep=sweep, out=Path(a.out), baseline=g["baseline"])
    paths = write(df, Path(a.out), games=games)
    if a.shapley:
        paths.append(_shapley(a, g, overrides))
    gain = ["gain_mean", "cop_gain", "cop_gain_lo", "cop_gain_hi"] if g["baseline"] is not None else []
    import polars as pl

    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=400, fmt_str_lengths=60):
        print(df.select("cell", "tier_kind", "games", "spend_mean", "outcome_mean", "outcome_lo", "outcome_hi", "cop",
                        "cop_lo", "cop_hi", "mv", "mv_lo", "mv_hi", "mv_note", *gain, "on_hull"))
    label = frontier_label(df)
    if label:  # oracle tiers are simulated: said under the table, as in the parquet, the HTML and the PNG
        print(label)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _shapley(a, g: dict, overrides: list[str]) -> Path:
    """shapley.parquet: each deliberating cell's spend and success split among agents or phases."""
    import polars as pl

    from sim.frontier import cell_overrides, cells
    from sim.shapley import attribute, players_of

    seeds = range(min(a.shapley_seeds, g["seeds"]))
    frames = []
    for c in cells(g["tiers"], g["policies"], g["budgets"], a.drop):
        if c.policy == "single":
            continue  # nothing to attribute: the single call is the baseline itself
        ov = [*overrides, *cell_overrides(c, g["tiers"], a.drop, g["n"])]
        players = a.players if a.players is not None else players_of(ov, a.shapley, seeds)
        if players:
            frames.append(attribute(ov, players, a.shapley, seeds).select(pl.lit(c.name).alias("cell"), pl.all()))
    out = Path(a.out) / "shapley.parquet"
    df = pl.concat(frames, how="vertical") if frames else pl.DataFrame(
        schema={"cell": pl.Utf8, "player": pl.Utf8, "by": pl.Utf8, "phi_spend": pl.Float64,
                "phi_outcome": pl.Float64, "se_spend": pl.Float64, "se_outcome": pl.Float64, "method": pl.Utf8,
                "games_per_coalition": pl.Int64})
    df.write_parquet(out)
    with pl.Config(tbl_rows=-1):
        print(df.select("cell", "player", "phi_spend", "phi_outcome", "se_spend", "method"))
    return out
