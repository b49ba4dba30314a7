"""Compute spend: where the money (or shadow money) went, for every environment."""
from __future__ import annotations

import streamlit as st

import polars as pl

from dashboards import charts, data, declared
from dashboards.ui import decision_health, ensure_navigation

ensure_navigation()

st.title("Compute spend")
root = data.runs_root()
runs, notices = data.load_runs(root, data.selection(st.session_state, root))
for n in notices:
    st.warning(n.message)
if not runs:
    st.info("No readable runs selected. Pick runs on the Runs page.")
    st.stop()

# ---- across the selected runs -------------------------------------------------------
st.subheader("Selected runs side by side")
comp = data.comparison_table(runs)
st.dataframe(comp, hide_index=True, width="stretch")
# Each environment's own outcome values (per-USD ones included), as its runs wrote them.
by_env: dict[str, list[data.Run]] = {}
for r in runs:
    by_env.setdefault(r.env, []).append(r)
for env, env_runs in by_env.items():
    specs = declared.specs_of(env)
    if any(s.source == "outcome" for s in specs):
        st.caption(f"{env}: declared outcome metrics, as written in summary.json")
        st.dataframe(declared.outcome_table([r.label for r in env_runs],
                                            [r.summary.get("outcome") for r in env_runs], specs,
                                            [data.run_usd(r.summary) for r in env_runs]),
                     hide_index=True, width="stretch")
    # per-dollar figures pool only comparable runs: same model, status, seats, degraded or not, USD unit
    for s in specs:
        if s.source == "outcome" and declared.is_per_usd(s) and s.key.endswith("_per_usd"):
            base = s.key[: -len("_per_usd")]
            if any(base in (r.summary.get("outcome") or {}) for r in env_runs):
                st.caption(f"{env}: {s.title} per comparable group (total {base} / total spend, in the group's unit)")
                st.dataframe(data.per_usd_by_group(env_runs, base, s.title), hide_index=True, width="stretch")
units = sorted(set(comp["usd_unit"].to_list()))
if comp.height > 1:
    st.altair_chart(charts.compare_bars(comp, "usd", "Spend per selected run", f"spend ({' / '.join(units)})"),
                    width="stretch")
    if len(units) > 1:
        st.caption("the selected runs mix cash USD and shadow USD (priced, never billed): compare within a unit")

# ---- one run in detail -----------------------------------------------------------------
st.subheader("One run in detail")
labels = [r.label for r in runs]
run = runs[labels.index(st.selectbox("run", labels, key="spend_run"))]
for w_ in run.warnings:
    st.info(w_)
from sim.frontier import cell_of_run  # noqa: E402

in_frontier = cell_of_run(run.path, root)
if in_frontier:  # a game of a swept `agora frontier`: its cell, and the frontier it belongs to
    where, cell = in_frontier
    st.markdown(f"Frontier cell **{cell}** of `{data.relative(root, where) or '.'}/frontier.parquet`")
    st.session_state["frontier_pick"] = str(where / "frontier.parquet")
    st.session_state["frontier_cell"] = cell
    st.page_link("pages/frontier.py", label=f"Open cell {cell} on the Frontier page")
llm = run.summary.get("llm") or {}
if llm.get("is_llm") is False:
    st.caption(str(llm.get("note") or "no call was answered by a language model: not an LLM run"))
unit = data.usd_unit(run.summary)
led = run.ledger
counts = data.outcome_counts(led)
cols = st.columns(7)
for c, k in zip(cols, ("calls", "ok", "truncated", "denied", "fallback", "failed", "invalid")):
    c.metric("calls (replies)" if k == "calls" else f"{k} attempts", counts[k],
             help="replies a model returned: the count agora run, agora report and summary.llm.calls show"
             if k == "calls" else None)
decision_health(run)
if led.height == 0:
    st.info("This run has no ledger rows yet.")
    st.stop()
spend = data.spend_over_ticks(led, run.summary.get("budget_usd"))
st.altair_chart(charts.line(spend, "tick", "usd", f"Spend per tick ({unit})", "tick (engine step)", f"spend ({unit})"),
                width="stretch")
tokens = data.tokens_over_ticks(led)
if tokens["tokens"].sum() > 0:
    st.altair_chart(charts.tokens_chart(tokens), width="stretch")
else:
    st.caption("no tokens in this run (scripted decisions use none)")
caps = data.budget_caps(data.read_config(data.runs_root(), run.path))
shares = data.budget_left_shares(led, caps)
if shares.height:
    st.altair_chart(charts.budget_share_lines(shares, f"Budget left, as a share of each cap ({unit})"), width="stretch")
    last = shares.sort("tick").group_by("cap").agg(pl.col("share_left").last()).sort("share_left")
    st.caption("; ".join(f"{r['cap']} cap ${caps[r['cap']]:g}: {r['share_left']:.2%} left"
                         + (" (bound)" if r["share_left"] <= 0 else "") for r in last.iter_rows(named=True))
               + "".join(f"; {k} cap ${v:g} (team members are not in the ledger: not drawn)"
                         for k, v in caps.items() if k.startswith("team ")))
else:
    st.altair_chart(charts.spend_lines(spend, f"Cumulative spend ({unit}); no budget cap set", unit), width="stretch")
c1, c2 = st.columns(2)
for col, key, unit in ((c1, "agent", "agent"), (c2, "phase", "phase"), (c1, "purpose", "purpose"),
                       (c2, "model", "model")):
    by = data.spend_by(led, key)
    if by.height:
        metric = "usd" if by["usd"].sum() > 0 else "attempts"
        col.altair_chart(charts.bars(by, key, metric, f"{'Spend' if metric == 'usd' else 'Attempts'} by {unit}",
                                     unit, f"spend ({data.usd_unit(run.summary)})" if metric == "usd"
                                     else "attempts (count)"),
                         width="stretch")
