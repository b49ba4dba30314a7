"""Environment: the metrics an environment declares, for one of its runs.

Generic over the registry: each per-tick group is a chart (titles and units
from the ``MetricSpec``s), each outcome group a table of the values as written
in summary.json. Nothing here knows an environment by name.
"""
from __future__ import annotations

import streamlit as st

from dashboards import charts, data, declared
from dashboards.ui import (decision_health, declared_outcome_tables, declared_tick_charts, ensure_navigation,
                           selected_run)

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
# /environment?env=market opens that environment (links, the browser test)
asked = st.query_params.get("env")
env = st.selectbox("environment", envs, key="env_page_env", index=envs.index(asked) if asked in envs else 0)
specs = declared.specs_of(env)
if not specs:
    st.warning(f"environment {data.shown(env)!r} declares no metrics in this checkout (not registered?)")
run = selected_run(env, "env_run", f"No {env} runs selected.")

decision_health(run)
outcome = run.summary.get("outcome")
markers = declared.event_markers(outcome)

st.header("Per tick (metrics.parquet)")
met = run.metrics
if met.height == 0 or "tick" not in met.columns:
    st.info("This run has no per-tick metrics yet.")
else:
    declared_tick_charts(met, specs, markers=markers)
    if markers:
        st.caption("dashed red rule: " + "; ".join(m["label"] for m in markers))
    for name, cols in declared.numbered_families(met, specs).items():
        fam = declared.family_last(met, cols)
        st.altair_chart(charts.bars(fam, "member", "value", f"{name} by number, last tick ({int(met['tick'].max())})",
                                    f"{name} (in number order)", "value (see column)", horizontal=False,
                                    order=fam["member"].to_list()), width="stretch")
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
declared_outcome_tables(outcome, specs, data.run_usd(run.summary), data.usd_unit(run.summary))
study = declared.event_study_rows(outcome)
if study.height:
    st.subheader("Event study (price reaction to the shock)")
    st.dataframe(study, hide_index=True, width="stretch")
elif isinstance(outcome, dict) and "event_study" in outcome:
    st.subheader("Event study (price reaction to the shock)")
    st.caption("no event study in this run (no shock configured, or no trades around it)")
with st.expander("outcome as written (summary.json)"):
    st.json(run.summary.get("outcome") or {})
