"""Live classroom: run a game phase by phase, optionally with a person in one seat, and show it to a class.

The run is an ordinary run session (``sim.runner.Simulation``) on a background
thread kept in ``st.session_state`` (``dashboards/live_run.py``). "Next phase"
releases one phase of a ``PhaseGate``; "Run to end" opens it. A person's seat
is a ``HumanSeat``: while it waits for an answer the page shows one input for
the request's channel (``Environment.live.channels``): a public speech box, a
team box, a choice among the valid options only, or yes/no. "Finish run"
mid-game records ``status: abandoned``. The projector view shows public events
and the board only.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path

import streamlit as st

from dashboards import data, declared
from dashboards.live_run import LiveRun, active_runs, build_action, choices, observation, text_limit
from dashboards.ui import declared_outcome_tables, declared_tick_charts, ensure_navigation
from environments import registry

ensure_navigation()

WAIT_S = 20.0  # how long one page run waits for the agents before offering Refresh
INPUT_KEYS = {"speech": "live_speech", "team": "live_team", "choice": "live_choice", "yesno": "live_yesno"}


def build_config(env: str, llm: str, seed: int, path: Path | None, overrides: list[str]) -> dict:
    from sim.config import compose, preflight, to_dict

    cfg = to_dict(compose([f"env={env}", f"llm={llm}", f"seed={seed}", f"run.dir={path if path else 'null'}",
                           "run.progress=off", *overrides]))
    return preflight(cfg, path)  # the config as a run uses it (every default filled in)


def seat_ids(env: str, seed: int, overrides: list[str]) -> list[str]:
    """The players a person may take, from a scripted, in-memory setup of the same game (roles stay hidden)."""
    from sim.runner import Simulation

    cache = st.session_state.setdefault("_live_seats", {})
    key = (env, seed, tuple(overrides))
    if key not in cache:
        sim = Simulation(build_config(env, "scripted", seed, None, overrides), None)
        sim.start()
        cache[key] = [a.aid for a in sim.env.players()]
        sim.finish(status="abandoned")
    return cache[key]


def _send(live: LiveRun, asked: int, channel: str) -> None:
    """Answer the pending request from its input widget (a button callback, so it runs before the page)."""
    req = live.pending()
    if req is None or live.seat.asked != asked:
        return  # answered already (a double click) or the run moved on
    key = INPUT_KEYS[channel]
    try:
        action = build_action(req, channel, st.session_state.get(key))
    except ValueError as e:
        st.session_state["live_msg"] = str(e).splitlines()[0]
        return
    live.answer(action)
    st.session_state.pop(key, None)  # the next request starts with an empty input


def _finish(live: LiveRun) -> None:
    live.finish(timeout=WAIT_S)


def request_input(live: LiveRun) -> None:
    """The one input the pending request needs, and a Send button."""
    req = live.pending()
    ch = live.channel(req)
    st.markdown(f"**Your turn** ({req.purpose})")
    st.text(observation(req))
    limit = text_limit(req) if ch in ("speech", "team") else None
    if ch == "speech":
        st.text_area("what you say to everyone (public)", key=INPUT_KEYS[ch], max_chars=limit)
    elif ch == "team":
        st.text_area("message to your team only (never shown publicly)", key=INPUT_KEYS[ch], max_chars=limit)
    elif ch == "choice":
        st.selectbox("your choice", choices(req), index=None, placeholder="choose one", key=INPUT_KEYS[ch])
    elif ch == "yesno":
        st.radio("your answer", ["yes", "no"], index=None, key=INPUT_KEYS[ch], horizontal=True)
    st.button("Send", key="live_send", type="primary", on_click=_send, args=(live, live.seat.asked, ch))
    msg = st.session_state.pop("live_msg", None)
    if msg:
        st.warning(msg)


def projector(live: LiveRun) -> None:
    """Large public transcript and the board: nothing private (public events only, no roles)."""
    board = live.board()
    chips = " ".join(f"<span style='padding:0.2em 0.6em;margin:0.2em;border-radius:0.4em;display:inline-block;"
                     f"background:{'#d9f2d9' if alive else '#eee'};{'' if alive else 'text-decoration:line-through;'}'>"
                     f"{html.escape(p)}</span>" for p, alive in board.iter_rows())
    st.markdown(f"<div style='font-size:1.6rem'>{chips}</div>", unsafe_allow_html=True)
    lines = live.story().tail(25).iter_rows(named=True)
    body = "".join(f"<p><b>{html.escape(r['actor'])}</b> <small>({html.escape(r['kind'])})</small>: "
                   f"{html.escape(r['text'])}</p>" for r in lines)
    st.markdown(f"<div style='font-size:1.5rem;line-height:1.35'>{body}</div>", unsafe_allow_html=True)


# ---- sidebar: a new run, or a run in progress ---------------------------------------------
st.title("Live classroom")
root = data.runs_root()
live: LiveRun | None = st.session_state.get("live")

with st.sidebar:
    st.subheader("New live run")
    env_name = st.selectbox("environment", registry.ENVIRONMENTS, key="live_env")
    try:
        cls = registry.env_class(env_name)
    except Exception as e:  # noqa: BLE001 - an environment still under construction
        cls = None
        st.warning(f"{env_name} is not available in this checkout ({type(e).__name__}: {data.shown(e)})")
    llm = st.radio("agents", ("scripted", "local"), key="live_llm", horizontal=True,
                   help="scripted: rule-based policies (not an LLM); local: the embedded small model (slow)")
    seed = int(st.number_input("seed", 0, 10_000, 1, key="live_seed"))
    text = st.text_area("config overrides (one per line)", "\n".join(cls.quick) if cls else "",
                        key=f"live_overrides_{env_name}", help="prefilled with the environment's small-game settings")
    overrides = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    seat, problem = None, None
    if cls is not None and cls.live.human_seat:
        try:
            ids = seat_ids(env_name, seed, overrides)
        except Exception as e:  # noqa: BLE001 - a bad override: one line, no traceback
            ids, problem = [], str(e).splitlines()[0]
        pick = st.selectbox(f"take a {cls.live.seat_label} seat", ["none", *ids], key="live_seat")
        seat = None if pick == "none" else pick
    if problem:
        st.error(f"error: {problem}")
    start = st.button("Start new run", key="live_start", type="primary", disabled=cls is None or bool(problem))
    others = {n: r for n, r in active_runs().items() if r is not live}
    if others:
        st.subheader("Runs in progress")
        name = st.selectbox("attach this tab to", list(others), key="live_attach_pick")
        if st.button("Attach", key="live_attach"):
            live = st.session_state["live"] = others[name]

if start and cls is not None:
    if live is not None and not live.finished:
        live.finish(timeout=WAIT_S)  # a new run replaces this tab's old one, which ends abandoned
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    try:  # a runs root whose live/ links elsewhere must not receive the run's files
        path = data.confine(root, Path("live") / f"{env_name}-{stamp}-s{seed}")
        cfg = build_config(env_name, llm, seed, path, overrides)
    except Exception as e:  # noqa: BLE001 - refused path or bad config: one line
        st.error(f"error: {str(e).splitlines()[0]}")
        st.stop()
    live = st.session_state["live"] = LiveRun(cfg, path, seat)

if live is None:
    st.info("Start a run from the sidebar, then step it with Next phase.")
    st.stop()

# ---- where the run is ----------------------------------------------------------------------
show_projector = st.toggle("projector view (public events and the board only)", key="live_projector")
with st.spinner("the agents are deciding..."):
    state = live.settle(WAIT_S)
env = live.sim.env
seat_note = f"; a person plays **{live.seat.aid}**" if live.seat and not show_projector else ""
st.caption(f"{live.env_name}, run directory `{live.path.name}`{seat_note}")
if state == "parked":
    st.markdown(f"**Round/tick {live.gate.tick}**, after phase **{live.gate.phase}**")
elif state == "ask":
    st.markdown(f"**Round/tick {env.tick}**, phase **{env.phase}**: waiting for the person in seat "
                f"{live.seat.aid}")
elif state == "busy":
    st.info("The agents are still deciding.")
    st.button("Refresh", key="live_refresh")

c1, c2, c3 = st.columns(3)
c1.button("Next phase", key="live_next", on_click=live.next_phase, disabled=state != "parked")
c2.button("Run to end", key="live_run_end", on_click=live.run_to_end, disabled=state == "finished")
c3.button("Finish run", key="live_finish", on_click=_finish, args=(live,), disabled=state == "finished")

if show_projector:
    if state == "ask":
        st.info("Waiting for the person at the seat (they answer with the projector view off).")
    projector(live)
    st.stop()

# ---- the person's seat (private to them) -----------------------------------------------------
if live.seat is not None and state != "finished":
    agent = live.seat_agent()
    if agent is not None and not agent.alive:
        st.info(f"{live.seat.aid} is out of the game; the others play on.")
    elif agent is not None:
        st.subheader(f"Your seat: {agent.aid}" + (f" ({agent.role})" if agent.role else ""))
        if state == "ask":
            request_input(live)
        else:
            st.caption("Nothing to answer now.")
        with st.expander("what your seat has seen"):
            st.dataframe(live.story(viewer=agent.aid).drop("seq"), hide_index=True, width="stretch")

# ---- what happened -------------------------------------------------------------------------
st.subheader("What just happened")
new = live.story(live.mark)
if new.height:
    st.dataframe(new.select("tick", "phase", "actor", "kind", "text"), hide_index=True, width="stretch")
else:
    st.caption("nothing public since the last step")
with st.expander("public transcript so far"):
    st.dataframe(live.story().select("tick", "phase", "actor", "kind", "text"), hide_index=True, width="stretch")
board = live.board()
if board.height:
    with st.expander("board"):
        st.dataframe(board, hide_index=True, width="stretch")

specs = declared.specs_of(live.env_name)
if state != "busy":
    met = live.metrics()
    if met.height:
        with st.expander("metrics so far", expanded=True):
            declared_tick_charts(met, specs)

if state == "finished":
    res = live.result
    if res is None:
        st.error(f"The run did not start: {type(live.error).__name__}: {data.shown(live.error)}")
    else:
        st.success(f"Run finished ({res.summary['status']}); it is listed on the Runs page.")
        if res.summary.get("error"):
            st.error(res.summary["error"])
        declared_outcome_tables(res.summary.get("outcome"), specs)
