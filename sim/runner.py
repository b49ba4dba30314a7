"""Running one simulation: config -> environment -> run directory.

``run(overrides)`` is the Python API; the CLI calls the same functions.
After each tick the new events, ledger rows and metrics are written as
Parquet parts and the whole state is checkpointed, so a killed run loses at
most the tick in flight and ``resume`` finishes it with the same events.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from environments import registry
from sim.config import compose, secret_free, to_dict
from sim.engine import BudgetExhausted, Services
from sim.events import EventLog
from sim.inference.client import build_client
from sim.inference.ledger import Ledger, merge_totals, totals
from sim.rundir import RunDir, atomic_write_bytes, atomic_write_json, atomic_write_parquet


_TICK_DELAY = float(os.environ.get("AGORA_TEST_TICK_DELAY", "0") or 0)


@dataclass
class RunResult:
    summary: dict[str, Any]
    events: pl.DataFrame
    ledger: pl.DataFrame
    metrics: pl.DataFrame
    dir: Path | None

    @property
    def status(self) -> str:
        return self.summary["status"]


class RunFailed(RuntimeError):
    def __init__(self, msg: str, result: RunResult):
        super().__init__(msg)
        self.result = result


def resolve_dir(cfg: dict) -> Path | None:
    d = cfg["run"].get("dir")
    if d in (None, "null", "None", ""):
        return None
    if d == "auto":
        ts = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        return Path(cfg["run"].get("root", "runs")) / cfg["env"]["name"] / f"{ts}-s{cfg['seed']}"
    return Path(d)


def run(overrides: list[str] | tuple[str, ...] = (), *, progress: bool | None = None, **kw) -> RunResult:
    cfg = to_dict(compose(list(overrides)))
    return run_config(cfg, progress=progress, **kw)


def run_many(overrides: list[str], seeds: list[int], workers: int = 1) -> list[RunResult]:
    """Same config, several seeds. Composes once; runs sequentially or in processes."""
    base = to_dict(compose(list(overrides)))
    cfgs = []
    for s in seeds:
        c = json.loads(json.dumps(base))
        c["seed"] = int(s)
        if c["run"].get("dir") not in (None, "auto"):
            c["run"]["dir"] = str(Path(c["run"]["dir"]) / f"seed-{s}")
        cfgs.append(c)
    if workers <= 1:
        return [run_config(c, progress=False) for c in cfgs]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers) as ex:
        return list(ex.map(_run_quiet, cfgs))


def _run_quiet(cfg: dict) -> RunResult:
    return run_config(cfg, progress=False)


def run_config(cfg: dict, *, progress: bool | None = None, cache_mode: str | None = None,
               replay_sources: list[Path] = (), estimate_only: bool = False, resume_state: dict | None = None,
               path: Path | None = None, on_tick=None) -> RunResult:
    if path is None:
        path = resolve_dir(cfg)
    rd = RunDir(path).create() if path else None
    if rd and resume_state is None:
        atomic_write_bytes(rd.path / "config.yaml", yaml.safe_dump(secret_free(cfg), sort_keys=True).encode())
    sim = Simulation(cfg, rd, cache_mode=cache_mode, replay_sources=list(replay_sources),
                     estimate_only=estimate_only, resume_state=resume_state)
    return sim.run(progress=progress, on_tick=on_tick)


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
        self.wall_before = 0.0
        self._delivered = 0  # events already fed to agents' memories
        if resume_state:
            self.env = resume_state["env"]
            self.events.rows = resume_state["events"]
            self.events.flushed = len(self.events.rows)
            self.ledger.rows = resume_state["ledger"]
            self.ledger.flushed = len(self.ledger.rows)
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
        # ledger totals of the rows already flushed; the per-tick summary adds each tick's rows
        self.flushed_totals = totals(self.ledger.frame(self.ledger.rows[: self.ledger.flushed]))

    # ---------------------------------------------------------------------
    def run(self, progress: bool | None = None, on_tick=None) -> RunResult:
        t0 = time.perf_counter()
        max_ticks = int(self.cfg["run"].get("max_ticks", 10000))
        show = progress if progress is not None else _want_progress(self.cfg)
        error: BaseException | None = None
        with asyncio.Runner() as runner:
            svc = Services(self.client, self.events, runner, int(self.cfg.get("engine", {}).get("concurrency", 8)),
                           on_events=self._deliver)
            self.env.attach(svc)
            bar = _Progress(show, self.cfg, self.env)
            try:
                if not self.resumed:
                    self.events.emit(0, "setup", "engine", "run_start",
                                     {"env": self.cfg["env"]["name"], "seed": self.cfg["seed"],
                                      "provider": self.cfg["llm"]["provider"], "model": self.cfg["llm"]["model"],
                                      "is_llm": self.cfg["llm"]["provider"] != "scripted"})
                    self.env.setup()
                    self._deliver()
                    self._checkpoint()
                while self.env.status == "running" and not self.env.is_done() and self.env.steps < max_ticks:
                    try:
                        self.env.step()
                    except BudgetExhausted:
                        self.env.status = "aborted_budget"
                    self.metrics_rows.append({"tick": self.env.tick, **self.env.tick_metrics()})
                    self._checkpoint(t0)
                    bar.update(self.ledger)
                    if _TICK_DELAY:
                        time.sleep(_TICK_DELAY)  # test hook: widen the window for kill/resume tests
                    if on_tick:
                        on_tick(self)
                if self.env.status == "running":
                    self.env.status = "completed"
            except KeyboardInterrupt:
                self.env.status = "failed"
                error = KeyboardInterrupt("interrupted")
            except Exception as e:  # noqa: BLE001 - written to summary, then re-raised
                self.env.status = "failed"
                error = e
            finally:
                bar.close()
                self._close_providers(runner)
        self.events.emit(self.env.tick, "end", "engine", "run_end", {"status": self.env.status})
        result = self._finish(time.perf_counter() - t0 + self.wall_before, error)
        if error is not None:
            raise RunFailed(f"run failed: {type(error).__name__}: {error}", result) from error
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

    def _deliver(self) -> None:
        """Feed new events to every agent's memory, filtered by visibility."""
        new = self.events.rows[self._delivered:]
        self._delivered = len(self.events.rows)
        if not new:
            return
        imp = getattr(self.env, "memory_importance", {})
        skip = {"phase_start", "phase_end", "llm_call", "run_start", "reflection"}
        rows = [e for e in new if e.kind not in skip]
        keep_scripted = self.env.keeps_scripted_memory()
        shared: dict = {}  # each event rendered and embedded once per delivery, not once per agent
        for a in self.env.players():
            if not keep_scripted and self.client.endpoint(a.endpoint).scripted:
                continue  # scripted policies never read memory
            a.memory.observe_events(rows, a.aid, a.teams, importance=imp, shared=shared)

    def _checkpoint(self, t0: float | None = None) -> None:
        if not self.rd:
            return
        tick = self.env.tick
        self.rd.write_part("events", tick, self.events.frame(self.events.flushed))
        self.events.flushed = len(self.events)
        pending = self.ledger.take_pending_frame()
        self.rd.write_part("ledger", tick, pending)
        self.flushed_totals = merge_totals(self.flushed_totals, totals(pending))
        if len(self.metrics_rows) > self.metrics_flushed:
            self.rd.write_part("metrics", tick, pl.DataFrame(self.metrics_rows[self.metrics_flushed:]))
            self.metrics_flushed = len(self.metrics_rows)
        if self.cfg["run"].get("checkpoint", True):
            self.rd.write_checkpoint(tick, {
                "cfg": self.cfg, "env": self.env, "events": self.events.rows, "ledger": self.ledger.rows,
                "metrics": self.metrics_rows, "client": self.client.state(), "tick": tick,
                "delivered": self._delivered,
                "wall_s": self.wall_before + (time.perf_counter() - t0 if t0 else 0.0)})
        atomic_write_json(self.rd.path / "summary.json", self._summary(0.0, None, partial=True))

    def _summary(self, wall: float, error, partial: bool = False) -> dict[str, Any]:
        t = self.flushed_totals if partial else totals(self.ledger.frame())
        llm = self.cfg["llm"]
        is_llm = llm["provider"] != "scripted" and not self.estimate_only
        return {
            "env": self.cfg["env"]["name"], "seed": self.cfg["seed"],
            "status": "running" if partial and self.env.status == "running" else self.env.status,
            "ticks": int(self.env.tick), "outcome": _clean(self.env.outcome()),
            "llm": {**t, "provider": llm["provider"], "model": llm["model"], "is_llm": is_llm,
                    "note": None if is_llm else "scripted rule-based policies; not an LLM"},
            "budget_usd": self.cfg["budget"].get("run_usd"),
            "wall_s": round(wall, 3),
            "error": None if error is None else f"{type(error).__name__}: {error}",
            "dir": str(self.rd.path) if self.rd else None,
        }

    def _finish(self, wall: float, error) -> RunResult:
        events = self.events.frame()
        ledger = self.ledger.frame()
        metrics = pl.DataFrame(self.metrics_rows) if self.metrics_rows else pl.DataFrame({"tick": []}, schema={"tick": pl.Int64})
        summary = self._summary(wall, error)
        if self.rd:
            self.rd.write_part("events", self.env.tick + 1, self.events.frame(self.events.flushed))
            atomic_write_parquet(self.rd.path / "events.parquet", events)
            atomic_write_parquet(self.rd.path / "ledger.parquet", ledger)
            atomic_write_parquet(self.rd.path / "metrics.parquet", metrics)
            if hasattr(self.env, "write_artifacts"):
                self.env.write_artifacts(self.rd.path, events)
            atomic_write_json(self.rd.path / "summary.json", summary)
        return RunResult(summary, events, ledger, metrics, self.rd.path if self.rd else None)


def _clean(x: Any) -> Any:
    import math

    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if hasattr(x, "item"):
        return _clean(x.item())
    return x


def _want_progress(cfg: dict) -> bool:
    p = cfg["run"].get("progress", "auto")
    if p in (True, "on"):
        return True
    if p in (False, "off"):
        return False
    return sys.stderr.isatty()


class _Progress:
    def __init__(self, show: bool, cfg: dict, env):
        self.p = None
        if not show:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("tick {task.completed}"),
                          TextColumn("{task.fields[calls]} calls  ${task.fields[usd]:.6f}"), TimeElapsedColumn(),
                          transient=False)
        self.p.start()
        total = getattr(env, "horizon", lambda: None)()
        self.task = self.p.add_task(f"{cfg['env']['name']} seed={cfg['seed']}", total=total, calls=0, usd=0.0)

    def update(self, ledger: Ledger) -> None:
        if self.p:
            rows = ledger.rows
            self.p.update(self.task, advance=1, calls=sum(1 for r in rows if r.outcome == "ok"),
                          usd=sum(r.cost_nano for r in rows) / 1e9)

    def close(self) -> None:
        if self.p:
            self.p.stop()


# ---------------------------------------------------------------------------
def resume(path: Path | str, progress: bool | None = None) -> RunResult:
    rd = RunDir(path)
    st = rd.read_checkpoint()
    if st is None:
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (checkpoints/latest.pkl missing)")
    summ = rd.summary() or {}
    if summ.get("status") in ("completed", "aborted_budget"):
        raise ValueError(f"{path}: run already finished with status {summ['status']}")
    rd.drop_parts_after(st["tick"])
    # Calls the killed run already paid for are reused from its cache, so the
    # resumed run sees the same replies and writes the same events.
    sim = Simulation(st["cfg"], rd, cache_mode="reuse" if st["cfg"]["llm"]["provider"] != "scripted" else None,
                     resume_state=st)
    return sim.run(progress=progress)


def replay(path: Path | str, out: Path | str, progress: bool | None = None) -> RunResult:
    src = Path(path)
    cfg = yaml.safe_load((src / "config.yaml").read_text())
    cfg["run"]["dir"] = str(out)
    return run_config(cfg, progress=progress, cache_mode="replay" if cfg["llm"]["provider"] != "scripted" else None,
                      replay_sources=[src / "llm_cache.jsonl"], path=Path(out))


def estimate(overrides: list[str]) -> dict[str, Any]:
    cfg = to_dict(compose(list(overrides)))
    cfg["budget"]["run_usd"] = None
    cfg["budget"]["per_agent_usd"] = None
    cfg["budget"]["per_team_usd"] = {}
    res = _run_memory(cfg, estimate_only=True)
    led = res.ledger
    by_model = (led.filter(pl.col("outcome") == "ok").group_by("model")
                .agg(pl.len().alias("calls"), pl.col("tokens_in").sum(), pl.col("tokens_out").sum(),
                     (pl.col("cost_nano").sum() / 1e9).alias("usd")).sort("model"))
    return {"env": cfg["env"]["name"], "provider": cfg["llm"]["provider"], "ticks": res.summary["ticks"],
            "calls": res.summary["llm"]["calls"], "tokens_in": res.summary["llm"]["tokens_in"],
            "tokens_out": res.summary["llm"]["tokens_out"], "usd": res.summary["llm"]["usd"],
            "by_model": by_model.to_dicts(), "price_version": cfg["llm"].get("price_version")}


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
