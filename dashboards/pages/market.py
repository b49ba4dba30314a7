"""Market: prices, spread, volume and book depth of the continuous double auction."""
from __future__ import annotations

import streamlit as st

from dashboards import data

from dashboards.ui import ensure_navigation, metric_groups, selected_run, tick_metrics

ensure_navigation()

GROUPS = (
    ("Prices", "price (currency units)", ("last_price", "mid", "best_bid", "best_ask", "fundamental", "vwap")),
    ("Spread", "spread (currency units)", ("spread",)),
    ("Volume", "volume (units traded per tick)", ("volume", "trades")),
    ("Book depth", "resting quantity (units)", ("bid_depth", "ask_depth")),
    ("Surplus and efficiency", "surplus (currency units) / efficiency (fraction)",
     ("realised_surplus", "surplus", "efficiency", "allocative_efficiency")),
)

st.title("Market")
run = selected_run("market", "market_run", "No market runs under the runs root (or none selected). Produce one with "
                                           "`agora run env=market llm=scripted run.dir=<root>/market/s1 seed=1`.")
met = tick_metrics(run)
shown = metric_groups(met, GROUPS)
missing = [c for c in ("last_price", "spread", "volume", "bid_depth", "ask_depth") if c not in met.columns]
if missing:
    st.caption("not in this run's metrics: " + ", ".join(missing))
if not shown:
    st.info("metrics.parquet has no numeric columns this page knows; columns: " + ", ".join(met.columns))
u = data.run_usd(run.summary)
s = data.pick_value(run, data.SURPLUS_KEYS)
c1, c2 = st.columns(2)
c1.metric("surplus", "n/a" if s is None else f"{s:.4g}")
spd = data.per_dollar(s, u)
c2.metric("surplus per USD", "n/a (no spend)" if spd is None else f"{spd:.4g}")
with st.expander("outcome"):
    st.json(run.summary.get("outcome") or {})
