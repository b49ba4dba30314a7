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


def outcome_rows(specs: Sequence[MetricSpec], outcome: dict[str, Any] | None) -> pl.DataFrame:
    """One row per declared outcome metric: its title, value as written, unit, which way is better, meaning."""
    out = outcome if isinstance(outcome, dict) else {}
    rows = [{"metric": s.title, "value": show_value(out[s.key]) if s.key in out else "not written",
             "unit": s.unit, "better": BETTER.get(s.higher_is_better, ""), "meaning": s.doc} for s in specs]
    schema = {"metric": pl.Utf8, "value": pl.Utf8, "unit": pl.Utf8, "better": pl.Utf8, "meaning": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row")


def outcome_table(labels: Sequence[str], outcomes: Sequence[dict[str, Any] | None],
                  specs: Sequence[MetricSpec]) -> pl.DataFrame:
    """Runs side by side: one row per run, one column per declared outcome metric ("title [unit]")."""
    specs = [s for s in specs if s.source == "outcome"]
    names: list[str] = []
    for s in specs:
        name = f"{s.title} [{s.unit}]" if s.unit else s.title
        names.append(name if name not in names else f"{name} ({s.key})")
    rows = []
    for label, o in zip(labels, outcomes):
        o = o if isinstance(o, dict) else {}
        rows.append({"run": label, **{n: show_value(o[s.key]) if s.key in o else "not written"
                                      for n, s in zip(names, specs)}})
    return pl.DataFrame(rows, schema={"run": pl.Utf8, **{n: pl.Utf8 for n in names}}, orient="row")


def headline_keys(env: str, n: int = 3) -> list[str]:
    """The first declared outcome keys of ``env``: what the Runs table shows of an outcome."""
    return [s.key for s in specs_of(env) if s.source == "outcome"][:n]
