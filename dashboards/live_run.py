"""A live classroom run: the public run session on a background thread, stepped one phase at a time.

No Streamlit here (``dashboards/pages/live.py`` draws it), so it can be driven
and tested without a browser. The run thread owns the ``Simulation`` from
``start()`` to ``finish()``; the page only talks to it through the two
hand-offs the engine provides:

- a ``PhaseGate`` (``after_phase``): the run parks after every phase until the
  page releases one phase ("Next phase") or opens the gate ("Run to end");
- a ``HumanSeat`` for the person's agent: the run waits in ``ask`` until the
  page answers the pending request (purposes the environment's ``live.channels``
  do not list are answered by the seat's scripted policy).

Ending mid-game closes the seat and makes the gate raise at the next phase
boundary, so the run thread finishes the run as ``abandoned``. The run
directory is an ordinary one throughout (the Runs page lists it).
"""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Callable

import polars as pl
from pydantic import BaseModel

from environments import registry
from sim.engine import ActRequest, HumanSeat, PhaseGate, SeatClosed
from sim.events import filter_visible
from sim.runner import RunResult, open_session

# the engine's own bookkeeping kinds: not part of the story a class follows
BOOKKEEPING = ("run_start", "run_end", "phase_start", "phase_end")

# live runs of this server process, so a reopened tab (or a projector tab) can attach to one
ACTIVE: dict[str, "LiveRun"] = {}
_ACTIVE_LOCK = threading.Lock()


def active_runs() -> dict[str, "LiveRun"]:
    """Live runs of this process still in progress (finished ones are dropped)."""
    with _ACTIVE_LOCK:
        for name in [n for n, r in ACTIVE.items() if r.finished]:
            ACTIVE.pop(name)
        return dict(ACTIVE)


class Stopped(Exception):
    """The page ended the run mid-game."""


class LiveGate(PhaseGate):
    """A ``PhaseGate`` that counts its stops and can end the run at the next boundary."""

    def __init__(self) -> None:
        super().__init__()
        self.parks = 0  # phase boundaries reached so far (the page tells a new stop from a released one)
        self.stopping = False

    def __call__(self, env) -> None:
        self.parks += 1
        super().__call__(env)
        if self.stopping:
            raise Stopped()


class LiveRun:
    """One run driven by the live page. States: ``parked``, ``ask``, ``busy``, ``finished``."""

    def __init__(self, cfg: dict, path: Path, seat: str | None = None):
        self.path = Path(path)
        self.env_name = str(cfg["env"]["name"])
        self.options = registry.env_class(self.env_name).live
        self.sim = open_session(cfg, path=self.path)
        self.seat = HumanSeat(seat) if seat else None
        self.gate = LiveGate()
        self.released = 0  # gate stops the page has released
        self.mark = 0  # first event of "what just happened"
        self.result: RunResult | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"live-{self.path.name}", daemon=True)
        with _ACTIVE_LOCK:
            ACTIVE[self.path.name] = self
        self.thread.start()

    # ---- the run thread ------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.sim.start(humans={self.seat.aid: self.seat} if self.seat else None, after_phase=self.gate)
        except Exception as e:  # noqa: BLE001 - shown on the page; nothing was started
            self.error = e
            return
        status, error = None, None
        try:
            while self.sim.step():
                pass
        except (Stopped, SeatClosed):
            status = "abandoned"
        except Exception as e:  # noqa: BLE001 - recorded in the summary like a CLI run
            status, error = "failed", e
        try:
            self.result = self.sim.finish(status=status, error=error)
        except Exception as e:  # noqa: BLE001
            error = error or e
        self.error = error

    # ---- what the page reads -------------------------------------------------------
    @property
    def finished(self) -> bool:
        return not self.thread.is_alive()

    def pending(self) -> ActRequest | None:
        """The seat's request awaiting an answer, if any."""
        return self.seat.wait_pending(timeout=0) if self.seat is not None else None

    def channel(self, req: ActRequest) -> str | None:
        """The input a person gives for ``req`` (speech, team, choice, yesno); None: the seat's script answers."""
        if not req.agent.alive:
            return None
        return self.options.channels.get(req.purpose)

    def state(self) -> str:
        if self.finished:
            return "finished"
        if self.pending() is not None:
            return "ask"
        if self.gate.waiting and self.gate.parks > self.released:
            return "parked"
        return "busy"

    def settle(self, timeout: float) -> str:
        """Wait (up to ``timeout`` s) until the run needs the page: parked, asking the person, or finished.

        Requests the page does not ask a person (e.g. a belief probe) get the seat's scripted answer here.
        """
        deadline = time.monotonic() + timeout
        while True:
            s = self.state()
            if s == "ask":
                req = self.pending()
                if req is not None and self.channel(req) is None:
                    self.seat.answer(None)
                    continue
                if req is None:
                    continue
            if s != "busy" or time.monotonic() >= deadline:
                return s
            self.thread.join(0.02)  # a short timed wait on the run thread, not a sleep

    # ---- what the page does ----------------------------------------------------------
    def next_phase(self) -> None:
        self.mark = len(self.sim.events)
        self.released = self.gate.parks
        self.gate.release()

    def run_to_end(self) -> None:
        self.mark = len(self.sim.events)
        self.released = self.gate.parks
        self.gate.open()

    def answer(self, action: BaseModel) -> None:
        self.mark = len(self.sim.events)
        self.seat.answer(action)

    def finish(self, timeout: float = 60.0) -> bool:
        """End the run: completed when the game is over, else abandoned. True once the thread is done."""
        if not self.finished:
            parked_at_end = self.gate.waiting and self.sim.env.is_done()
            if not parked_at_end:
                self.gate.stopping = True
                if self.seat is not None:
                    self.seat.close()
            self.gate.open()
        self.thread.join(timeout)
        if self.finished:
            with _ACTIVE_LOCK:
                ACTIVE.pop(self.path.name, None)
        return self.finished

    # ---- views (read while the run waits for the page) --------------------------------
    def seat_agent(self):
        if self.seat is None:
            return None
        return next((a for a in self.sim.env.players() if a.aid == self.seat.aid), None)

    def board(self) -> pl.DataFrame:
        """Every player and whether they are still in the game (public)."""
        rows = [{"player": a.aid, "in game": bool(a.alive)} for a in self.sim.env.players()]
        return pl.DataFrame(rows, schema={"player": pl.Utf8, "in game": pl.Boolean}, orient="row")

    def story(self, start: int = 0, viewer: str | None = None) -> pl.DataFrame:
        """Events from ``start`` as lines: public only, or what ``viewer`` (the seat) could see."""
        ev = self.sim.events.frame(start)
        if viewer is None:
            ev = ev.filter(pl.col("visibility") == "public")
        else:
            agent = self.seat_agent()
            ev = filter_visible(ev, viewer=viewer, teams=agent.teams if agent is not None else ())
        ev = ev.filter(~pl.col("kind").is_in(BOOKKEEPING) & (pl.col("kind") != "llm_call"))
        return ev.with_columns(pl.col("payload").map_elements(describe, return_dtype=pl.Utf8).alias("text")) \
            .select("seq", "tick", "phase", "actor", "kind", "visibility", "text")

    def metrics(self) -> pl.DataFrame:
        rows = list(self.sim.metrics_rows)
        return pl.DataFrame(rows) if rows else pl.DataFrame(schema={"tick": pl.Int64})


def describe(payload: str, limit: int = 300) -> str:
    """One line for an event payload: its ``text`` when it has one, else ``key=value`` pairs."""
    try:
        d = json.loads(payload)
    except (TypeError, ValueError, RecursionError):
        return str(payload)[:limit]
    if not isinstance(d, dict):
        return str(payload)[:limit]
    if isinstance(d.get("text"), str):
        return d["text"][:limit]
    parts = []
    for k, v in d.items():
        v = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
        parts.append(f"{k}={v if len(v) <= 60 else v[:57] + '...'}")
    line = ", ".join(parts)
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ---- building the person's action from the request's own schema ------------------------


def _field(action_cls: type[BaseModel], want: Callable[[dict], bool]) -> tuple[str, dict]:
    props = action_cls.model_json_schema().get("properties", {})
    for name, prop in props.items():
        if want(prop):
            return name, prop
    raise ValueError(f"{action_cls.__name__} has no field this input can fill")


def _is_text(p: dict) -> bool:
    return p.get("type") == "string" and "enum" not in p


def _is_choice(p: dict) -> bool:
    return "enum" in p


def _is_flag(p: dict) -> bool:
    return p.get("type") == "boolean"


def text_limit(req: ActRequest) -> int | None:
    return _field(req.action_cls, _is_text)[1].get("maxLength")


def choices(req: ActRequest) -> list[str]:
    """The valid options of a choice request: the schema's enum, less those the rules refuse."""
    name, prop = _field(req.action_cls, _is_choice)
    out = []
    for option in prop["enum"]:
        try:
            action = req.action_cls(**{name: option})
        except ValueError:
            continue
        if req.validate is None or req.validate(action) is None:
            out.append(option)
    return out


def build_action(req: ActRequest, channel: str, value: Any) -> BaseModel:
    """The request's action from a person's input; ValueError with a reason when the input is not usable."""
    if channel in ("speech", "team"):
        text = " ".join(str(value or "").split())
        if not text:
            raise ValueError("write something first")
        name, prop = _field(req.action_cls, _is_text)
        return req.action_cls(**{name: text[: prop.get("maxLength") or len(text)]})
    if channel == "choice":
        if value is None or value not in choices(req):
            raise ValueError("choose one of the options first (an untouched vote is not a vote)")
        return req.action_cls(**{_field(req.action_cls, _is_choice)[0]: value})
    if channel == "yesno":
        if value not in ("yes", "no"):
            raise ValueError("answer yes or no first")
        return req.action_cls(**{_field(req.action_cls, _is_flag)[0]: value == "yes"})
    raise ValueError(f"no input for channel {channel!r}")


def observation(req: ActRequest) -> str:
    obs = req.observation
    return obs() if callable(obs) else str(obs)
