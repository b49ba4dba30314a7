"""`agora report PATH`: one run's summary and spend, or a sweep folder's aggregate."""
from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from rich.console import Console
from rich.table import Table

from sim.rundir import RunDir
from sim.stats import games_needed, mean_ci, wilson_interval


def find_runs(root: Path) -> list[Path]:
    if (root / "summary.json").exists():
        return [root]
    return sorted(p.parent for p in root.rglob("summary.json"))


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
    rd = RunDir(path)
    s = rd.summary()
    led = rd.read_table("ledger")
    by_phase = pl.DataFrame()
    if led is not None and led.height:
        by_phase = (led.group_by("phase", "purpose").agg(
            pl.len().alias("rows"), (pl.col("outcome") == "ok").sum().alias("ok"),
            pl.col("tokens_in").sum(), pl.col("tokens_out").sum(),
            (pl.col("cost_nano").sum() / 1e9).alias("usd"),
            pl.col("outcome").is_in(["denied", "fallback"]).sum().alias("denied_or_fallback"))
            .sort("phase", "purpose"))
    if as_json:
        print(json.dumps({"summary": s, "by_phase": by_phase.to_dicts()}, indent=2, default=str))
        return 0
    t = Table(title=f"Run {path}")
    t.add_column("field")
    t.add_column("value")
    llm = s["llm"]
    for k in ("env", "seed", "status", "ticks", "wall_s", "budget_usd"):
        t.add_row(k, str(s.get(k)))
    label = "" if llm.get("is_llm") else "  (scripted: not an LLM)"
    t.add_row("llm", f"{llm.get('provider')}/{llm.get('model')}{label}")
    for k in ("calls", "attempts", "tokens_in", "tokens_cached", "tokens_out", "denied", "failed", "fallbacks"):
        t.add_row(f"llm.{k}", str(llm.get(k)))
    t.add_row("llm.usd", f"{llm.get('usd', 0):.9f}")
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
    try:
        if s["env"] == "market":
            from environments.market.env import report_lines

            return report_lines(s)
    except Exception:  # noqa: BLE001
        return []
    return []


def _many(runs: list[Path], con: Console, as_json: bool) -> int:
    rows = []
    for p in runs:
        try:
            s = json.loads((p / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        flat = {"dir": str(p), "env": s.get("env"), "seed": s.get("seed"), "status": s.get("status"),
                "model": (s.get("llm") or {}).get("model"), "usd": (s.get("llm") or {}).get("usd", 0.0),
                "calls": (s.get("llm") or {}).get("calls", 0), "ticks": s.get("ticks")}
        for k, v in (s.get("outcome") or {}).items():
            if isinstance(v, (int, float, str)) or v is None:
                flat[f"o.{k}"] = v
        rows.append(flat)
    df = pl.DataFrame(rows, infer_schema_length=None)
    out: dict = {"runs": df.height}
    t = Table(title=f"Sweep: {df.height} runs")
    t.add_column("group")
    t.add_column("metric")
    t.add_column("mean", justify="right")
    t.add_column("95% interval", justify="right")
    t.add_column("n", justify="right")
    for (env, model), g in df.group_by(["env", "model"], maintain_order=True):
        done = g.filter(pl.col("status") == "completed")
        if env == "traitors" and "o.winner" in g.columns:
            wins = int((done["o.winner"] == "faithful").sum())
            n = done.height
            lo, hi = wilson_interval(wins, n)
            p0 = float(done["o.p_faithful_win_random"][0]) if n and "o.p_faithful_win_random" in done.columns else None
            rate = wins / n if n else float("nan")
            t.add_row(f"{env}/{model}", "faithful win rate (Wilson)", f"{rate:.3f}", f"[{lo:.3f}, {hi:.3f}]", str(n))
            if p0 is not None:
                t.add_row("", "random baseline (exact)", f"{p0:.5f}", "", "")
                t.add_row("", "lift over random", f"{rate - p0:+.3f}", "", "")
                if rate != p0 and 0 < rate < 1:
                    t.add_row("", "games needed to tell apart (80% power)", str(games_needed(rate, p0)), "", "")
            out[f"{env}/{model}"] = {"win_rate": rate, "ci": [lo, hi], "n": n, "p_random": p0}
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
