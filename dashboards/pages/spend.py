"""Compute spend: where the money (or shadow money) went, for every environment."""
from __future__ import annotations

import streamlit as st

from dashboards import charts, data, declared

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
# Each environment's own outcome values (per-USD ones included), as its runs wrote them.
by_env: dict[str, list[data.Run]] = {}
for r in runs:
    by_env.setdefault(r.env, []).append(r)
for env, env_runs in by_env.items():
    specs = declared.specs_of(env)
    if any(s.source == "outcome" for s in specs):
        st.caption(f"{env}: declared outcome metrics, as written in summary.json")
        st.dataframe(declared.outcome_table([r.label for r in env_runs],
                                            [r.summary.get("outcome") for r in env_runs], specs),
                     hide_index=True, width="stretch")
if comp.height > 1:
    st.altair_chart(charts.compare_bars(comp, "usd", "Spend per selected run", "spend (USD)"), width="stretch")

# ---- one run in detail -----------------------------------------------------------------
st.subheader("One run in detail")
labels = [r.label for r in runs]
run = runs[labels.index(st.selectbox("run", labels, key="spend_run"))]
for w_ in run.warnings:
    st.info(w_)
llm = run.summary.get("llm") or {}
if llm.get("is_llm") is False:
    st.caption(str(llm.get("note") or "no call was answered by a language model: not an LLM run"))
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
