"""Welfare (Taxation): productivity, equality, revenue and welfare over tax periods."""
from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data

from dashboards.ui import ensure_navigation, metric_groups, selected_run, tick_metrics

ensure_navigation()

# Groups of taxation metrics that share a unit, so each chart has one honest y axis.
GROUPS = (
    ("Productivity, revenue and transfers", "coin per period",
     ("productivity", "revenue", "lump_sum", "mean_income", "mean_tax")),
    ("Equality", "fraction (equality = 1 - Gini)", ("equality", "gini", "gini_pre_tax")),
    ("Social welfare", "welfare (utility units)", ("utilitarian_welfare", "inverse_income_welfare",
                                                   "llm_economist_swf", "swf", "welfare", "eq_times_prod",
                                                   "equality_times_productivity")),
    ("Labour", "hours per period", ("hours_mean", "hours_q10", "hours_q50", "hours_q90", "labor_mean")),
    ("Workers at the hours cap", "fraction of workers", ("share_at_cap",)),
)


def prefixed(cols: list[str], prefix: str) -> list[str]:
    """Columns like rate_1..rate_7 or etr_decile_01..10, in their natural order."""
    return sorted((c for c in cols if c.startswith(prefix) and c[len(prefix):].isdigit()),
                  key=lambda c: int(c[len(prefix):]))


st.title("Welfare (Taxation)")
run = selected_run("taxation", "welfare_run", "No taxation runs under the runs root (or none selected). Produce one with "
                                              "`agora run env=taxation llm=scripted run.dir=<root>/taxation/s1 seed=1`.")
met = tick_metrics(run)
shown = metric_groups(met, GROUPS, "tick (tax period step)")
num = data.numeric_columns(met)
rates = prefixed(num, "rate_")
if rates:
    st.altair_chart(charts.multi_line(data.long_metrics(met, rates), "Marginal tax rate per bracket over time",
                                      "marginal rate (fraction)", "tick (tax period step)"), width="stretch")
    shown += 1
deciles = prefixed(num, "etr_decile_")
if deciles:
    last = met.select(deciles).tail(1).unpivot(variable_name="decile", value_name="etr") \
        .with_columns(pl.col("decile").str.replace("etr_decile_", "decile "))
    st.altair_chart(charts.bars(last, "decile", "etr", "Effective tax rate by income decile (last tick)",
                                "income decile", "effective tax rate (fraction)", horizontal=False),
                    width="stretch")
    shown += 1
known = {c for _, _, cols in GROUPS for c in cols} | set(rates) | set(deciles)
other = [c for c in num if c not in known]
if other:
    pick = st.multiselect("other metrics", other, default=other[:3], key="welfare_other")
    if pick:
        st.altair_chart(charts.multi_line(data.long_metrics(met, pick), "Other metrics over time",
                                          "value (see metric)"), width="stretch")
        shown += 1
if not shown:
    st.info("metrics.parquet has no numeric columns this page knows; columns: " + ", ".join(met.columns))
u = data.run_usd(run.summary)
w = data.pick_value(run, data.WELFARE_KEYS)
c1, c2 = st.columns(2)
c1.metric("welfare", "n/a" if w is None else f"{w:.4g}")
wpd = data.per_dollar(w, u)
c2.metric("welfare per USD", "n/a (no spend)" if wpd is None else f"{wpd:.4g}")
with st.expander("outcome"):
    st.json(run.summary.get("outcome") or {})
