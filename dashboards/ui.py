"""Streamlit pieces every page shares (kept apart from data.py, which has no Streamlit)."""
from __future__ import annotations

from typing import Sequence

import polars as pl
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from dashboards import charts, data, declared
from sim.engine import MetricSpec


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


def declared_tick_charts(met: pl.DataFrame, specs: Sequence[MetricSpec],
                         x_title: str = "tick (engine step)", markers: Sequence[dict] = ()) -> list[str]:
    """One line chart per declared group (one per unit inside a group), with ``markers`` (a shock tick)
    drawn as rules; a group this run wrote no values for is named, not drawn empty. Returns the titles drawn."""
    titles = []
    for group, gspecs in declared.tick_groups(specs).items():
        units = declared.by_unit(gspecs)
        slots = st.columns(2) if len(units) > 1 else [st.container()]  # a group's charts side by side
        for i, (unit, uspecs) in enumerate(units.items()):
            title = declared.chart_title(group, unit, len(units))
            long = declared.long_series(met, uspecs)
            slot = slots[i % len(slots)]
            if long.height == 0:  # e.g. efficiency in an asset market: undefined, not zero
                slot.caption(f"{title}: no values in this run (" + ", ".join(s.title for s in uspecs)
                             + " not defined for its setup)")
                continue
            slot.altair_chart(charts.with_markers(charts.multi_line(long, title, unit or "value (no unit)", x_title),
                                                  markers), width="stretch")
            notes = [f"{s.title}: {s.doc}" for s in uspecs if s.doc]
            if notes:
                slot.caption("; ".join(notes))
            titles.append(title)
    return titles


def decision_health(run: data.Run, purposes: Sequence[str] | None = None) -> None:
    """Model decisions of the run that the scripted fallback answered or the output cap cut, per purpose.

    Shown wherever a page draws what those decisions produced, so a fallback is never silent.
    """
    t = data.decisions_by_purpose(run.ledger)
    if purposes is not None:
        t = t.filter(pl.col("purpose").is_in(list(purposes)))
    if t.height == 0:
        return
    fb, cut = int(t["fallbacks"].sum()), int(t["truncated"].sum())
    msg = (f"Model decisions: {int(t['decisions'].sum())}; answered by the scripted fallback: {fb}; "
           f"replies cut by the output cap (truncated): {cut}")
    (st.warning if fb or cut else st.caption)(msg + (" (status degraded)" if data.is_degraded(run.summary) else ""))
    if fb or cut:
        st.dataframe(t, hide_index=True, width="content",
                     column_config={"fallback_share": st.column_config.NumberColumn("fallback share", format="%.2f")})


def declared_outcome_tables(outcome: dict | None, specs: Sequence[MetricSpec], spent: float | None = None,
                            usd_unit: str = "USD") -> list[str]:
    """One table per declared outcome group, values as written in summary.json; returns the group titles."""
    titles = []
    for group, gspecs in declared.outcome_groups(specs).items():
        title = declared.group_title(group)
        st.subheader(title)
        st.dataframe(declared.outcome_rows(gspecs, outcome, spent, usd_unit), hide_index=True, width="stretch")
        titles.append(title)
    return titles
