"""Runs: every run directory under the root, with filters; the selection feeds the other pages."""
from __future__ import annotations

import streamlit as st

from dashboards import data

from dashboards.ui import ensure_navigation

ensure_navigation()

st.title("Runs")
root = data.runs_root()
table, notices = data.runs_table(root)
for n in notices:
    st.warning(n.message)
if table.height == 0:
    st.info(f"No runs under `{root}`. Produce one with "
            "`agora run llm=scripted run.dir=<root>/traitors/s1 seed=1`.")
    st.stop()

c1, c2, c3 = st.columns(3)
envs = c1.multiselect("environment", sorted(table["env"].unique().to_list()), key="f_env")
statuses = c2.multiselect("status", sorted(table["status"].unique().to_list()), key="f_status")
text = c3.text_input("path or outcome contains", key="f_text")
shown = data.filter_runs(table, envs, statuses, text)
st.caption(f"{shown.height} of {table.height} runs")
st.dataframe(shown, hide_index=True, width="stretch",
             column_config={"usd": st.column_config.NumberColumn("spend", format="%.6f",
                                                                 help="in the unit of the next column"),
                            "usd_unit": st.column_config.TextColumn("unit", help="USD, or shadow USD: priced, "
                                                                    "never billed (local and scripted models)"),
                            "fallback_share": st.column_config.NumberColumn(
                                "fallback share", format="%.2f",
                                help="model decisions the scripted fallback answered (summary.llm.fallback_share)"),
                            "truncated": st.column_config.NumberColumn("truncated", help="replies cut by the output cap"),
                            "degraded": st.column_config.CheckboxColumn(
                                "degraded", help="fallback share above run.fallback_threshold: not an LLM result"),
                            "wall_s": st.column_config.NumberColumn("wall (s)", format="%.1f"),
                            "tokens": st.column_config.NumberColumn("tokens (in+out)"),
                            "is_llm": st.column_config.CheckboxColumn("LLM run", help="summary.llm.is_llm"),
                            "human_seats": st.column_config.NumberColumn("human seats",
                                                                         help="summary.llm.policies.human")})

# The widget's own key is dropped when another page is shown, so the choice is
# copied to a plain session key that every page reads.
previous = [r for r in st.session_state.get(data.SELECTION_KEY, []) if r in table["run"].to_list()]


def _keep() -> None:
    st.session_state[data.SELECTION_KEY] = list(st.session_state["_runs_pick"])


st.multiselect("selected runs (used by the other pages; none = all)", table["run"].to_list(), default=previous,
               key="_runs_pick", on_change=_keep)
sel = st.session_state.get(data.SELECTION_KEY) or []
st.caption(f"{len(sel)} selected" if sel else "nothing selected: other pages show all runs")

with st.expander("Open a run by path"):
    p = st.text_input("run directory (relative to the runs root)", key="open_path")
    if p:
        r = data.load_run(root, p)
        if isinstance(r, data.Notice):
            st.error(r.message)
        else:
            st.success(f"{r.label}: {r.events.height} events, {r.ledger.height} ledger rows")
            st.json(r.summary, expanded=False)
