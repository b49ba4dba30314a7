"""The metrics an environment declares, shaped for the pages (no Streamlit here).

Pages draw what ``Environment.metrics`` declares (``sim.engine.MetricSpec``):
per-tick metrics as one chart per group and unit, outcome metrics as a table
of values as written in summary.json. Nothing is guessed from column names and
nothing is re-derived: a value the run did not write shows as missing.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any, Iterable, Sequence

import polars as pl

from sim.engine import MetricSpec


def specs_of(env: str) -> tuple[MetricSpec, ...]:
    """The metric specs ``env`` declares; none for a name the registry does not know."""
    from environments import registry

    try:
        return tuple(registry.env_class(env).metrics)
    except Exception:  # noqa: BLE001 - an unknown name, or an environment that cannot be imported here
        return ()


def group_title(group: str) -> str:
    return group.replace("_", " ").capitalize()


def tick_groups(specs: Iterable[MetricSpec]) -> "OrderedDict[str, list[MetricSpec]]":
    """Per-tick specs by group, in declaration order."""
    out: OrderedDict[str, list[MetricSpec]] = OrderedDict()
    for s in specs:
        if s.source == "tick":
            out.setdefault(s.group, []).append(s)
    return out


def outcome_groups(specs: Iterable[MetricSpec]) -> "OrderedDict[str, list[MetricSpec]]":
    out: OrderedDict[str, list[MetricSpec]] = OrderedDict()
    for s in specs:
        if s.source == "outcome":
            out.setdefault(s.group, []).append(s)
    return out


def by_unit(specs: Sequence[MetricSpec]) -> "OrderedDict[str, list[MetricSpec]]":
    """One chart per unit, so every y axis means one thing."""
    out: OrderedDict[str, list[MetricSpec]] = OrderedDict()
    for s in specs:
        out.setdefault(s.unit, []).append(s)
    return out


def chart_title(group: str, unit: str, n_units: int) -> str:
    return group_title(group) if n_units == 1 else f"{group_title(group)}: {unit or 'no unit'}"


def long_series(met: pl.DataFrame, specs: Sequence[MetricSpec]) -> pl.DataFrame:
    """tick, metric (the declared title), value: the declared columns present, NaN as missing."""
    schema = {"tick": pl.Int64, "metric": pl.Utf8, "value": pl.Float64}
    cols = [s for s in specs if s.key in met.columns and met[s.key].dtype.is_numeric()]
    if not cols or "tick" not in met.columns:
        return pl.DataFrame(schema=schema)
    wide = met.select(pl.col("tick").cast(pl.Int64),
                      *[pl.col(s.key).cast(pl.Float64).fill_nan(None).alias(s.title) for s in cols])
    return wide.unpivot(index="tick", variable_name="metric", value_name="value").drop_nulls("value").cast(schema)


def missing_columns(met: pl.DataFrame, specs: Iterable[MetricSpec]) -> list[MetricSpec]:
    """Declared per-tick metrics that metrics.parquet does not hold (an older or foreign run)."""
    return [s for s in specs if s.source == "tick" and s.key not in met.columns]


def undeclared_columns(met: pl.DataFrame, specs: Iterable[MetricSpec]) -> list[str]:
    """Numeric columns of metrics.parquet that no spec declares, in natural order (rate_2 before rate_10)."""
    declared = {s.key for s in specs if s.source == "tick"}
    cols = [c for c in met.columns if c != "tick" and c not in declared and met[c].dtype.is_numeric()
            and met[c].dtype != pl.Boolean]
    return sorted(cols, key=natural_key)


def natural_key(name: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def show_value(v: Any) -> str:
    """An outcome value as text: numbers to 4 significant digits, n/a where the run wrote null."""
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return v
    text = str(v)
    return text if len(text) <= 80 else text[:77] + "..."


BETTER = {True: "higher", False: "lower", None: ""}


def is_per_usd(spec: MetricSpec) -> bool:
    """A per-dollar metric (its unit is ``... / USD``)."""
    return spec.unit.replace(" ", "").endswith("/USD")


def shown_unit(spec: MetricSpec, usd_unit: str = "USD") -> str:
    """The spec's unit with USD named as the run's unit (``surplus / shadow USD`` for a local model)."""
    return spec.unit.replace("USD", usd_unit) if usd_unit != "USD" and "USD" in spec.unit else spec.unit


def shown_outcome(spec: MetricSpec, outcome: dict[str, Any], spent: float | None = None) -> str:
    """A declared outcome value as text; a missing per-dollar value says why (no spend, or undefined here)."""
    if spec.key not in outcome:
        return "not written"
    v = outcome[spec.key]
    if v is None and is_per_usd(spec) and spent is not None:
        return "n/a (no spend)" if not spent > 0 else f"n/a (not defined for this run; spent {spent:.6g})"
    return show_value(v)


def outcome_rows(specs: Sequence[MetricSpec], outcome: dict[str, Any] | None, spent: float | None = None,
                 usd_unit: str = "USD") -> pl.DataFrame:
    """One row per declared outcome metric: its title, value as written, unit, which way is better, meaning.

    ``spent`` (the run's USD) lets a missing per-dollar value say why; ``usd_unit`` names shadow USD.
    """
    out = outcome if isinstance(outcome, dict) else {}
    rows = [{"metric": s.title, "value": shown_outcome(s, out, spent), "unit": shown_unit(s, usd_unit),
             "better": BETTER.get(s.higher_is_better, ""), "meaning": s.doc} for s in specs]
    schema = {"metric": pl.Utf8, "value": pl.Utf8, "unit": pl.Utf8, "better": pl.Utf8, "meaning": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row")


def outcome_table(labels: Sequence[str], outcomes: Sequence[dict[str, Any] | None],
                  specs: Sequence[MetricSpec], spent: Sequence[float | None] | None = None) -> pl.DataFrame:
    """Runs side by side: one row per run, one column per declared outcome metric ("title [unit]").

    ``spent`` (each run's USD) lets a missing per-dollar value say why."""
    specs = [s for s in specs if s.source == "outcome"]
    names: list[str] = []
    for s in specs:
        name = f"{s.title} [{s.unit}]" if s.unit else s.title
        names.append(name if name not in names else f"{name} ({s.key})")
    rows = []
    for i, (label, o) in enumerate(zip(labels, outcomes)):
        o = o if isinstance(o, dict) else {}
        usd = spent[i] if spent is not None else None
        rows.append({"run": label, **{n: shown_outcome(s, o, usd) for n, s in zip(names, specs)}})
    return pl.DataFrame(rows, schema={"run": pl.Utf8, **{n: pl.Utf8 for n in names}}, orient="row")


def numbered_families(met: pl.DataFrame, specs: Iterable[MetricSpec], min_size: int = 3) -> dict[str, list[str]]:
    """Undeclared per-tick columns that form a numbered series (``etr_decile_01`` .. ``_10``), each in
    its number order: drawn as one bar chart in that order, never sorted by value."""
    fam: dict[str, list[str]] = {}
    for c in undeclared_columns(met, specs):
        m = re.match(r"^(.*?)_?(\d+)$", c)
        if m:
            fam.setdefault(m.group(1), []).append(c)
    return {k: sorted(v, key=natural_key) for k, v in fam.items() if len(v) >= min_size}


def family_last(met: pl.DataFrame, cols: Sequence[str]) -> pl.DataFrame:
    """member, order, value: the last tick's values of a numbered family, in number order."""
    schema = {"member": pl.Utf8, "order": pl.Int64, "value": pl.Float64}
    if met.height == 0 or not cols:
        return pl.DataFrame(schema=schema)
    last = met.sort("tick").tail(1)
    rows = []
    for i, c in enumerate(cols):
        v = last[c][0]
        num = re.search(r"(\d+)$", c)
        rows.append({"member": num.group(1) if num else c, "order": i,
                     "value": None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)})
    return pl.DataFrame(rows, schema=schema, orient="row")


def event_markers(outcome: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Shock ticks an outcome records (``event_study`` with a ``shock_tick``): markers for the tick charts."""
    es = (outcome or {}).get("event_study") if isinstance(outcome, dict) else None
    items = es if isinstance(es, list) else [es]
    out = []
    for e in items:
        if isinstance(e, dict) and isinstance(e.get("shock_tick"), (int, float)) and not isinstance(e.get("shock_tick"), bool):
            out.append({"tick": int(e["shock_tick"]), "label": f"shock (tick {int(e['shock_tick'])})"})
    return out


def event_study_rows(outcome: dict[str, Any] | None) -> pl.DataFrame:
    """The event study(ies) an outcome records, one row per field, values as written."""
    es = (outcome or {}).get("event_study") if isinstance(outcome, dict) else None
    items = es if isinstance(es, list) else [es]
    rows = [{"study": i + 1, "field": str(k), "value": show_value(v)}
            for i, e in enumerate(items) if isinstance(e, dict) for k, v in e.items()]
    return pl.DataFrame(rows, schema={"study": pl.Int64, "field": pl.Utf8, "value": pl.Utf8}, orient="row")


def headline_keys(env: str, n: int = 3) -> list[str]:
    """The first declared outcome keys of ``env``: what the Runs table shows of an outcome."""
    return [s.key for s in specs_of(env) if s.source == "outcome"][:n]
