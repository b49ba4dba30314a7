"""`agora` command line: run, resume, replay, report, estimate, dashboard."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

USAGE = """agora <command> [args]

  run [overrides]          run one simulation (Hydra overrides: env=market seed=3 llm=scripted run.dir=PATH)
  run -m [overrides]       Hydra multirun sweep (seed=range(20), hydra/launcher=joblib)
  resume PATH              continue a killed run from its last checkpoint
  replay PATH --out DIR    re-run a recorded run offline from its LLM cache (--overwrite: into a non-empty DIR)
  report PATH              summary and per-phase spend of a run or a sweep folder
  estimate [overrides]     dry run: projected calls / tokens / USD, no model called
  dashboard [--runs DIR]   Streamlit dashboards over a runs folder (127.0.0.1 unless --address)
"""


RUN_HELP = """usage: agora run [-m] [key=value ...]

Hydra overrides of conf/config.yaml, e.g.
  agora run env=market llm=scripted seed=3 run.dir=runs/demo
  agora run env=traitors llm=openai llm.model=gpt-4o-mini budget.run_usd=0.5
  agora run -m seed=range(20) hydra/launcher=joblib     (a sweep: one run per point)
Config groups: env, llm, budget, agent. A bad key or value stops with one line, before anything is written.
"""

ESTIMATE_HELP = """usage: agora estimate [key=value ...]

Dry run with the same overrides as `agora run`: projected calls, tokens and USD; no model is called.
"""

HELP = ("-h", "--help")


def _err(msg: str, code: int = 2) -> int:
    print(f"error: {_one_line(msg)}", file=sys.stderr)
    return code


def _one_line(msg: str) -> str:
    return " ".join(str(msg).split()) or "failed"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    cmd, rest = argv[0], argv[1:]
    from sim.config import ConfigError

    try:
        if cmd in ("run", "estimate") and any(a in HELP for a in rest):
            print(RUN_HELP if cmd == "run" else ESTIMATE_HELP)  # not a Hydra override
            return 0
        if cmd == "run":
            if "-m" in rest or "--multirun" in rest:
                return _multirun([a for a in rest if a not in ("-m", "--multirun")])
            return _run(rest)
        if cmd == "resume":
            if len(rest) != 1 or rest[0] in HELP:
                return _err("usage: agora resume PATH")
            from sim.runner import resume

            res = resume(rest[0])
            return _print_done(res)
        if cmd == "replay":
            p = argparse.ArgumentParser(prog="agora replay")
            p.add_argument("path")
            p.add_argument("--out", required=True)
            p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out folder")
            a = p.parse_args(rest)
            return _replay(a.path, a.out, a.overwrite)
        if cmd == "report":
            p = argparse.ArgumentParser(prog="agora report")
            p.add_argument("path")
            p.add_argument("--json", action="store_true")
            p.add_argument("--include-degraded", action="store_true", help="aggregate degraded runs (own group)")
            a = p.parse_args(rest)
            from sim.report import report

            return report(Path(a.path), as_json=a.json, include_degraded=a.include_degraded)
        if cmd == "estimate":
            from sim.runner import estimate

            est = estimate(rest)
            _print_estimate(est)
            return 0
        if cmd == "dashboard":
            return _dashboard(rest)
        return _err(f"unknown command {cmd!r}; commands: run, resume, replay, report, estimate, dashboard")
    except (ConfigError, FileNotFoundError, NotADirectoryError) as e:
        return _err(str(e))
    except ValueError as e:
        # Agora's own input errors (persona files, replay misses, refused run
        # folders, unreadable summaries) are ValueErrors that name the bad thing
        return _err(str(e))
    except KeyboardInterrupt:
        return _err("interrupted", 130)


def _run(overrides: list[str]) -> int:
    from sim.config import compose, to_dict
    from sim.runner import RunFailed, run_config

    cfg = to_dict(compose(overrides))
    try:
        res = run_config(cfg)
    except RunFailed as e:
        print(f"run failed: {e.result.summary.get('error')}", file=sys.stderr)
        if e.result.dir:
            print(f"everything so far is in {e.result.dir}", file=sys.stderr)
        return 1
    return _print_done(res)


def _print_done(res) -> int:
    s = res.summary
    llm = s["llm"]
    kind = "" if llm.get("is_llm") else " [scripted: not an LLM]"
    print(f"{s['env']} seed={s['seed']} status={s['status']} ticks={s['ticks']} "
          f"outcome={json.dumps(_headline(s['outcome']))}")
    print(f"llm: {llm['provider']}/{llm['model']}{kind} calls={llm['calls']} tokens_in={llm['tokens_in']} "
          f"tokens_out={llm['tokens_out']} usd={llm['usd']:.6f}  wall={s['wall_s']:.1f}s")
    if res.dir:
        print(f"run directory: {res.dir}")
    return 0


def _headline(outcome: dict) -> dict:
    keys = list(outcome)[:6]
    return {k: outcome[k] for k in keys}


def _replay(path: str, out: str, overwrite: bool = False) -> int:
    from sim.inference.errors import ReplayMiss
    from sim.runner import RunFailed, load_run, replay

    try:
        res = replay(path, out, overwrite=overwrite)
    except RunFailed as e:
        if isinstance(e.__cause__, (ReplayMiss, ValueError)):  # a missing recorded reply names the call
            return _err(str(e.__cause__))
        print(f"replay failed: {e.result.summary.get('error')}", file=sys.stderr)
        return 1
    orig = load_run(path)
    same = orig.events.drop("seq").equals(res.events.drop("seq")) if orig.events.height else False
    _print_done(res)
    print(f"events identical to the recording: {'yes' if same else 'NO'} "
          f"({res.events.height} events; replay wall {res.summary['wall_s']:.2f}s vs live "
          f"{orig.summary.get('wall_s', 0):.2f}s)")
    return 0 if same else 1


def _print_estimate(est: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Estimate: {est['env']} on {est['provider']} (prices {est['price_version']})")
    for c in ("model", "calls", "tokens_in", "tokens_out", "usd"):
        t.add_column(c, justify="right")
    for r in est["by_model"]:
        t.add_row(str(r["model"]), str(r["calls"]), str(r["tokens_in"]), str(r["tokens_out"]), f"{r['usd']:.6f}")
    Console().print(t)
    print(f"projected: ticks={est['ticks']} calls={est['calls']} tokens_in={est['tokens_in']} "
          f"tokens_out={est['tokens_out']} usd={est['usd']:.6f}")


def _multirun(overrides: list[str]) -> int:
    """Delegate sweeps to Hydra's multirun and its launchers (joblib, ray)."""
    from sim.config import CONF_DIR, as_hydra
    from sim.sweep import check_sweep, hydra_main

    check_sweep(overrides)  # every point, before Hydra creates the sweep folder
    sys.argv = ["agora", "--multirun", f"hydra.searchpath=[file://{CONF_DIR}]", *as_hydra(overrides)]
    hydra_main()
    return 0


def _dashboard(rest: list[str]) -> int:
    import subprocess

    from dashboards.launch import LaunchError, streamlit_command

    try:
        launch = streamlit_command(rest)
    except LaunchError as e:
        return _err(str(e))
    if launch.warning:
        print(f"warning: {launch.warning}", file=sys.stderr)
    return subprocess.call(launch.argv, env=launch.env)


if __name__ == "__main__":
    raise SystemExit(main())
