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
pick = st.selectbox("Frontier", found, format_func=lambda p: str(p.parent.relative_to(root)))
try:
    df = pl.read_parquet(pick)
except Exception as e:  # noqa: BLE001 - an unreadable file is a notice, not a crash
    st.warning(f"{pick}: cannot read ({type(e).__name__})")
    st.stop()
st.caption("Oracle tiers are simulated (known accuracy and cost), not an LLM. Intervals are 95%; cost-of-pass "
           "is USD per unit of the environment's success event (a faithful win, welfare, surplus).")
from sim.frontier import frontier_chart  # noqa: E402

st.altair_chart(frontier_chart(df), width="stretch")
st.dataframe(df, hide_index=True, width="stretch")
hull = df.filter(pl.col("on_hull")).sort("spend_mean")
if hull.height:
    st.subheader("On the Pareto hull")
    st.dataframe(hull.select("cell", "spend_mean", "outcome_mean", "cop", "cop_lo", "cop_hi"), hide_index=True)
