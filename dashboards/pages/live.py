"""Live classroom: step a run tick by tick and watch the plots move; optionally take one Traitors seat.

The page drives ``sim.runner.Simulation`` itself, doing per tick what
``Simulation.run`` does (attach services on one ``asyncio.Runner``, setup,
step, metrics row, checkpoint) and calling its finish at the end, so a live
run is an ordinary run directory afterwards (the Runs page lists it).

Human seat (Traitors only): while a tick is stepped, the env *instance* gets an
``act_all`` attribute wrapping the class method. Requests for the human's seat
are answered from the page's widgets (speech text, banish vote, murder vote)
with the same pydantic action class the agent would return; everybody else goes
through the normal client (scripted or LLM). The wrapper is removed right after
the step, so checkpoints pickle a plain environment. The human's belief probe
uses the scripted policy. Each human decision is logged as a private
``human_action`` event so the run records that a person played that seat.
"""
from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st
import yaml
from pydantic import ValidationError

from dashboards import charts, data
from sim.engine import BudgetExhausted, Services
from sim.inference.client import ActResult
from sim.rundir import RunDir, atomic_write_bytes

from dashboards.ui import ensure_navigation

ensure_navigation()

ENVS = ("traitors", "taxation", "market")
SPEECH_PURPOSES = ("speak", "react", "conclave")
VOTE_PURPOSES = ("vote", "murder")


def env_available(name: str) -> str | None:
    """None when the environment can be imported, else why not (it may still be under construction)."""
    from environments import registry

    try:
        registry.env_class(name)
    except Exception as e:  # noqa: BLE001
        return f"{type(e).__name__}: {e}"
    return None


def human_result(env, req, inputs: dict[str, Any]) -> ActResult:
    """The human's answer to one request, built with the request's own action class; fallback if unusable."""
    action, source = None, "human"
    try:
        if req.purpose in SPEECH_PURPOSES and (inputs.get("speech") or "").strip():
            action = req.action_cls(text=inputs["speech"].strip()[:160])
        elif req.purpose in VOTE_PURPOSES and inputs.get(req.purpose):
            action = req.action_cls(target=inputs[req.purpose])
        if action is not None and req.validate is not None and req.validate(action):
            action = None
    except ValidationError:
        action = None
    if action is None:  # nothing typed, a dead/self target, or a decision the page does not ask (beliefs)
        action, source = req.fallback(), "scripted"
    env.emit("human_action", {"purpose": req.purpose, "source": source}, actor=req.agent.aid,
             visibility=f"private:{req.agent.aid}")
    return ActResult(action, True, source, "")


def with_human(env, seat: str, inputs: dict[str, Any]):
    """An act_all for this env instance that answers ``seat``'s requests from ``inputs``."""
    original = type(env).act_all.__get__(env)

    def act_all(requests):
        others = iter(original([r for r in requests if r.agent.aid != seat]))
        return [human_result(env, r, inputs) if r.agent.aid == seat else next(others) for r in requests]

    return act_all


class LiveRun:
    """One Simulation driven by the page, tick by tick, on its own asyncio.Runner."""

    def __init__(self, cfg: dict, path: Path, seat: str | None = None):
        from sim.config import secret_free
        from sim.runner import Simulation

        self.path, self.seat, self.error = path, seat, None
        rd = RunDir(path).create()
        atomic_write_bytes(path / "config.yaml", yaml.safe_dump(secret_free(cfg), sort_keys=True).encode())
        self.sim = Simulation(cfg, rd)
        self.runner = asyncio.Runner()
        self.t0 = time.perf_counter()
        self.result = None
        env = self.sim.env
        env.attach(Services(self.sim.client, self.sim.events, self.runner,
                            int(cfg.get("engine", {}).get("concurrency", 8)), on_events=self.sim._deliver))
        self.sim.events.emit(0, "setup", "engine", "run_start",
                             {"env": cfg["env"]["name"], "seed": cfg["seed"], "provider": cfg["llm"]["provider"],
                              "model": cfg["llm"]["model"], "is_llm": cfg["llm"]["provider"] != "scripted",
                              "human_seat": seat})
        env.setup()
        self.sim._deliver()
        self.sim._checkpoint()

    @property
    def finished(self) -> bool:
        return self.result is not None

    def done(self) -> bool:
        env = self.sim.env
        return (env.status != "running" or env.is_done()
                or env.steps >= int(self.sim.cfg["run"].get("max_ticks", 10000)))

    def step(self, inputs: dict[str, Any] | None = None) -> None:
        """One tick, exactly as Simulation.run does it; finishes the run when the game is over."""
        if self.finished:
            return
        env = self.sim.env
        if self.seat:
            env.act_all = with_human(env, self.seat, inputs or {})
        try:
            env.step()
        except BudgetExhausted:
            env.status = "aborted_budget"
        except Exception as e:  # noqa: BLE001 - recorded in the summary like a CLI run
            env.status, self.error = "failed", e
        finally:
            env.__dict__.pop("act_all", None)
        self.sim.metrics_rows.append({"tick": env.tick, **env.tick_metrics()})
        self.sim._checkpoint(self.t0)
        if self.done():
            self.finish()

    def finish(self) -> None:
        if self.finished:
            return
        env = self.sim.env
        if env.status == "running":
            env.status = "completed"
        self.sim._close_providers(self.runner)
        self.runner.close()
        self.sim.events.emit(env.tick, "end", "engine", "run_end", {"status": env.status})
        self.result = self.sim._finish(time.perf_counter() - self.t0, self.error)

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        s = self.sim
        met = pl.DataFrame(s.metrics_rows) if s.metrics_rows else pl.DataFrame({"tick": []}, schema={"tick": pl.Int64})
        return s.events.frame(), s.ledger.frame(), met


def build_config(env: str, llm: str, seed: int, path: Path, extra: list[str]) -> dict:
    from sim.config import compose, to_dict

    return to_dict(compose([f"env={env}", f"llm={llm}", f"seed={seed}", f"run.dir={path}",
                            "run.progress=off", *extra]))


def draw(live: LiveRun, box) -> None:
    """Plots of the run so far into a placeholder (redrawn after every tick)."""
    ev, led, met = live.frames()
    env = live.sim.env
    with box.container():
        c = st.columns(4)
        c[0].metric("tick", env.tick)
        c[1].metric("status", "finished: " + env.status if live.finished else env.status)
        c[2].metric("events", ev.height)
        c[3].metric("LLM attempts", led.height)
        cols = data.numeric_columns(met)
        if met.height and cols:
            st.altair_chart(charts.multi_line(data.long_metrics(met, cols), f"{env.name}: metrics per tick",
                                              "value (see metric)"), width="stretch")
        spend = data.spend_over_ticks(led, live.sim.cfg["budget"].get("run_usd"))
        if spend.height:
            st.altair_chart(charts.spend_lines(spend, "Cumulative spend and budget remaining"), width="stretch")


# ---- page ---------------------------------------------------------------------------
st.title("Live classroom")
root = data.runs_root()
live: LiveRun | None = st.session_state.get("live")

with st.sidebar:
    st.subheader("New live run")
    env_name = st.selectbox("environment", ENVS, key="live_env")
    why = env_available(env_name)
    llm = st.radio("agents", ("scripted", "local"), key="live_llm", horizontal=True,
                   help="scripted: rule-based policies (not an LLM); local: the embedded small model (slow)")
    seed = int(st.number_input("seed", 0, 10_000, 1, key="live_seed"))
    extra: list[str] = []
    seat = None
    if env_name == "traitors":
        n = int(st.number_input("players", 4, 20, 6, key="live_n"))
        t = int(st.number_input("traitors", 1, max(1, (n - 1) // 2), 1, key="live_t"))
        extra += [f"env.n_players={n}", f"env.n_traitors={t}"]
        choice = st.selectbox("human seat", ["none", *[f"p{i}" for i in range(1, n + 1)]], key="live_seat")
        seat = None if choice == "none" else choice
    else:
        extra.append(f"run.max_ticks={int(st.number_input('max ticks', 1, 500, 20, key='live_ticks'))}")
    start = st.button("Start new run", key="live_start", disabled=why is not None, type="primary")

if why is not None:
    st.warning(f"The {env_name} environment is not available in this checkout yet ({why}).")
if start and why is None:
    if live is not None and not live.finished:
        live.finish()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
    try:  # a runs root whose live/ links elsewhere must not receive the run's files
        path = data.confine(root, Path("live") / f"{env_name}-{stamp}-s{seed}")
    except data.PathRefused as e:
        st.error(str(e))
        st.stop()
    live = LiveRun(build_config(env_name, llm, seed, path, extra), path, seat)
    st.session_state["live"] = live

if live is None:
    st.info("Start a run from the sidebar, then press Step or Play.")
    st.stop()

st.caption(f"run directory: `{live.path}`" + (f"; you play seat **{live.seat}**" if live.seat else ""))
inputs: dict[str, Any] = {}
if live.seat and not live.finished:
    env = live.sim.env
    me = env.by_id[live.seat]
    ev = live.sim.events.frame()
    roles = data.player_roles(ev)
    if not me.alive:
        st.info(f"{live.seat} is out of the game; the others play on.")
    else:
        st.subheader(f"Your seat: {live.seat} ({me.role})")
        others = [a.aid for a in env.alive() if a.aid != live.seat]
        inputs["speech"] = st.text_area("what you say at the round table this round", key="live_speech",
                                        max_chars=160)
        inputs["vote"] = st.selectbox("your banishment vote", others, key="live_vote")
        if me.role == "traitor":
            faithful = [a.aid for a in env.alive("faithful")]
            inputs["murder"] = st.selectbox("your murder vote (traitors' night)", faithful, key="live_murder")
    with st.expander("what your seat has seen", expanded=False):
        st.dataframe(data.transcript(ev, live.seat, roles), hide_index=True, width="stretch")

c1, c2, c3, c4 = st.columns(4)
step = c1.button("Step", key="live_step", disabled=live.finished)
ticks = int(c2.number_input("ticks to play", 1, 200, 5, key="live_play_n"))
play = c3.button("Play", key="live_play", disabled=live.finished)
stop = c4.button("Finish run", key="live_finish", disabled=live.finished)
box = st.empty()
if step:
    live.step(inputs)
if play:
    for _ in range(ticks):
        if live.finished:
            break
        live.step(inputs)
        draw(live, box)  # watch the plots move tick by tick
if stop:
    live.finish()
draw(live, box)
if live.finished:
    st.success(f"Run finished ({live.result.summary['status']}); it is listed on the Runs page.")
    if live.result.summary.get("error"):
        st.error(live.result.summary["error"])
elif live.seat is None and env_name == "traitors" and live.sim.env.name == "traitors":
    with st.expander("public transcript so far"):
        ev = live.sim.events.frame()
        st.dataframe(data.transcript(ev, "public", data.player_roles(ev)), hide_index=True, width="stretch")
