"""Streamlit pieces every page shares (kept apart from data.py, which has no Streamlit)."""
from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from dashboards import data


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
    paths = data.selection(st.session_state, root, env=env)
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
