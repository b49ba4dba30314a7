"""Pure loading and shaping helpers for the dashboards (polars in, polars out).

Nothing here imports Streamlit, so every function is testable on tiny frames.
Loading never raises on a bad run directory: a half-written or corrupt run, a
summary with fields of the wrong type or a table with the wrong columns comes
back as a ``Notice`` the page shows instead of a traceback. Every file is
resolved before it is read (the run folder *and* each file in it, so a symlinked
summary.json cannot lead outside), and whatever leaves the runs root is refused.
A run directory is data from whoever made it (docs/security.md): only JSON,
Parquet and GraphML are parsed here, never pickles.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import networkx as nx
import polars as pl

TABLES = ("events", "ledger", "metrics")
FAILED_OUTCOMES = ("timeout", "rate_limited", "server_error", "bad_request")


class PathRefused(ValueError):
    """A path that resolves outside the runs root (``..``, absolute paths, symlinks)."""


@dataclass(frozen=True)
class Notice:
    """Why a run could not be shown; pages render ``message`` as a warning."""

    path: Path
    message: str


@dataclass
class Run:
    path: Path
    summary: dict[str, Any]
    events: pl.DataFrame
    ledger: pl.DataFrame
    metrics: pl.DataFrame
    round_metrics: pl.DataFrame | None = None
    partial: bool = False  # only per-tick parts on disk (running or killed)
    warnings: list[str] = field(default_factory=list)

    @property
    def env(self) -> str:
        return str(self.summary.get("env", "?"))

    @property
    def label(self) -> str:
        return f"{self.env} s{self.summary.get('seed', '?')} ({self.path.name})"


# ----- locating runs -------------------------------------------------------------------


def runs_root(default: str = "runs") -> Path:
    """The runs folder: ``AGORA_RUNS`` (set by ``agora dashboard --runs DIR``) or ./runs."""
    return Path(os.environ.get("AGORA_RUNS") or default).expanduser().resolve()


def confine(root: Path | str, path: Path | str) -> Path:
    """Resolve ``path`` (relative paths are taken under ``root``) and refuse it if it escapes ``root``."""
    root_r = Path(root).resolve()
    p = Path(path)
    try:
        p_r = (p if p.is_absolute() else root_r / p).resolve()
    except (OSError, ValueError, RuntimeError) as e:  # NUL byte, name too long, symlink loop
        raise PathRefused(f"{_shown(path)}: not a usable path ({type(e).__name__}); refused") from None
    if p_r != root_r and root_r not in p_r.parents:
        raise PathRefused(f"{_shown(path)}: outside the runs root {root_r}; refused")
    return p_r


def confine_file(root: Path | str, run: Path, name: Path | str) -> Path:
    """The resolved path of file ``name`` of ``run``, refused when it (or a symlink on the way) leaves ``root``
    or is not a regular file (a FIFO or device would block or never end).

    Callers read the returned path, so what was checked is what is read.
    """
    try:
        f = confine(root, run / name)
    except PathRefused:
        raise PathRefused(f"{run.name}: {name} links outside the runs root; refused") from None
    if not f.is_file():
        raise PathRefused(f"{run.name}: {name} is not a regular file; refused")
    return f


def _shown(path: Path | str, limit: int = 120) -> str:
    """A path as put in a notice: printable and short (a pasted path may hold a NUL or be megabytes long)."""
    text = ascii(str(path))[1:-1]
    return text if len(text) <= limit else text[:limit] + "..."


def list_runs(root: Path | str) -> list[Path]:
    """Every folder under ``root`` (recursively) holding a summary.json, sorted; symlinks out are skipped."""
    root_r = Path(root).resolve()
    if not root_r.is_dir():
        return []
    out = set()
    for f in root_r.rglob("summary.json"):
        try:
            out.add(confine(root_r, f.parent))
        except PathRefused:
            continue
    return sorted(out)


def relative(root: Path | str, path: Path) -> str:
    """Run path as shown in tables and stored in the selection (relative to the root)."""
    return str(Path(path).resolve().relative_to(Path(root).resolve()))


# ----- loading -------------------------------------------------------------------------


SUMMARY_TYPES: dict[str, tuple[type, ...]] = {
    "env": (str,), "status": (str,), "seed": (int,), "ticks": (int,), "wall_s": (int, float),
    "budget_usd": (int, float), "outcome": (dict,), "llm": (dict,)}
LLM_TYPES: dict[str, tuple[type, ...]] = {
    "provider": (str,), "model": (str,), "is_llm": (bool,), "calls": (int,), "tokens_in": (int,),
    "tokens_out": (int,), "usd": (int, float)}
_INT_LIMIT = 2 ** 62  # well inside Int64, so sums such as tokens_in + tokens_out still fit


def summary_problem(s: Any) -> str | None:
    """What is wrong with a parsed summary.json (None when the pages can use it).

    Fields may be missing or null (a run still starting); a present field must
    have the type the pages compute with.
    """
    if not isinstance(s, dict):
        return f"summary.json is a JSON {_json_type(s)}, not an object"
    problem = _field_problem(s, SUMMARY_TYPES, "")
    if problem or not isinstance(s.get("llm"), dict):
        return problem
    return _field_problem(s["llm"], LLM_TYPES, "llm.")


def _field_problem(where: dict[str, Any], types: dict[str, tuple[type, ...]], prefix: str) -> str | None:
    for key, allowed in types.items():
        v = where.get(key)
        if v is None:
            continue
        if isinstance(v, bool) and bool not in allowed or not isinstance(v, allowed):
            want = "number" if float in allowed else _json_type(allowed[0]())
            return f"summary.json field {prefix}{key} is a JSON {_json_type(v)}, expected {want}"
        if isinstance(v, int) and abs(v) >= _INT_LIMIT:
            return f"summary.json field {prefix}{key} is out of range"
    return None


def _json_type(v: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", int: "integer",
            float: "number", type(None): "null"}.get(type(v), type(v).__name__)


def read_summary(root: Path | str, path: Path) -> dict[str, Any] | Notice:
    """A run's summary.json, checked; a Notice when it is missing, unreadable, mistyped or links outside ``root``."""
    if not (path / "summary.json").exists() and not (path / "summary.json").is_symlink():
        return Notice(path, f"{path.name}: no summary.json (not a run directory)")
    try:
        f = confine_file(root, path, "summary.json")
        s = json.loads(f.read_text())
    except PathRefused as e:
        return Notice(path, str(e))
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: a JSON nested thousands deep
        return Notice(path, f"{path.name}: summary.json is unreadable or half-written ({type(e).__name__})")
    problem = summary_problem(s)
    if problem:
        return Notice(path, f"{path.name}: {problem}; run skipped")
    return s


# Columns the pages compute with and the dtypes they need (events: docs/events.md).
EVENT_COLUMNS = {"seq": "int", "tick": "int", "phase": "str", "actor": "str", "kind": "str",
                 "payload": "str", "visibility": "str"}
LEDGER_COLUMNS = {"tick": "int", "agent": "str", "phase": "str", "purpose": "str", "model": "str",
                  "outcome": "str", "tokens_in": "int", "tokens_out": "int", "cost_nano": "int"}
METRIC_COLUMNS = {"tick": "int"}
TABLE_COLUMNS = {"events": EVENT_COLUMNS, "ledger": LEDGER_COLUMNS, "metrics": METRIC_COLUMNS}


def table_problem(name: str, df: pl.DataFrame) -> str | None:
    """Missing columns or wrong dtypes in a table (None when the pages can use it, or when there is none yet)."""
    if df.width == 0:
        return None
    want = TABLE_COLUMNS[name]
    # per-tick metrics are whatever the environment declares: only a present tick is checked
    missing = [] if name == "metrics" else [c for c in want if c not in df.columns]
    if missing:
        return f"{name} table lacks column(s) {', '.join(missing)}"
    for c, kind in want.items():
        if c not in df.columns:
            continue
        dt = df[c].dtype
        ok = dt.is_integer() if kind == "int" else dt in (pl.Utf8, pl.Null)
        if not ok:
            return f"{name} table column {c} is {dt}, expected {'an integer' if kind == 'int' else 'text'}"
    return None


def read_table(root: Path | str, path: Path, name: str) -> pl.DataFrame | None:
    """The compacted table if present, else the per-tick parts (as ``RunDir.read_table``), each file confined."""
    final = path / f"{name}.parquet"
    if final.exists() or final.is_symlink():
        return pl.read_parquet(confine_file(root, path, f"{name}.parquet"))
    parts = sorted((path / "parts").glob(f"{name}-*.parquet"))
    if not parts:
        return None
    return pl.concat([pl.read_parquet(confine_file(root, path, f.relative_to(path))) for f in parts],
                     how="diagonal_relaxed")


def load_run(root: Path | str, path: Path | str) -> Run | Notice:
    """Read one run (compacted tables or, for a live/killed run, its parts); never raises on bad data."""
    try:
        p = confine(root, path)
    except PathRefused as e:
        return Notice(Path(_shown(path)), str(e))
    try:
        is_dir = p.is_dir()
    except OSError:  # e.g. a name too long for the file system
        is_dir = False
    if not is_dir:
        return Notice(p, f"{_shown(p.name)}: no such run directory")
    summ = read_summary(root, p)
    if isinstance(summ, Notice):
        return summ
    tables: dict[str, pl.DataFrame] = {}
    for name in TABLES:
        try:
            df = read_table(root, p, name)
        except PathRefused as e:
            return Notice(p, str(e))
        except Exception as e:  # noqa: BLE001 - any Parquet decode error means a damaged file
            return Notice(p, f"{p.name}: {name} table is corrupt or truncated ({type(e).__name__}: {str(e)[:120]})")
        df = df if df is not None else pl.DataFrame()
        problem = table_problem(name, df)
        if problem:
            return Notice(p, f"{p.name}: {problem}; run skipped")
        tables[name] = df
    rm = None
    warnings: list[str] = []
    if (p / "round_metrics.parquet").exists() or (p / "round_metrics.parquet").is_symlink():
        try:
            rm = pl.read_parquet(confine_file(root, p, "round_metrics.parquet"))
        except PathRefused as e:
            warnings.append(f"{e}; recomputed from events")
        except Exception:  # noqa: BLE001
            warnings.append("round_metrics.parquet is unreadable; recomputed from events")
    partial = not (p / "events.parquet").exists()
    if partial:
        warnings.append(f"status {summ.get('status', '?')}: showing the per-tick parts written so far")
    return Run(p, summ, tables["events"], tables["ledger"], tables["metrics"], rm, partial, warnings)


def load_runs(root: Path | str, paths: Iterable[Path | str]) -> tuple[list[Run], list[Notice]]:
    runs, notices = [], []
    for p in paths:
        r = load_run(root, p)
        (notices if isinstance(r, Notice) else runs).append(r)
    return runs, notices


# ----- the runs table ------------------------------------------------------------------


def headline(outcome: dict[str, Any] | None, keys: Sequence[str] = (), n: int = 3) -> str:
    """Short outcome text: the given (declared) keys first, then the first scalar fields, as written."""
    if not isinstance(outcome, dict) or not outcome:
        return ""
    order = [k for k in keys if k in outcome] + [k for k in outcome if k not in keys]
    parts = []
    for k in order:
        v = outcome[k]
        if isinstance(v, float):
            parts.append(f"{k}={v:.3g}")
        elif isinstance(v, (int, str)) or v is None:
            parts.append(f"{k}={v}")
        if len(parts) >= n:
            break
    return ", ".join(parts)


RUN_COLUMNS = {"run": pl.Utf8, "env": pl.Utf8, "seed": pl.Int64, "status": pl.Utf8, "outcome": pl.Utf8,
               "calls": pl.Int64, "tokens": pl.Int64, "usd": pl.Float64, "usd_unit": pl.Utf8, "wall_s": pl.Float64,
               "provider": pl.Utf8, "model": pl.Utf8, "is_llm": pl.Boolean, "fallback_share": pl.Float64,
               "truncated": pl.Int64, "degraded": pl.Boolean, "human_seats": pl.Int64}


def usd_unit(summary: dict[str, Any]) -> str:
    """What a run's USD figures are: ``shadow USD`` (priced, never billed) or ``USD``, as summary.json says.

    Runs written before summary.llm.usd_unit existed: local and scripted models are shadow-priced.
    """
    llm = summary.get("llm") if isinstance(summary.get("llm"), dict) else {}
    unit = llm.get("usd_unit")
    if isinstance(unit, str) and unit:
        return unit
    return "shadow USD" if llm.get("provider") in ("local", "scripted", "oracle") else "USD"


def is_degraded(summary: dict[str, Any]) -> bool:
    llm = summary.get("llm") if isinstance(summary.get("llm"), dict) else {}
    return summary.get("status") == "degraded" or llm.get("degraded") is True


def summary_row(rel: str, s: dict[str, Any]) -> dict[str, Any]:
    """A Runs table row from summary.json as written: ``llm`` for spend and policies, ``outcome`` for the headline."""
    from dashboards.declared import headline_keys

    llm = s.get("llm") or {}
    policies = llm.get("policies") if isinstance(llm.get("policies"), dict) else {}

    def num(x, cast):
        try:
            return cast(x)
        except (TypeError, ValueError):
            return None

    return {"run": rel, "env": str(s.get("env", "?")), "seed": num(s.get("seed"), int),
            "status": str(s.get("status", "?")),
            "outcome": headline(s.get("outcome"), headline_keys(str(s.get("env", "")))),
            "calls": num(llm.get("calls", 0), int),
            "tokens": num((llm.get("tokens_in") or 0) + (llm.get("tokens_out") or 0), int),
            "usd": num(llm.get("usd", 0.0), float), "usd_unit": usd_unit(s), "wall_s": num(s.get("wall_s"), float),
            "provider": str(llm.get("provider", "")), "model": str(llm.get("model", "")),
            "is_llm": llm.get("is_llm") if isinstance(llm.get("is_llm"), bool) else None,
            "fallback_share": num(llm.get("fallback_share"), float) if llm.get("fallback_share") is not None else None,
            "truncated": num(llm.get("truncated", 0), int), "degraded": is_degraded(s),
            "human_seats": num(policies.get("human"), int) if not isinstance(policies.get("human"), bool) else None}


def runs_table(root: Path | str) -> tuple[pl.DataFrame, list[Notice]]:
    """One row per run under ``root`` (summaries only, so it stays fast with many runs)."""
    rows, notices = [], []
    for p in list_runs(root):
        s = read_summary(root, p)
        if isinstance(s, Notice):
            notices.append(s)
            continue
        rows.append(summary_row(relative(root, p), s))
    return pl.DataFrame(rows, schema=RUN_COLUMNS, orient="row"), notices


def filter_runs(table: pl.DataFrame, envs: Sequence[str] = (), statuses: Sequence[str] = (),
                text: str = "") -> pl.DataFrame:
    out = table
    if envs:
        out = out.filter(pl.col("env").is_in(list(envs)))
    if statuses:
        out = out.filter(pl.col("status").is_in(list(statuses)))
    if text:
        out = out.filter(pl.col("run").str.contains(text, literal=True) | pl.col("outcome").str.contains(text, literal=True))
    return out


# ----- compute spend -------------------------------------------------------------------


def usd(ledger: pl.DataFrame) -> pl.Expr:
    return (pl.col("cost_nano").cast(pl.Float64) / 1e9).alias("usd")


def spend_over_ticks(ledger: pl.DataFrame, budget_usd: float | None = None) -> pl.DataFrame:
    """tick, usd (spent that tick), cumulative_usd and, with a budget, remaining_usd."""
    schema = {"tick": pl.Int64, "usd": pl.Float64, "cumulative_usd": pl.Float64, "remaining_usd": pl.Float64}
    if ledger.height == 0 or "cost_nano" not in ledger.columns:
        return pl.DataFrame(schema=schema)
    out = (ledger.group_by("tick").agg(usd(ledger).sum()).sort("tick")
           .with_columns(pl.col("usd").cum_sum().alias("cumulative_usd")))
    rem = (float(budget_usd) - pl.col("cumulative_usd")) if budget_usd is not None else pl.lit(None, pl.Float64)
    return out.with_columns(rem.alias("remaining_usd")).select(list(schema)).cast(schema)


def spend_by(ledger: pl.DataFrame, key: str) -> pl.DataFrame:
    """Attempts, ok calls, tokens and USD by a ledger column (agent, phase, purpose, model), biggest spend first."""
    from sim.inference.views import spend_by as by

    return by(ledger, key).select(key, "attempts", "ok_calls", "tokens", "usd").sort(
        ["usd", key], descending=[True, False])


def outcome_counts(ledger: pl.DataFrame) -> dict[str, int]:
    """Replies (``calls``, as summary.llm.calls and ``agora run`` count them) and the attempts the
    budget or the provider refused, cut or could not use."""
    from sim.inference.ledger import REPLIED

    if ledger.height == 0 or "outcome" not in ledger.columns:
        return {"calls": 0, "ok": 0, "truncated": 0, "denied": 0, "fallback": 0, "failed": 0, "invalid": 0}
    oc = ledger["outcome"]
    return {"calls": int(oc.is_in(list(REPLIED)).sum()), "ok": int((oc == "ok").sum()),
            "truncated": int((oc == "truncated").sum()), "denied": int((oc == "denied").sum()),
            "fallback": int((oc == "fallback").sum()), "failed": int(oc.is_in(FAILED_OUTCOMES).sum()),
            "invalid": int((oc == "invalid_output").sum())}


def decisions_by_purpose(ledger: pl.DataFrame) -> pl.DataFrame:
    """Per purpose: model decisions (call ids that reached a provider other than scripted), how many fell
    back to the scripted policy and how many replies the output cap cut. Empty for a scripted run."""
    schema = {"purpose": pl.Utf8, "decisions": pl.Int64, "fallbacks": pl.Int64, "truncated": pl.Int64,
              "fallback_share": pl.Float64}
    if ledger.height == 0 or not {"call_id", "provider", "purpose", "outcome"} <= set(ledger.columns):
        return pl.DataFrame(schema=schema)
    asked = ledger.filter(pl.col("provider") != "scripted")["call_id"].unique()
    rows = ledger.filter(pl.col("call_id").is_in(asked.implode()))
    if rows.height == 0:
        return pl.DataFrame(schema=schema)
    per = rows.group_by("call_id").agg(pl.col("purpose").first(), (pl.col("outcome") == "fallback").any().alias("fb"),
                                       (pl.col("outcome") == "truncated").sum().alias("cut"))
    out = (per.group_by("purpose").agg(pl.len().alias("decisions"), pl.col("fb").sum().alias("fallbacks"),
                                       pl.col("cut").sum().alias("truncated"))
           .with_columns((pl.col("fallbacks") / pl.col("decisions")).alias("fallback_share")).sort("purpose"))
    return out.cast(schema)


def tokens_over_ticks(ledger: pl.DataFrame) -> pl.DataFrame:
    """tick, kind (input, of which cached, output), tokens: the compute a run used, tick by tick."""
    schema = {"tick": pl.Int64, "kind": pl.Utf8, "tokens": pl.Int64}
    if ledger.height == 0 or not {"tick", "tokens_in", "tokens_out"} <= set(ledger.columns):
        return pl.DataFrame(schema=schema)
    cached = pl.col("tokens_cached") if "tokens_cached" in ledger.columns else pl.lit(0)
    wide = ledger.group_by("tick").agg((pl.col("tokens_in") - cached).sum().alias("input (not cached)"),
                                       cached.sum().alias("input (cached)"), pl.col("tokens_out").sum().alias("output"))
    return (wide.unpivot(index="tick", variable_name="kind", value_name="tokens").cast(schema)
            .sort(["tick", "kind"]))


def budget_caps(config: dict[str, Any] | None) -> dict[str, float]:
    """The USD caps of a run's budget (run, per agent, per team), from its config.yaml; unset ones left out."""
    b = (config or {}).get("budget") if isinstance(config, dict) else None
    if not isinstance(b, dict):
        return {}
    out: dict[str, float] = {}
    for key, label in (("run_usd", "run"), ("per_agent_usd", "per agent (most-spent agent)")):
        v = b.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            out[label] = float(v)
    for team, v in (b.get("per_team_usd") or {}).items() if isinstance(b.get("per_team_usd"), dict) else ():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            out[f"team {team}"] = float(v)
    return out


def budget_left_shares(ledger: pl.DataFrame, caps: dict[str, float]) -> pl.DataFrame:
    """tick, cap, share_left (0-1) of each run/agent cap after that tick: how close each cap came to binding.

    The per-agent line follows whichever agent has spent most so far. Team caps need the
    team's members, which the ledger does not hold: they are listed, not drawn.
    """
    schema = {"tick": pl.Int64, "cap": pl.Utf8, "share_left": pl.Float64}
    if ledger.height == 0 or "cost_nano" not in ledger.columns:
        return pl.DataFrame(schema=schema)
    parts = []
    ticks = ledger.group_by("tick").agg((pl.col("cost_nano").sum() / 1e9).alias("usd")).sort("tick")
    for label, cap in caps.items():
        if label == "run":
            parts.append(ticks.select("tick", pl.lit(label).alias("cap"),
                                      (1 - pl.col("usd").cum_sum() / cap).alias("share_left")))
        elif label.startswith("per agent"):
            per = (ledger.group_by(["tick", "agent"]).agg((pl.col("cost_nano").sum() / 1e9).alias("usd"))
                   .sort("tick").with_columns(pl.col("usd").cum_sum().over("agent").alias("spent")))
            top = per.group_by("tick").agg(pl.col("spent").max()).sort("tick")
            # carry an agent's total forward through ticks it did not spend in
            top = top.with_columns(pl.col("spent").cum_max())
            parts.append(top.select("tick", pl.lit(label).alias("cap"), (1 - pl.col("spent") / cap).alias("share_left")))
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.concat([p.cast(schema) for p in parts]).sort(["cap", "tick"])


def read_config(root: Path | str, path: Path) -> dict[str, Any] | None:
    """A run's config.yaml (safe YAML only), or None when it is missing, unreadable or links outside ``root``."""
    import yaml

    try:
        f = confine_file(root, path, "config.yaml")
        d = yaml.safe_load(f.read_text())
    except (PathRefused, OSError, ValueError, yaml.YAMLError):
        return None
    return d if isinstance(d, dict) else None


def comparable_key(summary: dict[str, Any]) -> tuple[str, str, int, bool, str]:
    """What must match for two runs' per-dollar figures to be pooled: model, status, human seats,
    degraded or not, and the USD unit (cash and shadow USD never mix)."""
    llm = summary.get("llm") if isinstance(summary.get("llm"), dict) else {}
    pol = llm.get("policies") if isinstance(llm.get("policies"), dict) else {}
    human = pol.get("human") if isinstance(pol.get("human"), int) else 0
    return (f"{llm.get('provider', '?')}/{llm.get('model', '?')}", str(summary.get("status", "?")), int(human),
            is_degraded(summary), usd_unit(summary))


def per_usd_by_group(runs: Sequence["Run"], value: str, label: str) -> pl.DataFrame:
    """Per comparable group (``comparable_key``) of runs: runs, total of outcome ``value``, USD spent, and
    ``label`` = total value / total USD in the group's own unit (n/a where the group spent nothing)."""
    schema = {"model": pl.Utf8, "status": pl.Utf8, "human_seats": pl.Int64, "degraded": pl.Boolean,
              "unit": pl.Utf8, "runs": pl.Int64, value: pl.Float64, "spent": pl.Float64, label: pl.Utf8}
    groups: dict[tuple, list] = {}
    for r in runs:
        groups.setdefault(comparable_key(r.summary), []).append(r)
    rows = []
    for (model, status, human, degraded, unit), rs in sorted(groups.items()):
        vals = [(r.summary.get("outcome") or {}).get(value) for r in rs]
        total = float(sum(v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)))
        spent = sum(run_usd(r.summary) for r in rs)
        ratio = f"{total / spent:.4g} per {unit}" if spent > 0 else "n/a (no spend)"
        rows.append({"model": model, "status": status, "human_seats": human, "degraded": degraded, "unit": unit,
                     "runs": len(rs), value: total, "spent": spent, label: ratio})
    return pl.DataFrame(rows, schema=schema, orient="row")


def no_beliefs_reason(summary: dict[str, Any], config: dict[str, Any] | None, events: pl.DataFrame) -> str:
    """Why a Traitors run has no belief probes, from what the run wrote (never a guess)."""
    env = (config or {}).get("env") if isinstance((config or {}).get("env"), dict) else {}
    if env.get("belief_probe") is False:
        return "belief probes are off in this run's config (env.belief_probe=false)"
    status = str(summary.get("status", "?"))
    phases = set(events["phase"].unique().to_list()) if events.height and "phase" in events.columns else set()
    if "belief" not in phases:
        why = {"aborted_budget": "its budget ran out", "failed": "it failed", "abandoned": "it was abandoned",
               "degraded": "it stopped degraded", "running": "it is still running"}.get(status)
        if why:
            return f"the run ended before its first belief phase: {why} (status {status}, tick {summary.get('ticks')})"
        return f"no belief phase ran (status {status}, {summary.get('ticks')} ticks)"
    return f"the belief phases wrote no readable belief events (status {status})"


def run_usd(summary: dict[str, Any]) -> float:
    try:
        return float((summary.get("llm") or {}).get("usd") or 0.0)
    except (TypeError, ValueError):
        return 0.0


COMPARISON_SCHEMA = {"run": pl.Utf8, "env": pl.Utf8, "status": pl.Utf8, "ticks": pl.Int64, "usd": pl.Float64,
                     "usd_unit": pl.Utf8, "budget_usd": pl.Float64, "calls": pl.Int64, "is_llm": pl.Boolean,
                     "ok": pl.Int64, "truncated": pl.Int64, "denied": pl.Int64, "fallback": pl.Int64,
                     "failed": pl.Int64}


def comparison_table(runs: Sequence[Run]) -> pl.DataFrame:
    """Side by side: one row per selected run, spend from ``summary.llm`` and attempt counts from the ledger.

    Outcome values (per-USD ones included) are the environment's own, shown per
    environment by ``dashboards.declared.outcome_table``; none is re-derived here.
    """
    rows = []
    for r in runs:
        c = outcome_counts(r.ledger)
        llm = r.summary.get("llm") or {}
        rows.append({"run": r.label, "env": r.env, "status": str(r.summary.get("status")),
                     "ticks": int(r.summary.get("ticks") or 0), "usd": run_usd(r.summary),
                     "usd_unit": usd_unit(r.summary), "budget_usd": r.summary.get("budget_usd"),
                     # the ledger's count: the same number summary.llm.calls, agora run and agora report show
                     "calls": c["calls"], "is_llm": llm.get("is_llm"), "ok": c["ok"], "truncated": c["truncated"],
                     "denied": c["denied"], "fallback": c["fallback"], "failed": c["failed"]})
    return pl.DataFrame(rows, schema=COMPARISON_SCHEMA, orient="row")


# ----- artifacts (GraphML) ---------------------------------------------------------------


def read_trust_graph(root: Path | str, path: Path, tick: int) -> nx.DiGraph | None:
    """The round's trust GraphML; None when absent, damaged or linking outside ``root`` (the page says so)."""
    name = Path("trust") / f"trust_round_{tick}.graphml"
    if not (path / name).exists():
        return None
    try:
        return nx.read_graphml(confine_file(root, path, name))
    except Exception:  # noqa: BLE001 - a damaged or refused artifact just hides the graph
        return None


def trust_graph_rounds(path: Path) -> list[int]:
    out = []
    for f in (path / "trust").glob("trust_round_*.graphml"):
        try:
            out.append(int(f.stem.rsplit("_", 1)[1]))
        except ValueError:
            continue
    return sorted(out)


def graph_layout(G: nx.DiGraph, seed: int = 0, min_weight: float = 0.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Node positions (spring layout, seeded) and edge segments for drawing with Altair."""
    pos = nx.spring_layout(G, seed=seed, weight="weight") if G.number_of_nodes() else {}
    nodes = pl.DataFrame([{"pid": str(n), "x": float(pos[n][0]), "y": float(pos[n][1]),
                           "role": str(G.nodes[n].get("role", "unknown"))} for n in G.nodes],
                         schema={"pid": pl.Utf8, "x": pl.Float64, "y": pl.Float64, "role": pl.Utf8}, orient="row")
    edges = [{"source": str(u), "target": str(v), "weight": float(d.get("weight", 0.0)),
              "x": float(pos[u][0]), "y": float(pos[u][1]), "x2": float(pos[v][0]), "y2": float(pos[v][1])}
             for u, v, d in G.edges(data=True) if float(d.get("weight", 0.0)) > min_weight]
    eschema = {"source": pl.Utf8, "target": pl.Utf8, "weight": pl.Float64, "x": pl.Float64, "y": pl.Float64,
               "x2": pl.Float64, "y2": pl.Float64}
    return nodes, pl.DataFrame(edges, schema=eschema, orient="row")


def long_metrics(df: pl.DataFrame, cols: Sequence[str]) -> pl.DataFrame:
    """tick, metric, value (NaN as missing): the shape Altair wants for several lines on one chart."""
    cols = [c for c in cols if c in df.columns]
    if not cols or "tick" not in df.columns:
        return pl.DataFrame(schema={"tick": pl.Int64, "metric": pl.Utf8, "value": pl.Float64})
    return (df.select("tick", *[pl.col(c).cast(pl.Float64).fill_nan(None) for c in cols])
            .unpivot(index="tick", variable_name="metric", value_name="value").drop_nulls("value"))


def shown(x: Any) -> str:
    """Text from someone else's data as put in a notice: printable and short."""
    return _shown(x)


# ----- selection shared between pages ----------------------------------------------------

SELECTION_KEY = "selection"


def selection(state: Any, root: Path | str, env: str | None = None) -> list[str]:
    """Selected runs (relative paths) from the session state; all runs when nothing is selected.

    ``env`` narrows to one environment by path or summary, so each env page picks its own runs.
    """
    all_runs = [relative(root, p) for p in list_runs(root)]
    chosen = [r for r in (state.get(SELECTION_KEY) or []) if r in all_runs] or all_runs
    return chosen if env is None else env_selection(root, chosen, env)[0]


def selection_envs(root: Path | str, chosen: Sequence[str]) -> tuple[list[str], list[Notice]]:
    """The environments of the ``chosen`` runs (from their summaries), and a Notice per unreadable summary."""
    envs, notices = set(), []
    for r in chosen:
        s = read_summary(root, Path(root) / r)
        if isinstance(s, Notice):
            notices.append(s)
        elif isinstance(s.get("env"), str):
            envs.add(s["env"])
    return sorted(envs), notices


def env_selection(root: Path | str, chosen: Sequence[str], env: str) -> tuple[list[str], list[Notice]]:
    """The runs of ``env`` among ``chosen``, and a Notice for each whose summary cannot be read."""
    out, notices = [], []
    for r in chosen:
        s = read_summary(root, Path(root) / r)
        if isinstance(s, Notice):
            notices.append(s)
        elif s.get("env") == env:
            out.append(r)
    return out, notices
