"""Streamlit pieces every page shares (kept apart from data.py, which has no Streamlit)."""
from __future__ import annotations

import polars as pl
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from dashboards import charts, data


def ensure_navigation() -> None:
    """Route a page opened directly at /<page> through app.py's st.navigation.

    On a fresh server Streamlit's legacy pages/ folder mode runs the page file
    without app.py; switch that mode off and rerun once so the same URL gets
    the app's titles, layout and shared sidebar.
    """
    if PagesManager.uses_pages_directory and not st.session_state.get("_agora_nav"):
        PagesManager.uses_pages_directory = False
        st.rerun()


def selected_run(env: str, key: str, missing: str, missing_level: str = "warning") -> data.Run:
    """The run chosen on this page among the selected runs of ``env``; stops the page otherwise."""
    root = data.runs_root()
    paths, notices = data.env_selection(root, data.selection(st.session_state, root), env)
    for n in notices:  # a selected run whose summary cannot be read: say so, show the others
        st.warning(n.message)
    if not paths:
        getattr(st, missing_level)(missing)
        st.stop()
    run = data.load_run(root, st.selectbox("run", paths, key=key))
    if isinstance(run, data.Notice):
        st.warning(run.message)
        st.stop()
    for w in run.warnings:
        st.info(w)
    return run


def tick_metrics(run: data.Run) -> pl.DataFrame:
    """The run's per-tick metrics; stops the page when there are none yet."""
    met = run.metrics
    if met.height == 0 or "tick" not in met.columns:
        st.info("This run has no per-tick metrics yet.")
        st.stop()
    return met


def metric_groups(met: pl.DataFrame, groups, x_title: str | None = None) -> int:
    """One line chart per ``(title, unit, columns)`` group that has numeric columns; returns how many."""
    shown = 0
    for title, unit, cols in groups:
        have = data.numeric_columns(met, cols)
        if have:
            args = (x_title,) if x_title else ()
            st.altair_chart(charts.multi_line(data.long_metrics(met, have), f"{title} over time", unit, *args),
                            width="stretch")
            shown += 1
    return shown
