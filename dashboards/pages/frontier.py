"""Frontier: cost-of-pass grids written by `agora frontier` (frontier.parquet under the runs root)."""
from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import data
from dashboards.ui import ensure_navigation

ensure_navigation()

st.title("Inference production frontier")
root = data.runs_root()
found = sorted(root.rglob("frontier.parquet")) if root.is_dir() else []
if not found:
    st.info("No frontier.parquet under the runs root. Write one with `agora frontier --out DIR ...` "
            "(DIR inside the runs root).")
    st.stop()
# the spend page sets frontier_pick / frontier_cell when it links a run to its cell
wanted = str(st.session_state.get("frontier_pick") or "")
start = next((i for i, p in enumerate(found) if str(p) == wanted), 0)
pick = st.selectbox("Frontier", found, index=start, format_func=lambda p: str(p.parent.relative_to(root)))
try:
    df = pl.read_parquet(pick)
except Exception as e:  # noqa: BLE001 - an unreadable file is a notice, not a crash
    st.warning(f"{pick}: cannot read ({type(e).__name__})")
    st.stop()
st.caption("Oracle tiers are simulated (known accuracy and cost), not an LLM. Intervals are 95%; cost-of-pass "
           "is USD per unit of the environment's success event (a faithful win, welfare, surplus).")
from sim.frontier import frontier_chart, frontier_label  # noqa: E402

label = frontier_label(df)  # from the tier_kind column: which cells' tiers are simulated
if label:
    st.caption(f"This frontier: {label}.")
st.altair_chart(frontier_chart(df), width="stretch")
cell = st.session_state.get("frontier_cell")
if cell and str(pick) == wanted and "cell" in df.columns and cell in df["cell"].to_list():
    st.subheader(f"Cell {cell}")
    st.dataframe(df.filter(pl.col("cell") == cell), hide_index=True, width="stretch")
if "mv" in df.columns:
    st.caption("mv: marginal value of compute, outcome per extra USD over the next-smaller budget of the same "
               "policy and tier (mv_from), with its 95% interval (mv_lo, mv_hi); mv_note says why it is empty "
               "or unbounded: the smallest budget, no extra spend, or no change in any game (the extra spend "
               "changed no game's outcome, so there is no interval to give).")
st.dataframe(df, hide_index=True, width="stretch")
hull = df.filter(pl.col("on_hull")).sort("spend_mean")
if hull.height:
    st.subheader("On the Pareto hull")
    st.dataframe(hull.select("cell", "spend_mean", "outcome_mean", "cop", "cop_lo", "cop_hi"), hide_index=True)
shap_path = pick.parent / "shapley.parquet"
if shap_path.is_file():  # written by `agora frontier --shapley agents|phases`
    try:
        shap = pl.read_parquet(shap_path)
    except Exception as e:  # noqa: BLE001
        st.warning(f"{shap_path}: cannot read ({type(e).__name__})")
    else:
        st.subheader("Shapley attribution of spend")
        st.caption("Each deliberating cell's extra spend (phi_spend, USD per game) and extra success (phi_outcome) "
                   "over the single-call baseline, split among agents or phases by their Shapley values; they sum "
                   "to the cell's total. se_*: standard errors when sampled (above 10 players).")
        st.dataframe(shap, hide_index=True, width="stretch")
