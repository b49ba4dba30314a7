"""Environment: the metrics an environment declares, for one of its runs.

Generic over the registry: each per-tick group is a chart (titles and units
from the ``MetricSpec``s), each outcome group a table of the values as written
in summary.json. Nothing here knows an environment by name.
"""
from __future__ import annotations

import streamlit as st

from dashboards import charts, data, declared
from dashboards.ui import declared_outcome_tables, declared_tick_charts, ensure_navigation, selected_run

ensure_navigation()

st.title("Environment metrics")
root = data.runs_root()
envs, notices = data.selection_envs(root, data.selection(st.session_state, root))
if not envs:
    for n in notices:
        st.warning(n.message)
    st.info("No readable runs under the runs root (or none selected). Produce one with "
            "`agora run llm=scripted run.dir=<root>/<env>/s1 seed=1`.")
    st.stop()
env = st.selectbox("environment", envs, key="env_page_env")
specs = declared.specs_of(env)
if not specs:
    st.warning(f"environment {data.shown(env)!r} declares no metrics in this checkout (not registered?)")
run = selected_run(env, "env_run", f"No {env} runs selected.")

st.header("Per tick (metrics.parquet)")
met = run.metrics
if met.height == 0 or "tick" not in met.columns:
    st.info("This run has no per-tick metrics yet.")
else:
    declared_tick_charts(met, specs)
    missing = declared.missing_columns(met, specs)
    if missing:
        st.warning("declared but not in this run's metrics.parquet: " + ", ".join(s.key for s in missing))
    other = declared.undeclared_columns(met, specs)
    if other:
        with st.expander(f"Other per-tick columns ({len(other)}, written but not declared)"):
            pick = st.multiselect("columns", other, default=other[: min(len(other), 7)], key="env_other")
            if pick:
                long = data.long_metrics(met, pick)
                st.altair_chart(charts.multi_line(long, "Other columns over time", "value (see column)"),
                                width="stretch")

st.header("Outcome (summary.json)")
status = run.summary.get("status")
if status != "completed":
    st.caption(f"status {status}: the outcome may be partial")
declared_outcome_tables(run.summary.get("outcome"), specs)
with st.expander("outcome as written (summary.json)"):
    st.json(run.summary.get("outcome") or {})
