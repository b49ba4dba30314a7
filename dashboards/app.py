"""Agora dashboards: one Streamlit app, one page per view, over a folder of run directories.

Start with ``agora dashboard --runs DIR`` (sets AGORA_RUNS) or
``AGORA_RUNS=DIR streamlit run dashboards/app.py``. Pages share the run
selection through ``st.session_state["selection"]``.
"""
from __future__ import annotations

import sys
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:  # `streamlit run` puts only dashboards/ on the path
    sys.path.insert(0, str(_REPO))

import streamlit as st  # noqa: E402

from dashboards import data  # noqa: E402

_PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="Agora dashboards", layout="wide")
# Pages check this to know app.py has run in this session (see the guard atop each page).
st.session_state["_agora_nav"] = True
nav = st.navigation([
    # the default page is served at /, whatever its url_path; a hidden twin keeps /runs working
    st.Page(_PAGES / "runs.py", title="Runs", icon=":material/table:", url_path="home", default=True),
    st.Page(_PAGES / "runs.py", title="Runs", icon=":material/table:", url_path="runs", visibility="hidden"),
    st.Page(_PAGES / "spend.py", title="Compute spend", icon=":material/payments:", url_path="spend"),
    # every environment's declared metrics, on one page generic over the registry
    st.Page(_PAGES / "environment.py", title="Environment metrics", icon=":material/monitoring:",
            url_path="environment"),
    st.Page(_PAGES / "trust.py", title="Trust (Traitors)", icon=":material/hub:", url_path="trust"),
    st.Page(_PAGES / "frontier.py", title="Frontier", icon=":material/show_chart:", url_path="frontier"),
    st.Page(_PAGES / "live.py", title="Live classroom", icon=":material/play_circle:", url_path="live"),
])
st.sidebar.caption(f"runs root: `{data.runs_root()}`")
nav.run()
