"""Running one simulation: config -> environment -> run directory.

``run(overrides)`` is the Python API; the CLI calls the same functions.
After each tick the new events, ledger rows and metrics are written as
Parquet parts; once many rows are on disk they leave memory (``sim.events.Rows``),
and an in-memory run spills them to a temporary folder the same way, so memory
stays bounded however long the run. The environment's state is checkpointed
after every tick while checkpoints are cheap (``CHEAP_CHECKPOINT_S``: small
runs), else whenever the time since the last checkpoint is at least
``1 / CHECKPOINT_SHARE`` times what that one cost (every tick of an LLM run,
every few seconds of a large scripted one), so checkpoints take a bounded share
of a run whatever its size and length. A killed run loses the ticks since its last checkpoint;
``resume`` drops their parts and plays them again with the same events (an LLM
run's paid calls come back from its cache). The outcome is computed once, at finish.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from environments import registry
from environments.common import json_safe
from sim.config import compose, secret_free, short, to_dict
from sim.engine import BudgetExhausted, Services
from sim.events import EventLog
from sim.inference.client import build_client
from sim.inference.ledger import REPLIED, SORT_KEYS, Ledger, merge_totals, totals, totals_of_rows
from sim.inference.views import decision_health
from sim.rundir import (CheckpointError, RunDir, RunDirError, atomic_write_bytes, atomic_write_json,
                        atomic_write_parquet, read_plain_bytes)

# rows of the event log (and of the ledger) held in memory before those already on disk are dropped
MEMORY_ROWS = 200_000
# the most of a run's time spent writing checkpoints (one is written when the ticks since the last
# took at least 1/CHECKPOINT_SHARE times what it cost)
CHECKPOINT_SHARE = 0.1
# a checkpoint cheaper than this (a small run's: milliseconds) is written after every tick
CHEAP_CHECKPOINT_S = 0.1


class RunResult:
    """A run's summary and frames. ``events`` and ``ledger`` may be read lazily (from the run
    folder's files, or from the parts a long in-memory run spilled) on first use."""

    def __init__(self, summary: dict[str, Any], events, ledger, metrics: pl.DataFrame, dir: Path | None):
        self.summary = summary
        self._events = events  # a frame, or a function returning it
        self._ledger = ledger
        self.metrics = metrics
        self.dir = dir

    @property
    def events(self) -> pl.DataFrame:
        if callable(self._events):
            self._events = self._events()
        return self._events

    @property
    def ledger(self) -> pl.DataFrame:
        if callable(self._ledger):
            self._ledger = self._ledger()
        return self._ledger

    @property
    def status(self) -> str:
        return self.summary["status"]

    def __getstate__(self) -> dict:  # to another process (run_many workers): the frames themselves
        return {"summary": self.summary, "_events": self.events, "_ledger": self.ledger, "metrics": self.metrics,
                "dir": self.dir}

    def __repr__(self) -> str:
        return f"RunResult(status={self.summary.get('status')!r}, dir={self.dir!r})"


class RunFailed(RuntimeError):
    def __init__(self, msg: str, result: RunResult):
        super().__init__(msg)
        self.result = result
        self.error: BaseException | None = None  # what ended the run


def resolve_dir(cfg: dict) -> Path | None:
    d = cfg["run"].get("dir")
    if d in (None, "null", "None", ""):
        return None
    if d == "auto":
        ts = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        return Path(cfg["run"]["root"]) / cfg["env"]["name"] / f"{ts}-s{cfg['seed']}"
    return Path(d)


def claim_dir(rd: RunDir, config_text: bytes, overwrite: bool) -> None:
    """A fresh run writes only into an empty folder (or one that is this run), unless told to overwrite.

    ``run.dir=.`` in a folder of one's own files, or a second run into an old
    run's folder, is refused before anything is written there.
    """
    foreign = rd.foreign_entries(config_text)
    if not foreign:
        return
    if not overwrite:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise RunDirError(f"run.dir={short(str(rd.path), 200)}: the folder is not empty and is not this run (holds "
                          f"{short(shown, 100)}); choose a new folder, or set run.overwrite=true to write into it")
    rd.clear_run_files()


def run(overrides: list[str] | tuple[str, ...] = (), *, progress: bool | None = None, **kw) -> RunResult:
    cfg = to_dict(compose(list(overrides)))
    return run_config(cfg, progress=progress, **kw)


def run_many(overrides: list[str], seeds: list[int], workers: int = 1) -> list[RunResult]:
    """Same config, several seeds. Composes once; runs sequentially or in processes.

    Returns a list of results (``sim.montecarlo.Runs``) whose ``.frame`` is one polars frame of
    their outcomes; ``sim.run_batch`` plays many small in-memory games keeping only that frame.
    """
    from sim.montecarlo import Runs

    base = to_dict(compose(list(overrides)))
    cfgs = []
    for s in seeds:
        c = json.loads(json.dumps(base))
        c["seed"] = int(s)
        if c["run"].get("dir") not in (None, "auto"):
            c["run"]["dir"] = str(Path(c["run"]["dir"]) / f"seed-{s}")
        cfgs.append(c)
    if workers <= 1:
        return Runs(run_config(c, progress=False) for c in cfgs)
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as ex:
        return Runs(ex.map(_run_quiet, cfgs))


def _run_quiet(cfg: dict) -> RunResult:
    return run_config(cfg, progress=False)


def run_config(cfg: dict, *, progress: bool | None = None, cache_mode: str | None = None,
               replay_sources: list[Path] = (), estimate_only: bool = False, resume_state: dict | None = None,
               path: Path | None = None, on_tick=None) -> RunResult:
    sim = open_session(cfg, cache_mode=cache_mode, replay_sources=replay_sources, estimate_only=estimate_only,
                       resume_state=resume_state, path=path)
    return sim.run(progress=progress, on_tick=on_tick)


def open_session(cfg: dict, *, cache_mode: str | None = None, replay_sources: list[Path] = (),
                 estimate_only: bool = False, resume_state: dict | None = None,
                 path: Path | None = None) -> "Simulation":
    """A new run session (not started): config validated, run folder claimed and its config.yaml written.

    The CLI, sweeps, replay and the live page all open runs here; then ``start/step/finish`` or ``run``.
    """
    from sim.config import check_run_path, preflight

    # a bad input fails here, before anything is written; the config comes back with every default
    cfg = preflight(cfg, estimate_only=estimate_only or cache_mode == "replay")
    if not estimate_only and cache_mode != "replay":
        # a server that is not there, or refuses the key, stops the run here (exit 2, no folder)
        from sim.config import endpoints
        from sim.inference.health import check_endpoints

        check_endpoints(endpoints(cfg))
    if path is None:
        path = resolve_dir(cfg)
    if path is not None:
        check_run_path(cfg, path)
    config_text = yaml.safe_dump(secret_free(cfg), sort_keys=True).encode()
    if path and resume_state is None:
        claim_dir(RunDir(path), config_text, bool(cfg["run"]["overwrite"]))
    rd = RunDir(path).create() if path else None
    if rd and resume_state is None:
        atomic_write_bytes(rd.path / "config.yaml", config_text)
    return Simulation(cfg, rd, cache_mode=cache_mode, replay_sources=list(replay_sources),
                      estimate_only=estimate_only, resume_state=resume_state)


class Simulation:
    def __init__(self, cfg: dict, rd: RunDir | None, cache_mode=None, replay_sources=(), estimate_only=False,
                 resume_state: dict | None = None):
        self.cfg = cfg
        self.rd = rd
        self.events = EventLog()
        self.ledger = Ledger(run_id=str(rd.path.name) if rd else "memory")
        self.metrics_rows: list[dict] = []
        self.client = build_client(cfg["llm"], cfg["budget"], self.ledger, rd.path if rd else None,
                                   cache_mode=cache_mode, replay_sources=list(replay_sources),
                                   estimate_only=estimate_only,
                                   llm_by_role=(cfg.get("agent") or {}).get("llm_by_role"))
        self.estimate_only = estimate_only
        self._cache_mode = cache_mode
        self._llm_seen = False
        self._llm_rows_seen = 0
        self._health = _RunningHealth(self.client, self.ledger)
        self.humans: dict = {}
        self.wall_before = 0.0
        self._delivered = 0  # events already fed to agents' memories
        self._spill: tempfile.TemporaryDirectory | None = None  # an in-memory run's parts, once it has many rows
        self._ckpt_at = 0.0  # when the last checkpoint was written, and what it cost (seconds)
        self._ckpt_cost = 0.0
        self.flushed_totals = totals_of_rows([])  # ledger totals of the rows written to parts
        if resume_state:
            if rd:
                rd.part_hashes = dict(resume_state["parts"])
                rd.part_sizes = dict(resume_state.get("part_sizes") or {})
            self.env = resume_state["env"]
            # the rows stay in their (verified) parts; they are read back only if something asks
            self.events.rows.adopt(resume_state["events"])
            self.events.flushed = len(self.events.rows)
            self.ledger.rows.adopt(resume_state["ledger"])
            self.ledger.flushed = len(self.ledger.rows)
            for f, _ in resume_state["ledger"]:
                self.flushed_totals = merge_totals(self.flushed_totals, totals(pl.read_parquet(f)))
            self.metrics_rows = resume_state["metrics"]
            self.client.load_state(resume_state["client"])
            self.wall_before = resume_state.get("wall_s", 0.0)
            self._delivered = resume_state.get("delivered", len(self.events.rows))
            self.resumed = True
        else:
            cls = registry.env_class(cfg["env"]["name"])
            self.env = cls(cfg["env"], int(cfg["seed"]), cfg.get("agent") or {}, cfg["llm"])
            self.resumed = False
        self.metrics_flushed = len(self.metrics_rows)

    # ---- the public run session: start, step, finish (run is their loop) ----
    def start(self, humans: dict | None = None, after_phase=None) -> None:
        """Attach services (one asyncio.Runner, cognition, human seats, a phase hook such as
        ``sim.engine.PhaseGate``) and, for a new run, set up tick 0."""
        from agents.cognition import Cognition

        self._t0 = time.perf_counter()
        self._runner = asyncio.Runner()
        self.cognition = Cognition(self.events, self._delivered)
        svc = Services(self.client, self.events, self._runner, int(self.cfg["engine"]["concurrency"]),
                       cognition=self.cognition, humans=humans, after_phase=after_phase)
        from sim.deliberation import Deliberation

        svc.deliberation = Deliberation.from_config(self.cfg, self.client, self._cache_mode)
        svc.batch_scripted = bool((self.cfg.get("engine") or {}).get("batch_scripted", True))
        self.env.attach(svc)
        self.humans = svc.humans
        self.error: BaseException | None = None
        self.result: RunResult | None = None
        if not self.resumed:
            self.events.emit(0, "setup", "engine", "run_start",
                             {"env": self.cfg["env"]["name"], "seed": self.cfg["seed"],
                              "provider": self.cfg["llm"]["provider"], "model": self.cfg["llm"]["model"],
                              "human_seats": sorted(svc.humans)})
            self.env.setup()
            self.cognition.deliver(self.env)
            self._checkpoint(force=True)

    @property
    def done(self) -> bool:
        env = self.env
        return env.status != "running" or env.is_done() or env.steps >= int(self.cfg["run"]["max_ticks"])

    def step(self) -> bool:
        """One tick: phases, metrics row, parts and checkpoint. False once the run has nothing left to do."""
        if self.done:
            return False
        try:
            self.env.step()
        except BudgetExhausted:
            self.env.status = "aborted_budget"
        if self.env.status == "running" and self.cfg["run"]["on_degraded"] == "stop" \
                and self._health.degraded(float(self.cfg["run"]["fallback_threshold"]), MIN_DECISIONS_TO_STOP):
            self.env.status = "degraded"
            self.env.emit("degraded", {"fallback_share": self._health.share(),
                                       "threshold": self.cfg["run"]["fallback_threshold"]})
        self.metrics_rows.append({"tick": self.env.tick, **self.env.tick_metrics()})
        self._checkpoint()
        return not self.done

    def finish(self, status: str | None = None, error: BaseException | None = None) -> RunResult:
        """End the run (``status`` overrides, e.g. ``abandoned``), write the final files, return the result."""
        if self.result is not None:
            return self.result
        for seat in self.humans.values():
            seat.close()
        if status is not None:
            self.env.status = status
        elif self.env.status == "running":
            # a run that finished on scripted fallbacks is labelled so, never "completed"
            degraded = self._health.degraded(float(self.cfg["run"]["fallback_threshold"]), 1)
            self.env.status = "degraded" if degraded else "completed"
        error = error or self.error
        self._close_providers(self._runner)
        self._runner.close()
        self.events.emit(self.env.tick, "end", "engine", "run_end", {"status": self.env.status})
        self.result = self._finish(time.perf_counter() - self._t0 + self.wall_before, error)
        self.env.forget_agent_ids()
        return self.result

    def run(self, progress: bool | None = None, on_tick=None) -> RunResult:
        show = progress if progress is not None else _want_progress(self.cfg)
        error: BaseException | None = None
        # test hook: widen the window between ticks for kill/resume tests
        delay = float(os.environ.get("AGORA_TEST_TICK_DELAY", "0") or 0)
        self.start()
        bar = _Progress(show, self.cfg, self.env)
        try:
            while not self.done:
                more = self.step()
                bar.update(self.ledger)
                if on_tick:  # after every tick played, the last one included
                    on_tick(self)
                if not more:
                    break
                if delay:
                    time.sleep(delay)
        except KeyboardInterrupt:
            self.env.status = "failed"
            error = KeyboardInterrupt("interrupted")
        except Exception as e:  # noqa: BLE001 - written to summary, then re-raised
            self.env.status = "failed"
            error = e
        finally:
            bar.close()
        result = self.finish(error=error)
        if error is not None:
            failed = RunFailed(self.ledger.scrub(f"run failed: {type(error).__name__}: {error}"), result)
            failed.error = error  # not chained (its text may quote a key); callers may still ask its type
            raise failed from None
        return result

    def _close_providers(self, runner) -> None:
        for ep in self.client.endpoints.values():
            p = ep.stack
            while hasattr(p, "inner"):
                p = p.inner
            if hasattr(p, "aclose"):
                try:
                    runner.run(p.aclose())
                except Exception:  # noqa: BLE001
                    pass

    def _checkpoint(self, force: bool = False) -> None:
        """After a tick: new rows to parts, old rows out of memory, then (run folder) the checkpoint
        when due and the partial summary."""
        if self.rd:
            self._flush(self.rd, self.env.tick)
        elif self._unflushed() >= MEMORY_ROWS:
            # an in-memory run that grew large: its rows go to a temporary folder, read back if asked
            if self._spill is None:
                self._spill = tempfile.TemporaryDirectory(prefix="agora-spill-")
            self._flush(RunDir(self._spill.name).create(), self.env.tick, durable=False)
        self._health.share()  # both read new ledger rows while they are in memory
        self._answered_by_llm()
        self._forget()
        if not self.rd:
            return
        now = time.perf_counter()
        due = force or self._ckpt_cost <= CHEAP_CHECKPOINT_S or (now - self._ckpt_at) * CHECKPOINT_SHARE >= self._ckpt_cost
        if self.cfg["run"]["checkpoint"] and due:
            # the environment's state only; its rows are the parts, listed with their sha256
            clean = secret_free(self.cfg)
            meta = {"format": 1, "tick": self.env.tick, "delivered": self.cognition.delivered, "cfg": clean,
                    "wall_s": self.wall_before + (now - self._t0),
                    "parts": dict(self.rd.part_hashes), "part_sizes": dict(self.rd.part_sizes),
                    "rows": {"events": len(self.events), "ledger": len(self.ledger), "metrics": len(self.metrics_rows)}}
            self.rd.write_checkpoint(meta, {"env": self.env, "client": self.client.state()}, self.cfg,
                                     _secret_values(self.cfg, clean))
            self._ckpt_at = time.perf_counter()
            self._ckpt_cost = self._ckpt_at - now
        atomic_write_json(self.rd.path / "summary.json", self._summary(0.0, None, partial=True))

    def _unflushed(self) -> int:
        return max(len(self.events) - self.events.flushed, len(self.ledger) - self.ledger.flushed)

    def _flush(self, rd: RunDir, tick: int, durable: bool = True) -> None:
        """Rows not yet on disk become ``rd``'s parts for ``tick`` (metrics too, for a run folder)."""
        ev = self.events
        start, n = ev.flushed, len(ev)
        ev.rows.add_part(start, n - start, rd.write_part("events", tick, ev.frame(start, n), durable))
        ev.flushed = n
        start, pending = self.ledger.take_pending_frame()
        self.ledger.rows.add_part(start, pending.height, rd.write_part("ledger", tick, pending, durable))
        self.flushed_totals = merge_totals(self.flushed_totals, totals(pending))
        if durable and len(self.metrics_rows) > self.metrics_flushed:
            rd.write_part("metrics", tick, pl.DataFrame(self.metrics_rows[self.metrics_flushed:]))
            self.metrics_flushed = len(self.metrics_rows)

    def _forget(self) -> None:
        """Drop rows already in parts once many are held (events: once agents' memories have them)."""
        if self.events.rows.held() > MEMORY_ROWS:
            self.events.rows.forget(min(self.events.flushed, self.cognition.delivered))
        if self.ledger.rows.held() > MEMORY_ROWS:
            self.ledger.forget(self.ledger.flushed)

    def _summary(self, wall: float, error, partial: bool = False, events: pl.DataFrame | None = None
                 ) -> dict[str, Any]:
        if partial:
            t, health = self.flushed_totals, self._health.partial()
            outcome = self.env.partial_outcome()
        else:
            t = merge_totals(self.flushed_totals, totals_of_rows(self.ledger.rows[self.ledger.flushed:]))
            # only model calls count for decision health: a scripted run's ledger is never read back
            health = self._decision_health(self.ledger.frame() if self._health.llm_endpoints
                                           else self.ledger.frame([]))
            outcome = self.env.outcome(events)
        llm = self.cfg["llm"]
        is_llm = self._answered_by_llm()
        return {
            "env": self.cfg["env"]["name"], "seed": self.cfg["seed"],
            "status": "running" if partial and self.env.status == "running" else self.env.status,
            "ticks": int(self.env.tick),
            "outcome": json_safe(outcome),
            "llm": {**t, "provider": llm["provider"], "model": llm["model"], "is_llm": is_llm,
                    "note": None if is_llm else self._not_llm_note(),
                    "policies": self._policy_counts(), **health,
                    "fallback_threshold": self.cfg["run"]["fallback_threshold"],
                    "usd_unit": usd_unit(self.cfg), "shadow": usd_unit(self.cfg) == "shadow USD",
                    "degraded": self.env.status == "degraded"},
            "budget_usd": self.cfg["budget"].get("run_usd"),
            "wall_s": round(wall, 3),
            "error": None if error is None else self.ledger.scrub(f"{type(error).__name__}: {error}"),
            "dir": str(self.rd.path) if self.rd else None,
            # written after a tick, before the final files: the run has not finished whatever its status
            # says (the tick that exhausts a budget sets aborted_budget); resume goes on from it
            **({"partial": True} if partial else {}),
        }

    def _decision_health(self, frame: pl.DataFrame) -> dict[str, Any]:
        roles = {a.aid: a.role for a in self.env.players()} if self.env.svc is not None else {}
        return decision_health(frame, self._health.llm_endpoints, roles)

    def _not_llm_note(self) -> str:
        if any(ep.provider_name == "oracle" for ep in self.client.endpoints.values()):
            return ("no call was answered by a language model: oracle decisions come from simulated tiers "
                    "(known accuracy and cost), not an LLM run")
        return "no call was answered by a language model (scripted, oracle or estimate); not an LLM run"

    def _answered_by_llm(self) -> bool:
        """From the ledger: whether any call was answered by a language model (not scripted, not estimated)."""
        if self.estimate_only:
            return False
        if not self._llm_seen:
            models = {ep.provider_name for ep in self.client.endpoints.values() if ep.is_llm}
            seen = self._llm_rows_seen  # rows looked at so far: each row is looked at once
            self._llm_seen = bool(models) and any(r.provider in models and r.outcome == "ok"
                                                  for r in self.ledger.rows[seen:])
            self._llm_rows_seen = len(self.ledger.rows)
        return self._llm_seen

    def _policy_counts(self) -> dict[str, int]:
        """How many agents each policy answered for (llm, scripted, human)."""
        out = {"llm": 0, "scripted": 0, "human": 0}
        if self.env.svc is not None:
            for a in self.env.players():
                out[self.env.policy_of(a)] += 1
        return out

    def _finish(self, wall: float, error) -> RunResult:
        metrics = pl.DataFrame(self.metrics_rows) if self.metrics_rows else pl.DataFrame({"tick": []}, schema={"tick": pl.Int64})
        reads = self.env.reads_events
        if not self.rd:
            small = not self.events.rows.base and not self.ledger.rows.base
            events = self.events.frame() if reads else None
            summary = self._summary(wall, error, events=events)
            if small:  # tables the outcome did not need are built if read (a batch of games never reads them)
                return RunResult(summary, events if reads else self.events.frame, lambda: self.ledger.frame(),
                                 metrics, None)
            # a long run's rows are in its spill folder: read back only if asked (the folder lives as long as this)
            spill = self._spill  # held by the readers: the folder goes when the result does
            return RunResult(summary, _lazy(self.events.frame, Path(spill.name), "events", spill),
                             _lazy(self.ledger.frame, Path(spill.name), "ledger", spill), metrics, None)
        rd = self.rd
        self._flush(rd, self.env.tick + 1)  # the run_end event and the ledger rows since the last tick
        # the final files are the parts joined, streamed to disk (never the whole log in memory)
        atomic_write_parquet(rd.path / "events.parquet", _joined(self.events.rows.parts, EventLog.empty_frame()))
        atomic_write_parquet(rd.path / "ledger.parquet", _joined(self.ledger.rows.parts, self.ledger.frame([]), SORT_KEYS))
        atomic_write_parquet(rd.path / "metrics.parquet", metrics)
        events = pl.read_parquet(rd.path / "events.parquet") if reads else None
        summary = self._summary(wall, error, events=events)
        if reads:
            self.env.artifacts(rd.path, events)
        if self.env.deliberations:
            from sim.deliberation import records_frame

            atomic_write_parquet(rd.path / "deliberation.parquet", records_frame(self.env.deliberations))
        atomic_write_json(rd.path / "summary.json", summary)
        ev_file, led_file = rd.path / "events.parquet", rd.path / "ledger.parquet"
        return RunResult(summary, events if events is not None else _lazy(lambda: pl.read_parquet(ev_file), ev_file,
                                                                          "events"),
                         _lazy(lambda: pl.read_parquet(led_file), led_file, "ledger"), metrics, rd.path)


def _lazy(read, where: Path, table: str, keep: Any = None):
    """``read`` for a RunResult's lazily loaded table: a file gone since the run is one line naming it.
    ``keep``: what must live as long as the reader (an in-memory run's spill folder)."""
    def load() -> pl.DataFrame:
        try:
            return read()
        except (OSError, pl.exceptions.PolarsError) as e:
            why = short(" ".join(str(e).split()), 160) or type(e).__name__
            raise RunDirError(f"{where}: the run's {table} cannot be read back: the run folder was moved or deleted "
                              f"after the run, or its files were damaged ({why})") from None
    load.keep = keep
    return load


def _joined(parts: list[tuple[int, int, Path]], empty: pl.DataFrame, sort: list[str] | None = None
            ) -> pl.LazyFrame | pl.DataFrame:
    """A table's parts (in row order) as one lazy frame, sorted by ``sort`` (the ledger's order).

    Each part is sorted already; when every part starts at or after the previous one's last key
    (call ids only grow, so the usual case) the join is sorted as it stands and streams.
    """
    files = [str(p) for _, _, p in parts]
    if not files:
        return empty
    lf = pl.scan_parquet(files)
    if sort:
        last = None
        for f in files:
            keys = pl.read_parquet(f, columns=sort)
            first = keys.row(0)
            if last is not None and first < last:
                return lf.sort(sort, maintain_order=True)
            last = keys.row(-1)
    return lf


def usd_unit(cfg: dict) -> str:
    """What the run's ``usd`` figures are: ``shadow USD`` when every model it may call has a shadow
    price (priced, never billed: local and scripted models), ``USD`` when none has, else mixed."""
    from sim.config import endpoints

    flags = []
    for _, llm in endpoints(cfg):
        prices = llm.get("prices") or {}
        for m in (llm.get("model"), *(llm.get("fallback_models") or [])):
            p = prices.get(m) or prices.get("default") or {}
            flags.append(bool(p.get("shadow", False)))
    if flags and all(flags):
        return "shadow USD"
    return "USD" if not any(flags) else "USD (part shadow)"


# on_degraded=stop waits for this many model decisions: one early fallback is not a degraded run
MIN_DECISIONS_TO_STOP = 10


class _RunningHealth:
    """Model decisions and fallbacks so far, read from the ledger rows added since the last look."""

    def __init__(self, client, ledger: Ledger):
        self.ledger = ledger
        self.llm_endpoints = {name for name, ep in client.endpoints.items() if ep.is_llm}
        self._seen = 0
        self._calls: set[int] = set()
        self._fell_back: set[int] = set()

    def _update(self) -> None:
        rows = self.ledger.rows
        if not self.llm_endpoints:  # nothing to count: never read rows back from parts
            self._seen = len(rows)
            return
        for r in rows[self._seen:]:
            if r.endpoint in self.llm_endpoints:
                self._calls.add(r.call_id)
                if r.outcome == "fallback":
                    self._fell_back.add(r.call_id)
        self._seen = len(rows)

    def share(self) -> float | None:
        self._update()
        return round(len(self._fell_back) / len(self._calls), 4) if self._calls else None

    def degraded(self, threshold: float, min_decisions: int) -> bool:
        share = self.share()
        return share is not None and len(self._calls) >= min_decisions and share > threshold

    def partial(self) -> dict[str, Any]:
        share = self.share()
        return {"decisions": len(self._calls), "fallbacks": len(self._fell_back), "fallback_share": share}


def _want_progress(cfg: dict) -> bool:
    p = cfg["run"]["progress"]
    if p in (True, "on"):
        return True
    if p in (False, "off"):
        return False
    return sys.stderr.isatty()


class _Progress:
    def __init__(self, show: bool, cfg: dict, env):
        self.p = None
        self.seen = self.calls = self.nano = 0
        if not show:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("tick {task.completed}"),
                          TextColumn("{task.fields[calls]} calls  ${task.fields[usd]:.6f}"), TimeElapsedColumn(),
                          transient=False)
        self.p.start()
        total = env.horizon()
        self.task = self.p.add_task(f"{cfg['env']['name']} seed={cfg['seed']}", total=total, calls=0, usd=0.0)

    def update(self, ledger: Ledger) -> None:
        if self.p:
            # the same count as summary.llm.calls, the report and the dashboards; each row counted once
            # (a reply found invalid later in its tick may be counted before it is)
            rows = ledger.rows[self.seen:]
            self.seen = len(ledger.rows)
            self.calls += sum(1 for r in rows if r.outcome in REPLIED)
            self.nano += sum(r.cost_nano for r in rows)
            self.p.update(self.task, advance=1, calls=self.calls, usd=self.nano / 1e9)

    def close(self) -> None:
        if self.p:
            self.p.stop()


# ---------------------------------------------------------------------------
def resume(path: Path | str, progress: bool | None = None) -> RunResult:
    rd = RunDir(path)
    if not rd.path.is_dir():
        raise FileNotFoundError(f"{path}: no such run directory")
    status = _recorded_status(rd)
    if status in ("completed", "aborted_budget", "degraded"):
        raise RunDirError(f"{path}: the run already finished (status {status}); there is nothing to resume")
    rd.check_layout()  # before anything is read or deleted there
    st = load_checkpoint(rd)
    if st is None:
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (checkpoints/latest.ckpt missing)")
    # parts of the ticks after the checkpoint are played again: theirs go, so no row is written twice
    rd.drop_parts_not_in(st["parts"])
    rd.drop_temporary_files()
    for name in ("events.parquet", "ledger.parquet", "metrics.parquet"):  # a run killed while finishing
        (rd.path / name).unlink(missing_ok=True)
    # Calls the killed run already paid for are reused from its cache, so the
    # resumed run sees the same replies and writes the same events.
    sim = Simulation(st["cfg"], rd, cache_mode="reuse" if st["cfg"]["llm"]["provider"] != "scripted" else None,
                     resume_state=st)
    return sim.run(progress=progress)


def load_checkpoint(rd: RunDir) -> dict[str, Any] | None:
    """The state to resume from: the signed snapshot, its verified parts (events and ledger rows stay
    on disk: ``(file, rows)`` each) and its metrics rows."""
    got = rd.read_checkpoint()
    if got is None:
        return None
    meta, state = got
    tables = rd.verify_parts(meta["parts"], meta.get("part_sizes"))
    events, ledger = tables["events"], tables["ledger"]
    metrics = [r for df in tables["metrics"] for r in df.to_dicts()]
    found = {"events": sum(n for _, n in events), "ledger": sum(n for _, n in ledger), "metrics": len(metrics)}
    if found != meta["rows"]:
        raise CheckpointError(rd.parts, f"the parts hold {found} rows, the checkpoint expects {meta['rows']}")
    return {"cfg": meta["cfg"], "env": state["env"], "client": state["client"], "events": events, "ledger": ledger,
            "metrics": metrics, "tick": meta["tick"], "delivered": meta["delivered"], "wall_s": meta["wall_s"],
            "parts": meta["parts"], "part_sizes": meta.get("part_sizes")}


def _secret_values(cfg: Any, clean: Any) -> list[str]:
    """The strings ``secret_free`` replaced: what must never appear in a run file."""
    if isinstance(cfg, dict) and isinstance(clean, dict):
        return [s for k in cfg for s in _secret_values(cfg[k], clean.get(k))]
    if isinstance(cfg, list) and isinstance(clean, list):
        return [s for a, b in zip(cfg, clean) for s in _secret_values(a, b)]
    return [cfg] if isinstance(cfg, str) and cfg != clean else []


def _recorded_status(rd: RunDir) -> str | None:
    """summary.json's status once the run finished; None when missing, unreadable or written while
    running (then the checkpoint decides)."""
    try:
        s = rd.summary()
    except (OSError, ValueError):
        return None
    return s.get("status") if isinstance(s, dict) and not s.get("partial") else None


def replay(path: Path | str, out: Path | str, progress: bool | None = None, overwrite: bool = False) -> RunResult:
    src, dst = Path(path), Path(out)
    if dst.resolve() == src.resolve() or src.resolve() in dst.resolve().parents:
        raise RunDirError(f"--out {short(str(out), 200)}: is the recording {short(str(path), 200)} or inside it; a replay "
                          "writes to another folder so the recording is never overwritten")
    if RunDir(dst).foreign_entries() and not overwrite:
        raise RunDirError(f"--out {short(str(out), 200)}: the folder is not empty; choose a new folder, or pass "
                          "--overwrite to write into it")
    cfg = _recorded_config(src / "config.yaml")
    cfg["run"]["dir"] = str(out)
    cfg["run"]["overwrite"] = overwrite
    # a replay answers every call from the recording and never reaches a server: no key is needed
    for ep in [cfg["llm"], *((cfg.get("agent") or {}).get("llm_by_role") or {}).values()]:
        if isinstance(ep, dict) and ep.get("api_key_env") and not os.environ.get(str(ep["api_key_env"])):
            ep["api_key_env"] = None
    return run_config(cfg, progress=progress, cache_mode="replay" if cfg["llm"]["provider"] != "scripted" else None,
                      replay_sources=[src / "llm_cache.jsonl"], path=dst)


def _recorded_config(f: Path) -> dict:
    """A recording's config.yaml as a mapping with a ``run`` section; one line naming the file otherwise
    (its values are then checked as any config is)."""
    if not os.path.lexists(f):
        raise FileNotFoundError(f"{f}: no such file (is this a run directory?)")
    try:
        cfg = yaml.safe_load(read_plain_bytes(f))
    except yaml.YAMLError as e:
        raise RunDirError(f"{f}: not valid YAML ({short(' '.join(str(e).split()), 160)})") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("run"), dict) or not isinstance(cfg.get("llm"), dict):
        raise RunDirError(f"{f}: not a run's config (a mapping with run and llm sections)")
    return cfg


def estimate(overrides: list[str], **kw) -> dict[str, Any]:
    """``agora estimate``: median and range over seeds, with re-asks (``sim.estimate``)."""
    from sim.estimate import estimate as projected

    return projected(overrides, **kw)


def run_config_memory(cfg: dict, **kw) -> RunResult:
    """A run kept in memory (no folder, no progress bar): dry runs and estimates."""
    return _run_memory(cfg, **kw)


def _run_memory(cfg: dict, **kw) -> RunResult:
    cfg = json.loads(json.dumps(cfg))
    cfg["run"]["dir"] = None
    sim = Simulation(cfg, None, **kw)
    return sim.run(progress=False)


def load_run(path: Path | str) -> RunResult:
    rd = RunDir(path)
    summ = rd.summary() or {}
    ev = rd.read_table("events")
    led = rd.read_table("ledger")
    met = rd.read_table("metrics")
    return RunResult(summ, ev if ev is not None else EventLog.empty_frame(),
                     led if led is not None else pl.DataFrame(), met if met is not None else pl.DataFrame(), rd.path)
