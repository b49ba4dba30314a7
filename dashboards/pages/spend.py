"""Compute spend: where the money (or shadow money) went, for every environment."""
from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data

from dashboards.ui import ensure_navigation

ensure_navigation()

st.title("Compute spend")
root = data.runs_root()
runs, notices = data.load_runs(root, data.selection(st.session_state, root))
for n in notices:
    st.warning(n.message)
if not runs:
    st.info("No readable runs selected. Pick runs on the Runs page.")
    st.stop()

# ---- across the selected runs -------------------------------------------------------
st.subheader("Selected runs side by side")
comp = data.comparison_table(runs)
st.dataframe(comp, hide_index=True, width="stretch")
m1, m2, m3 = st.columns(3)
traitors = [r.summary for r in runs if r.env == "traitors"]
cop = data.usd_per_faithful_win(traitors)
m1.metric("USD per faithful win (traitors)",
          "n/a" if cop is None else f"${cop:.6f}",
          help=f"total USD over {len(traitors)} selected traitors runs / faithful wins; n/a without a win")
w = comp.filter(pl.col("env") == "taxation")["welfare_per_usd"].drop_nulls()
m2.metric("welfare per USD (taxation, mean)", "n/a" if w.len() == 0 else f"{w.mean():.3g}",
          help="utilitarian welfare / USD spent; n/a for runs with no spend (scripted)")
s = comp.filter(pl.col("env") == "market")["surplus_per_usd"].drop_nulls()
m3.metric("surplus per USD (market, mean)", "n/a" if s.len() == 0 else f"{s.mean():.3g}",
          help="realised surplus / USD spent; n/a for runs with no spend (scripted)")
if comp.height > 1:
    st.altair_chart(charts.compare_bars(comp, "usd", "Spend per selected run", "spend (USD)"), width="stretch")

# ---- one run in detail -----------------------------------------------------------------
st.subheader("One run in detail")
labels = [r.label for r in runs]
run = runs[labels.index(st.selectbox("run", labels, key="spend_run"))]
for w_ in run.warnings:
    st.info(w_)
if not (run.summary.get("llm") or {}).get("is_llm", True):
    st.caption("Scripted rule-based policies: not an LLM; every cost is zero.")
led = run.ledger
counts = data.outcome_counts(led)
cols = st.columns(5)
for c, k in zip(cols, ("ok", "denied", "fallback", "failed", "invalid")):
    c.metric(f"{k} attempts", counts[k])
if led.height == 0:
    st.info("This run has no ledger rows yet.")
    st.stop()
spend = data.spend_over_ticks(led, run.summary.get("budget_usd"))
st.altair_chart(charts.line(spend, "tick", "usd", "Spend per tick", "tick (engine step)", "spend (USD)"),
                width="stretch")
st.altair_chart(charts.spend_lines(spend, "Cumulative spend and budget remaining (budget_usd - spent)"),
                width="stretch")
c1, c2 = st.columns(2)
for col, key, unit in ((c1, "agent", "agent"), (c2, "phase", "phase"), (c1, "purpose", "purpose"),
                       (c2, "model", "model")):
    by = data.spend_by(led, key)
    if by.height:
        metric = "usd" if by["usd"].sum() > 0 else "attempts"
        col.altair_chart(charts.bars(by, key, metric, f"{'Spend' if metric == 'usd' else 'Attempts'} by {unit}",
                                     unit, "spend (USD)" if metric == "usd" else "attempts (count)"),
                         width="stretch")
