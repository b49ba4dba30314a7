"""`agora report PATH`: one run's summary and spend, or a sweep folder's aggregate."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from environments import registry
from sim.rundir import RunDir
from sim.stats import mean_ci


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


def report(path: Path, as_json: bool = False) -> int:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such run or sweep folder")
    runs = find_runs(path)
    if not runs:
        raise FileNotFoundError(f"{path}: no summary.json found (not a run directory or sweep folder)")
    con = Console()
    if len(runs) == 1 and runs[0] == path:
        return _one(path, con, as_json)
    return _many(runs, con, as_json)


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
    t = Table(title=f"Run {path}")
    t.add_column("field")
    t.add_column("value")
    llm = s.get("llm") or {}
    for k in ("env", "seed", "status", "ticks", "wall_s", "budget_usd"):
        t.add_row(k, str(s.get(k)))
    label = "" if llm.get("is_llm") else "  (scripted: not an LLM)"
    t.add_row("llm", f"{llm.get('provider')}/{llm.get('model')}{label}")
    for k in ("calls", "attempts", "tokens_in", "tokens_cached", "tokens_out", "denied", "failed", "fallbacks"):
        t.add_row(f"llm.{k}", str(llm.get(k)))
    t.add_row("llm.usd", f"{llm.get('usd') or 0:.9f}")
    for k, v in (s.get("outcome") or {}).items():
        if not isinstance(v, (dict, list)):
            t.add_row(f"outcome.{k}", f"{v:.4f}" if isinstance(v, float) else str(v))
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


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.5f}" if abs(v) < 1 else f"{v:.3f}"
    return "" if v is None else str(v)


def _many(runs: list[Path], con: Console, as_json: bool) -> int:
    rows = []
    outcome_of: dict[str, dict] = {}
    for p in runs:
        s, problem = load_summary(p)
        if problem:  # one bad run is skipped with a warning; the others are still reported
            _warn(f"{problem}; skipped")
            continue
        flat = {"dir": str(p), "env": s.get("env"), "seed": s.get("seed"), "status": s.get("status"),
                "model": (s.get("llm") or {}).get("model"), "usd": (s.get("llm") or {}).get("usd", 0.0),
                "calls": (s.get("llm") or {}).get("calls", 0), "ticks": s.get("ticks")}
        for k, v in (s.get("outcome") or {}).items():
            if isinstance(v, (int, float, str)) or v is None:
                flat[f"o.{k}"] = v
        rows.append(flat)
        outcome_of[str(p)] = s.get("outcome") if isinstance(s.get("outcome"), dict) else {}
    if not rows:
        raise ReportError(f"none of the {len(runs)} run summaries could be read")
    df = _frame(rows)
    out: dict = {"runs": df.height}
    t = Table(title=f"Sweep: {df.height} runs")
    t.add_column("group")
    t.add_column("metric")
    t.add_column("mean", justify="right")
    t.add_column("95% interval", justify="right")
    t.add_column("n", justify="right")
    for (env, model), g in df.group_by(["env", "model"], maintain_order=True):
        done = g.filter(pl.col("status") == "completed")
        outcomes = [outcome_of[d] for d in done["dir"].to_list()]
        rows_env = _env_sweep_rows(env, outcomes)
        for i, r in enumerate(rows_env):
            ci = r.get("interval")
            t.add_row(f"{env}/{model}" if i == 0 else "", r["metric"], _fmt(r.get("value")),
                      f"[{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "", str(r.get("n", "")))
        if rows_env:  # flat: key -> value, with the first interval as "ci" and its n
            agg: dict[str, Any] = {}
            for r in rows_env:
                agg[r["key"]] = r.get("value")
                if r.get("interval") and "ci" not in agg:
                    agg["ci"], agg["n"] = list(r["interval"]), r.get("n")
            out[f"{env}/{model}"] = agg
        for c in [c for c in g.columns if c.startswith("o.") or c in ("usd", "calls", "ticks")]:
            vals = [float(v) for v in done[c].to_list() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(vals) >= 2:
                m, lo, hi = mean_ci(vals)
                t.add_row(f"{env}/{model}", c, f"{m:.4f}", f"[{lo:.4f}, {hi:.4f}]", str(len(vals)))
                out.setdefault(f"{env}/{model}:metrics", {})[c] = {"mean": m, "ci": [lo, hi], "n": len(vals)}
    if as_json:
        print(json.dumps(out, indent=2, default=str))
    else:
        con.print(t)
    return 0
