"""Trust (Traitors): who trusts whom, how well beliefs track roles, votes, and the transcript by viewer."""
from __future__ import annotations

import polars as pl
import streamlit as st

from dashboards import charts, data
from dashboards.ui import decision_health, ensure_navigation, selected_run
from environments.traitors import metrics as tm
from environments.traitors import views
from environments.traitors.legibility import legibility

ensure_navigation()

st.title("Trust (Traitors)")
run = selected_run("traitors", "trust_run", "No traitors runs selected or found. Produce one with "
                                            "`agora run llm=scripted run.dir=<root>/traitors/s1 seed=1`.", "info")
ev = run.events
if ev.height == 0:
    st.info("This run has no events yet.")
    st.stop()

try:
    view = views.build_view(ev, run.round_metrics)
except views.PAYLOAD_ERRORS as e:
    st.warning(f"{run.path.name}: events.parquet does not hold readable Traitors events "
               f"({type(e).__name__}: {data.shown(e)})")
    st.stop()
reveal = st.toggle("reveal roles", value=False, key="reveal_roles",
                   help="colour players by their true role (spoilers: the game hides them)")
points = view.points
rounds = sorted(points["tick"].unique().to_list())

# ---- trust matrix and graph ------------------------------------------------------------
st.subheader("Trust per round")
decision_health(run)
if not rounds:
    st.info("No trust data: " + data.no_beliefs_reason(run.summary, data.read_config(data.runs_root(), run.path), ev)
            + ".")
else:
    k = st.select_slider("round", rounds, value=rounds[-1], key="trust_round") if len(rounds) > 1 else rounds[0]
    mat = points.filter(pl.col("tick") == k)
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.heatmap(mat, "j", "i", "trust", f"Trust matrix, round {k}", "trusted player (j)",
                                   "rater (i)", "trust (points of 10)"), width="stretch")
    G = data.read_trust_graph(data.runs_root(), run.path, k)
    if G is None:
        c2.info("No trust GraphML for this round (written when the run finishes).")
    else:
        nodes, edges = data.graph_layout(G, seed=int(run.summary.get("seed") or 0), min_weight=0.0)
        c2.altair_chart(charts.trust_graph(nodes, edges, f"Trust graph, round {k} (GraphML)", reveal),
                        width="stretch")

# ---- calibration and round metrics -------------------------------------------------------
st.subheader("Beliefs and suspicion")
c1, c2 = st.columns(2)
cal = view.calibration
if cal.height:
    c1.altair_chart(charts.calibration(cal), width="stretch")
else:
    c1.info("No faithful belief probes to calibrate.")
rm = view.rounds
if charts.present(rm, ["tick", "suspicion_gap"]):
    c2.altair_chart(charts.line(rm.drop_nulls("suspicion_gap"), "tick", "suspicion_gap",
                                "Suspicion gap over rounds", "round",
                                "mean P(traitor | traitor) - P(traitor | faithful) (probability)"),
                    width="stretch")
else:
    c2.info("No suspicion gap (needs belief probes).")

# ---- legibility ---------------------------------------------------------------------------
st.subheader("Legibility")
leg = legibility(ev)  # from the events, so runs written before these outcome keys show them too


def _shown(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


c1, c2, c3 = st.columns(3)
c1.metric("Legible speech share", _shown(leg["legible_speech_share"]),
          help="speeches by their agent that name a player, have 3-40 words, no markup and no echoed "
               "prompt scaffolding (higher is better)")
c2.metric("Belief |rho| with seat order", _shown(leg["belief_seat_rho"]),
          help="mean |Spearman rho| of each belief vector with seat order; 1 is a copied ramp (lower is better)")
c3.metric("Belief rho with the truth", _shown(leg["belief_truth_rho"]),
          help="mean Spearman rho of faithful raters' beliefs with who is a traitor (higher is better)")

# ---- votes -------------------------------------------------------------------------------
st.subheader("Vote flows")
votes = view.banish_votes
if votes.height:
    st.altair_chart(charts.vote_flows(votes, "Banishment votes per round", reveal), width="content")
else:
    st.info("No banishment votes yet.")

# ---- transcript --------------------------------------------------------------------------
st.subheader("Transcript")
roles = view.roles
viewers = ["public", views.TEAM, *sorted(roles, key=lambda p: (len(p), p))]
viewer = st.selectbox("view as", viewers, key="view_as",
                      format_func=lambda v: {"public": "public (what everyone sees)",
                                             views.TEAM: "traitors team"}.get(v, f"player {v}"))
tr = views.transcript(ev, viewer, roles)
st.caption(f"{tr.height} events visible to {viewer}")
st.dataframe(tr, hide_index=True, width="stretch")

# ---- cost of a faithful win over the selected games ----------------------------------------
st.subheader("Compute per faithful win")
root = data.runs_root()
games, _ = data.load_runs(root, data.selection(st.session_state, root, "traitors"))
# never pooled across unlike runs: one figure per comparable group (model, status, seats, degraded, USD unit)
groups: dict[tuple, list] = {}
for g in games:
    groups.setdefault(data.comparable_key(g.summary), []).append(g)
cop_rows = []
for (model, status, human, degraded, unit), gs in sorted(groups.items()):
    rows = [{"winner": (g.summary.get("outcome") or {}).get("winner"), "usd": data.run_usd(g.summary)} for g in gs]
    cop = tm.usd_per_faithful_win(rows)
    cop_rows.append({"model": model, "status": status, "human seats": human, "degraded": degraded, "runs": len(gs),
                     "faithful wins": sum(r["winner"] == "faithful" for r in rows),
                     f"spend per faithful win": "n/a (no faithful win)" if cop is None else f"{cop:.6f} {unit}"})
st.dataframe(pl.DataFrame(cop_rows), hide_index=True, width="stretch")
st.caption("total spend of a group's runs / its faithful wins; groups differ in model, status, human seats, "
           "degraded or not, or USD unit (shadow USD is priced, never billed)")
