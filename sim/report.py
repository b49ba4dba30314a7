"""`agora report PATH`: one run's summary and spend, or a sweep folder's aggregate.

A folder's report compares like with like (docs/reports.md): runs are grouped by every config key that
varies across the folder, by status, by human seats and by degradation; only completed groups are
aggregated; each interval respects its metric's range; every metric name printed has a one-line meaning.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from rich.console import Console
from rich.table import Table

from environments import registry
from sim.rundir import RunDir
from sim.stats import bootstrap_mean_ci, mean_ci, wilson_interval


class ReportError(ValueError):
    """A run folder that cannot be reported; one line naming the file."""


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


def _frame(rows: list[dict]) -> pl.DataFrame:
    """Rows as a frame; a column whose type differs between runs is kept as text rather than failing."""
    cols = list(dict.fromkeys(k for r in rows for k in r))
    data = {}
    for c in cols:
        vals = [r.get(c) for r in rows]
        kinds = {type(v) for v in vals if v is not None}
        if kinds <= {int} or kinds <= {bool} or kinds <= {str}:
            data[c] = vals
        elif kinds <= {int, float}:
            data[c] = [None if v is None else float(v) for v in vals]
        else:
            data[c] = [None if v is None else str(v) for v in vals]
    return pl.DataFrame(data)


def find_runs(root: Path) -> list[Path]:
    if (root / "summary.json").exists():
        return [root]
    return sorted(p.parent for p in root.rglob("summary.json"))


NUM = (int, float)
# the fields a report reads, and their types (None is allowed everywhere: a partial run)
TOP_FIELDS = {"env": str, "status": str, "seed": int, "ticks": int, "wall_s": NUM, "budget_usd": NUM,
              "llm": dict, "outcome": dict}
LLM_FIELDS = {"provider": str, "model": str, "is_llm": bool, "usd": NUM, "calls": int, "attempts": int,
              "tokens_in": int, "tokens_cached": int, "tokens_out": int, "denied": int, "failed": int,
              "fallbacks": int}


def load_summary(run: Path) -> tuple[dict | None, str | None]:
    """(summary, None) or (None, what is wrong with ``run/summary.json``) -- never raises on a bad file."""
    f = run / "summary.json"
    try:
        s = json.loads(f.read_bytes())
    except OSError as e:
        return None, f"{f}: cannot read: {e.strerror or e}"
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, absurd nesting
        return None, f"{f}: not valid JSON ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})"
    if not isinstance(s, dict):
        return None, f"{f}: expected a JSON object, found {type(s).__name__}"
    bad = _bad_field(s, TOP_FIELDS, "") or (_bad_field(s["llm"], LLM_FIELDS, "llm.") if s.get("llm") else None)
    if bad:
        return None, f"{f}: {bad}"
    return s, None


def _bad_field(d: dict, fields: dict, prefix: str) -> str | None:
    for k, want in fields.items():
        v = d.get(k)
        if v is None:
            continue
        ok = isinstance(v, want) and not (isinstance(v, bool) and want is not bool)
        if not ok:
            kind = {str: "text", int: "an integer", bool: "true/false", dict: "an object"}.get(want, "a number")
            return f"{prefix}{k}={_short(json.dumps(v, default=str))}: expected {kind}"
    return None


def _short(s: str, n: int = 60) -> str:
    return s if len(s) <= n else s[:n] + "…"


# ---------------------------------------------------------------- what each metric means, and its range

INF = math.inf
# run-level fields (summary.json, not the environment's outcome): meaning and range
GENERIC: dict[str, tuple[str, tuple[float, float]]] = {
    "env": ("environment (registry name)", (-INF, INF)),
    "seed": ("the run's seed", (-INF, INF)),
    "status": ("how the run ended: completed, aborted_budget, failed, degraded, abandoned...", (-INF, INF)),
    "ticks": ("ticks the run played (a tick is one round or trading step)", (0, INF)),
    "wall_s": ("wall-clock seconds of the run", (0, INF)),
    "budget_usd": ("the run's spend cap in USD (budget.run_usd; null: none)", (0, INF)),
    "llm": ("provider/model that answered the agents' decisions", (-INF, INF)),
    "usd": ("compute spend of the run in USD; shadow USD (priced, never billed) for local and scripted models",
            (0, INF)),
    "calls": ("model calls that returned a reply (valid or invalid); fallbacks and denials not counted", (0, INF)),
    "attempts": ("requests sent to the provider, retries and re-asks included", (0, INF)),
    "tokens_in": ("prompt tokens sent", (0, INF)),
    "tokens_cached": ("prompt tokens served from the provider's prompt cache", (0, INF)),
    "tokens_out": ("completion tokens received", (0, INF)),
    "denied": ("calls the budget refused (answered by the scripted fallback)", (0, INF)),
    "failed": ("attempts that failed: timeout, rate limit, server error or bad request", (0, INF)),
    "fallbacks": ("decisions answered by the scripted fallback after the model gave no usable reply", (0, INF)),
}
# declared outcome metrics whose range the unit does not tell
RANGES: dict[str, tuple[float, float]] = {"brier": (0.0, 1.0), "suspicion_gap": (-1.0, 1.0)}
# a declared unit with one of these words is a share of something: each run's value lies in [0, 1]
BOUNDED_UNITS = ("share", "rate", "probability", "0-1", "1 - gini")
# a unit that counts or prices things: never negative (a t interval is clipped at 0)
COUNT_UNITS = ("rounds", "trades", "players", "units", "cents", "coin", "usd", "tokens")
NO_MEANING = "(no meaning declared)"


def _env_cls(env: Any):
    try:
        return registry.env_class(str(env))
    except Exception:  # noqa: BLE001 - an unknown environment still gets the generic meanings
        return None


def _spec(env: Any, key: str):
    """The environment's MetricSpec for an outcome key (an outcome spec first, else a tick spec of that name)."""
    cls = _env_cls(env)
    specs = [m for m in (cls.metrics if cls else ()) if m.key == key]
    return next((m for m in specs if m.source == "outcome"), specs[0] if specs else None)


def meaning(env: Any, name: str) -> str | None:
    """One line saying what a report's metric name means: the environment's MetricSpec (title, unit, doc) or
    glossary for outcome keys (``o.KEY``, dotted for nested outcomes), else the generic dictionary."""
    key = name[2:] if name.startswith("o.") else name
    if name.startswith("o."):  # a declared outcome metric, the glossary, then a tick metric of that name
        spec = _spec(env, key)
        doc = (_env_cls(env).glossary if _env_cls(env) else {}).get(key)
        if doc and (spec is None or spec.source != "outcome"):
            return doc
        if spec is not None:
            unit = f" [{spec.unit}]" if spec.unit else ""
            return f"{spec.title}{unit}" + (f": {spec.doc}" if spec.doc else "")
    if key in GENERIC:
        return GENERIC[key][0]
    return None


def value_range(env: Any, name: str, values: list[float]) -> tuple[float, float]:
    """The range a metric's per-run values live in: intervals are kept inside it."""
    key = name[2:] if name.startswith("o.") else name
    if name.startswith("o."):
        if key in RANGES:
            return RANGES[key]
        spec = _spec(env, key)
        unit = f"{spec.unit} {spec.title}".lower() if spec else ""
        if any(w in unit for w in BOUNDED_UNITS) and all(0.0 <= v <= 1.0 for v in values):
            return 0.0, 1.0
        if spec and "/" not in spec.unit and any(w in spec.unit.lower() for w in COUNT_UNITS) \
                and all(v >= 0 for v in values):
            return 0.0, INF
        return -INF, INF
    return GENERIC.get(key, ("", (-INF, INF)))[1]


def interval(env: Any, name: str, values: list) -> dict | None:
    """Mean (or proportion) with a 95% interval that respects the metric's range; None with too few values.

    booleans: Wilson interval of the share that is true; a metric bounded on both sides (shares, rates,
    probabilities): seeded percentile bootstrap, inside the bounds; otherwise Student t, clipped to a
    one-sided range (spend and counts are never negative)."""
    if values and all(isinstance(v, bool) for v in values):
        k, n = sum(values), len(values)
        lo, hi = wilson_interval(k, n)
        return {"mean": k / n, "ci": [lo, hi], "n": n, "method": "Wilson"}
    xs = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if len(xs) < 2:
        return None
    lo_b, hi_b = value_range(env, name, xs)
    if math.isfinite(lo_b) and math.isfinite(hi_b):
        m, lo, hi = bootstrap_mean_ci(xs, (lo_b, hi_b))
        return {"mean": m, "ci": [lo, hi], "n": len(xs), "method": "bootstrap"}
    m, lo, hi = mean_ci(xs)
    return {"mean": m, "ci": [float(max(lo, lo_b)), float(min(hi, hi_b))], "n": len(xs), "method": "t"}


# ---------------------------------------------------------------- runs and their groups

IGNORED_KEYS = {"seed", "run.dir", "run.root", "run.progress", "run.overwrite"}  # per run by nature
IN_LABEL = {"env.name", "llm.model"}  # already in every group's label
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_KEYS = 5000


@dataclass
class Run:
    path: Path
    summary: dict
    config: dict | None  # flat dotted keys; None: no readable config.yaml
    env: str
    model: str
    status: str
    human: bool
    degraded: bool


@dataclass
class Group:
    env: str
    model: str
    status: str
    human: bool
    degraded: bool
    keys: dict[str, Any]
    runs: list[Run] = field(default_factory=list)

    @property
    def label(self) -> str:
        parts = [f"{self.env}/{self.model}", *(f"{k}={_show(v)}" for k, v in self.keys.items())]
        if self.human:
            parts.append("human-seat")
        if self.degraded and self.status != "degraded":
            parts.append("degraded")
        if self.status != "completed":
            parts.append(f"[{self.status}]")
        return " ".join(parts)


def _show(v: Any) -> str:
    if v is _MISSING:
        return "?"
    return v if isinstance(v, str) else json.dumps(v, default=str)


_MISSING = object()


def flatten(d: dict, prefix: str = "", out: dict | None = None) -> dict:
    """Nested dicts as dotted keys (``{"env": {"n": 6}}`` -> ``{"env.n": 6}``); empty dicts and lists are leaves."""
    out = {} if out is None else out
    for k, v in d.items():
        if len(out) > MAX_CONFIG_KEYS:
            raise ValueError(f"more than {MAX_CONFIG_KEYS} keys")
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            flatten(v, key + ".", out)
        else:
            out[key] = v
    return out


def load_config(run: Path) -> tuple[dict | None, str | None]:
    """(flat config, None), (None, None) without a config.yaml, or (None, what is wrong with it)."""
    f = run / "config.yaml"
    try:
        if not f.exists():
            return None, None
        if f.stat().st_size > MAX_CONFIG_BYTES:
            return None, f"{f}: larger than {MAX_CONFIG_BYTES} bytes"
        cfg = yaml.safe_load(f.read_text())
        if not isinstance(cfg, dict):
            return None, f"{f}: expected a mapping, found {type(cfg).__name__}"
        return flatten(cfg), None
    except (OSError, ValueError, yaml.YAMLError, RecursionError) as e:
        return None, f"{f}: unreadable ({_short(str(e).splitlines()[0] if str(e) else type(e).__name__, 120)})"


def _human_seats(run: Path, s: dict) -> bool:
    """Did a person hold a seat: the summary's policy counts, else the run_start event of older runs."""
    pol = (s.get("llm") or {}).get("policies")
    if isinstance(pol, dict) and isinstance(pol.get("human"), int):
        return pol["human"] > 0
    try:
        ev = (pl.scan_parquet(run / "events.parquet").filter(pl.col("kind") == "run_start")
              .select("payload").head(1).collect())
        return bool(ev.height and json.loads(ev["payload"][0]).get("human_seats"))
    except Exception:  # noqa: BLE001 - no readable events: no evidence of a human seat
        return False


def _is_degraded(s: dict) -> bool:
    llm = s.get("llm") or {}
    return s.get("status") == "degraded" or s.get("degraded") is True or llm.get("degraded") is True


def load_runs(paths: list[Path]) -> list[Run]:
    runs = []
    for p in paths:
        s, problem = load_summary(p)
        if problem:  # one bad run is skipped with a warning; the others are still reported
            _warn(f"{problem}; skipped")
            continue
        cfg, cproblem = load_config(p)
        if cproblem:
            _warn(f"{cproblem}; the run is grouped without its config keys")
        llm = s.get("llm") or {}
        runs.append(Run(p, s, cfg, str(s.get("env")), str(llm.get("model")), str(s.get("status")),
                        _human_seats(p, s), _is_degraded(s)))
    return runs


def varying_keys(runs: list[Run]) -> list[str]:
    """Config keys whose value differs between runs (per-run keys such as seed and run.dir aside)."""
    cfgs = [r.config for r in runs if r.config is not None]
    keys = sorted({k for c in cfgs for k in c})
    out = []
    for k in keys:
        if k in IGNORED_KEYS or k in IN_LABEL or k == "hydra" or k.startswith("hydra."):
            continue
        seen = {json.dumps(c.get(k, "<absent>"), sort_keys=True, default=str) for c in cfgs}
        if len(seen) > 1:
            out.append(k)
    return out


def _order(v: Any) -> tuple:
    if v is _MISSING:
        return (2, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v), "")
    return (1, json.dumps(v, sort_keys=True, default=str))


STATUS_ORDER = {"completed": 0, "degraded": 1}


def group_runs(runs: list[Run]) -> tuple[list[Group], dict[str, list[str]]]:
    """Groups of comparable runs, and the varying config keys of each environment."""
    groups: dict[tuple, Group] = {}
    varying: dict[str, list[str]] = {}
    for env in dict.fromkeys(r.env for r in runs):
        these = [r for r in runs if r.env == env]
        keys = varying[env] = varying_keys(these)
        for r in these:
            vals = {k: (r.config.get(k) if r.config is not None else _MISSING) for k in keys}
            shown = tuple("\0?" if v is _MISSING else json.dumps(v, sort_keys=True, default=str) for v in vals.values())
            gk = (env, r.model, r.status, r.human, r.degraded, shown)
            groups.setdefault(gk, Group(env, r.model, r.status, r.human, r.degraded, vals)).runs.append(r)
    ordered = sorted(groups.values(), key=lambda g: (g.env, g.model, STATUS_ORDER.get(g.status, 2), g.status,
                                                     g.human, g.degraded, [_order(v) for v in g.keys.values()]))
    return ordered, varying


def why_not_aggregated(g: Group, include_degraded: bool) -> str | None:
    if g.degraded and not include_degraded:
        return "degraded (most decisions fell back to the scripted policy): left out of LLM aggregates; " \
               "--include-degraded reports it as its own group"
    if g.status == "completed" or (g.status == "degraded" and include_degraded):
        return None
    return f"status {g.status}: never averaged with completed runs"


def flat_outcome(o: dict) -> dict[str, Any]:
    """Numeric and boolean outcome values, nested dicts as dotted keys (``event_study.change_pct``)."""
    out = {}
    try:
        flat = flatten(o)
    except ValueError:
        return out
    for k, v in flat.items():
        if isinstance(v, (bool, int, float)) or v is None:
            out[k] = v
    return out


# ---------------------------------------------------------------- the report

def _console() -> Console:
    """Piped or redirected output is never cut to 80 columns (`agora report ... | less` keeps every digit).

    No markup: units such as "[share of votes]" and labels such as "[aborted_budget]" print as written."""
    if sys.stdout.isatty():
        return Console(markup=False, highlight=False)
    return Console(width=100_000, soft_wrap=True, markup=False, highlight=False)


def report(path: Path, as_json: bool = False, include_degraded: bool = False) -> int:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run or sweep folder")
    runs = find_runs(path)
    if not runs:
        raise FileNotFoundError(f"{path}: no summary.json found (not a run directory or sweep folder)")
    con = _console()
    if len(runs) == 1 and runs[0] == path:
        return _one(path, con, as_json)
    return _many(runs, con, as_json, include_degraded)


def _one(path: Path, con: Console, as_json: bool) -> int:
    s, problem = load_summary(path)
    if problem:
        raise ReportError(problem)
    by_phase = pl.DataFrame()
    try:
        led = RunDir(path).read_table("ledger")
        if led is not None and led.height:
            by_phase = (led.group_by("phase", "purpose").agg(
                pl.len().alias("rows"), (pl.col("outcome") == "ok").sum().alias("ok"),
                pl.col("tokens_in").sum(), pl.col("tokens_out").sum(),
                (pl.col("cost_nano").sum() / 1e9).alias("usd"),
                pl.col("outcome").is_in(["denied", "fallback"]).sum().alias("denied_or_fallback"))
                .sort("phase", "purpose"))
    except (OSError, pl.exceptions.PolarsError) as e:  # the summary still reports; the ledger table cannot
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        _warn(f"{path}: ledger unreadable, no spend per phase ({_short(why, 120)})")
    if as_json:
        print(json.dumps({"summary": s, "by_phase": by_phase.to_dicts()}, indent=2, default=str))
        return 0
    env = s.get("env")
    t = Table(title=f"Run {path}")
    t.add_column("field")
    t.add_column("value")
    t.add_column("meaning")
    llm = s.get("llm") or {}
    for k in ("env", "seed", "status", "ticks", "wall_s", "budget_usd"):
        t.add_row(k, str(s.get(k)), meaning(env, k) or NO_MEANING)
    what = "simulated tiers" if llm.get("provider") == "oracle" else "scripted"
    label = "" if llm.get("is_llm") else f"  ({what}: not an LLM)"
    t.add_row("llm", f"{llm.get('provider')}/{llm.get('model')}{label}", meaning(env, "llm") or NO_MEANING)
    for k in ("calls", "attempts", "tokens_in", "tokens_cached", "tokens_out", "denied", "failed", "fallbacks"):
        t.add_row(f"llm.{k}", str(llm.get(k)), meaning(env, k) or NO_MEANING)
    t.add_row("llm.usd", f"{llm.get('usd') or 0:.9f}", meaning(env, "usd") or NO_MEANING)
    outcome = s.get("outcome") or {}
    try:
        flat = flatten(outcome)
    except ValueError:
        flat = {}
    for k, v in flat.items():
        if not isinstance(v, (dict, list)):
            t.add_row(f"outcome.{k}", f"{v:.4f}" if isinstance(v, float) else str(v),
                      meaning(env, f"o.{k}") or NO_MEANING)
    con.print(t)
    extra = _env_lines(s)
    for line in extra:
        con.print(line)
    if by_phase.height:
        pt = Table(title="Spend per phase / purpose")
        for c in by_phase.columns:
            pt.add_column(c, justify="right")
        for r in by_phase.iter_rows():
            pt.add_row(*[f"{v:.9f}" if isinstance(v, float) else str(v) for v in r])
        con.print(pt)
    return 0


def _env_lines(s: dict) -> list[str]:
    """The environment's own lines for one run (``Environment.report_lines``)."""
    try:
        return registry.env_class(str(s["env"])).report_lines(s)
    except Exception:  # noqa: BLE001 - a report never fails on an environment's extra lines
        return []


def _env_sweep_rows(env: Any, outcomes: list[dict]) -> list[dict]:
    """The environment's own aggregate rows for a group of completed runs (``Environment.sweep_rows``)."""
    try:
        return registry.env_class(str(env)).sweep_rows(outcomes)
    except Exception:  # noqa: BLE001
        return []


def _fmt(v: Any, name: str = "") -> str:
    if isinstance(v, float):
        if name.endswith("usd"):  # spend keeps every nano-dollar digit
            return f"{v:.9f}"
        return f"{v:.5f}" if abs(v) < 1 else f"{v:.3f}"
    return "" if v is None else str(v)


def group_stats(g: Group) -> tuple[list[dict], dict[str, dict]]:
    """(the environment's rows, {metric: mean/interval}) of one aggregated group."""
    outcomes = [r.summary.get("outcome") if isinstance(r.summary.get("outcome"), dict) else {} for r in g.runs]
    env_rows = []
    for r in _env_sweep_rows(g.env, outcomes):
        env_rows.append({**r, "meaning": r.get("doc") or meaning(g.env, r["key"]) or NO_MEANING})
    cols: dict[str, list] = {}
    for r, o in zip(g.runs, outcomes):
        llm = r.summary.get("llm") or {}
        for k, v in (("usd", llm.get("usd")), ("calls", llm.get("calls")), ("ticks", r.summary.get("ticks"))):
            cols.setdefault(k, []).append(v)
        for k, v in flat_outcome(o).items():
            cols.setdefault(f"o.{k}", []).append(v)
    metrics = {}
    for name, vals in cols.items():
        vals = [v for v in vals if v is not None]
        if not vals or (any(isinstance(v, bool) for v in vals) and not all(isinstance(v, bool) for v in vals)):
            continue
        st = interval(g.env, name, vals)
        if st is not None:
            metrics[name] = {**st, "meaning": meaning(g.env, name) or NO_MEANING}
    return env_rows, metrics


def _many(paths: list[Path], con: Console, as_json: bool, include_degraded: bool = False) -> int:
    runs = load_runs(paths)
    if not runs:
        raise ReportError(f"none of the {len(paths)} run summaries could be read")
    groups, varying = group_runs(runs)
    out: dict[str, Any] = {"runs": len(runs), "varying": varying, "groups": []}
    glossary: dict[str, str] = {}
    t = Table(title=f"Sweep: {len(runs)} runs, {len(groups)} groups")
    for c, j in (("group", "left"), ("metric", "left"), ("mean", "right"), ("95% interval", "right"),
                 ("method", "left"), ("n", "right")):
        t.add_column(c, justify=j)
    left = Table(title="Not aggregated (listed, never pooled)")
    for c in ("group", "runs", "why"):
        left.add_column(c)
    for g in groups:
        why = why_not_aggregated(g, include_degraded)
        rec: dict[str, Any] = {"label": g.label, "env": g.env, "model": g.model, "status": g.status,
                               "human_seats": g.human, "degraded": g.degraded,
                               "keys": {k: (None if v is _MISSING else v) for k, v in g.keys.items()},
                               "n": len(g.runs), "dirs": [str(r.path) for r in g.runs], "aggregated": why is None}
        out["groups"].append(rec)
        if why is not None:
            rec["why"] = why
            left.add_row(g.label, str(len(g.runs)), why)
            continue
        env_rows, metrics = group_stats(g)
        rec["rows"] = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in r.items()} for r in env_rows]
        rec["metrics"] = metrics
        first = True
        for r in env_rows:
            ci = r.get("interval")
            t.add_row(g.label if first else "", r["metric"], _fmt(r.get("value"), r["key"]),
                      f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "", "Wilson" if ci else "", str(r.get("n", "")))
            glossary[r["metric"]] = r["meaning"]
            first = False
        for name, st in metrics.items():
            lo, hi = st["ci"]
            t.add_row(g.label if first else "", name, _fmt(st["mean"], name),
                      f"[{_fmt(lo, name)}, {_fmt(hi, name)}]", st["method"], str(st["n"]))
            glossary[name] = st["meaning"]
            first = False
        if env_rows:  # flat, as before: key -> value, with the first interval as "ci" and its n
            agg: dict[str, Any] = {}
            for r in env_rows:
                agg[r["key"]] = r.get("value")
                if r.get("interval") and "ci" not in agg:
                    agg["ci"], agg["n"] = list(r["interval"]), r.get("n")
            out[g.label] = agg
        if metrics:
            out[f"{g.label}:metrics"] = {k: {"mean": v["mean"], "ci": v["ci"], "n": v["n"]} for k, v in metrics.items()}
    out["glossary"] = glossary
    if as_json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    for env, keys in varying.items():
        con.print(f"{env}: grouped by {', '.join(keys) if keys else 'model, status and seats (no config key varies)'}")
    con.print(t)
    if left.row_count:
        con.print(left)
    con.print("Metrics (o.KEY: the run's outcome KEY; intervals: Wilson for shares of runs, bootstrap for "
              "bounded means, t otherwise):")
    for name, text in glossary.items():
        con.print(f"  {name}: {text}")
    return 0
