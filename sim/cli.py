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
  dashboard [--runs DIR] [--address HOST]
                           Streamlit dashboards over a runs folder (on 127.0.0.1 unless --address;
                           agora dashboard --help lists every option)
  frontier [overrides]     cost-of-pass frontier over tiers x policies x budgets (--out DIR, --drop TIER)
"""


RUN_HELP = """usage: agora run [-m] [key=value ...]

Hydra overrides of conf/config.yaml, e.g.
  agora run env=market llm=scripted seed=3 run.dir=runs/demo
  agora run env=traitors llm=openai llm.model=gpt-4o-mini budget.run_usd=0.5
  agora run -m seed=range(20) hydra/launcher=joblib     (a sweep: one run per point)
Config groups: env, llm, budget, agent. A bad key or value stops with one line, before anything is written.
"""

ESTIMATE_HELP = """usage: agora estimate [--seeds N] [--reask-rate P] [--measure] [--draws K] [--output-sigma S]
                      [key=value ...]

Dry run with the same overrides as `agora run`: projected ticks, calls, tokens and USD, as the
median and range over N seeds (default 5), with expected re-asks (P: the share of invalid replies;
default measured per provider); local models also get a wall time from tokens per second
(--measure times the model on this machine). No model is called unless --measure.
USD quantiles P10/P50/P90 over the N seeds x K draws (default 200) of every call's output tokens:
log-normal (an oracle tier's own median and sigma; else the projection as median and spread S,
default 0.9: P90/P10 = 10), priced by llm.prices. Warns when a tier listed cheaper costs more per
call than a pricier one (price reversal: it writes more output tokens).
"""


def _estimate_flags(rest: list[str]) -> tuple[dict, list[str]]:
    """--seeds N, --reask-rate P and --measure; everything else is a Hydra override."""
    flags: dict = {}
    overrides: list[str] = []
    it = iter(rest)
    for a in it:
        key, _, val = a.partition("=")
        if key in ("--seeds", "--reask-rate", "--draws", "--output-sigma"):
            val = val or next(it, "")
            name = key[2:].replace("-", "_")
            try:
                flags[name] = int(val) if key in ("--seeds", "--draws") else float(val)
            except ValueError:
                raise ValueError(f"{key}={val!r}: expected a number") from None
        elif a == "--measure":
            flags["measure"] = True
        else:
            overrides.append(a)
    return flags, overrides

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

            flags, overrides = _estimate_flags(rest)
            est = estimate(overrides, **flags)
            _print_estimate(est)
            return 0
        if cmd == "dashboard":
            return _dashboard(rest)
        if cmd == "frontier":
            from sim.frontier_cli import main as frontier_main

            return frontier_main(rest)
        return _err(f"unknown command {cmd!r}; commands: run, resume, replay, report, estimate, dashboard, frontier")
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
    what = "simulated tiers" if llm.get("provider") == "oracle" else "scripted"
    kind = "" if llm.get("is_llm") else f" [{what}: not an LLM]"
    print(f"{s['env']} seed={s['seed']} status={s['status']} ticks={s['ticks']} "
          f"outcome={json.dumps(_headline(s['outcome']))}")
    print(f"llm: {llm['provider']}/{llm['model']}{kind} calls={llm['calls']} tokens_in={llm['tokens_in']} "
          f"tokens_out={llm['tokens_out']} usd={llm['usd']:.6f}{_shadow(s)}  wall={s['wall_s']:.1f}s")
    for line in health_lines(s):
        print(line, file=sys.stderr)
    for line in _story(res):
        print(line)
    if res.dir:
        print(f"run directory: {res.dir}")
        print(f"dashboard: agora dashboard --runs {Path(res.dir).parent}   (then open the address it prints)")
    return 0


def _story(res) -> list[str]:
    """The environment's story of the run (``Environment.story``); never breaks the end of a run."""
    from environments.registry import env_class

    cls = env_class(res.summary["env"])
    if not cls.reads_events:  # its story is empty, and a long run's log is not loaded just to say so
        return []
    try:
        return cls.story(res.events)
    except Exception:  # noqa: BLE001 - a story is a courtesy
        return []


def _shadow(s: dict) -> str:
    """' (shadow USD)' when the run's prices are shadow prices (a local model costs no cash)."""
    unit = (s.get("llm") or {}).get("usd_unit")
    return f" ({unit})" if unit and unit != "USD" else ""


def health_lines(s: dict) -> list[str]:
    """The run's model decisions that fell back or were cut, loudly: a degraded run is not an LLM result."""
    llm = s.get("llm") or {}
    out = []
    share, n = llm.get("fallback_share"), llm.get("decisions") or 0
    if share:
        roles = ", ".join(f"{r} {v:.0%}" for r, v in (llm.get("fallback_share_by_role") or {}).items())
        why = ", ".join(f"{k} {v}" for k, v in (llm.get("fallback_reasons") or {}).items())
        head = "DEGRADED" if s.get("status") == "degraded" else "warning"
        out.append(f"{head}: {share:.0%} of {n} model decisions were answered by the scripted fallback "
                   f"(threshold {llm.get('fallback_threshold', 0.5):.0%}; by role: {roles or 'n/a'}; why: {why or 'n/a'})")
        if s.get("status") == "degraded":
            out.append("DEGRADED: this run is left out of LLM aggregates (agora report --include-degraded shows it)")
    if llm.get("truncated"):
        out.append(f"warning: {llm['truncated']} replies were cut by the output cap (ledger outcome truncated)")
    return out


def _headline(outcome: dict) -> dict:
    keys = list(outcome)[:6]
    return {k: outcome[k] for k in keys}


def _replay(path: str, out: str, overwrite: bool = False) -> int:
    from sim.inference.errors import ReplayMiss
    from sim.runner import RunFailed, load_run, replay

    try:
        res = replay(path, out, overwrite=overwrite)
    except RunFailed as e:
        cause = e.error or e.__cause__
        if isinstance(cause, (ReplayMiss, ValueError)):  # a missing recorded reply names the call
            return _err(str(cause))
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

    t = Table(title=f"Estimate: {est['env']} on {est['provider']} (prices {est['price_version']}), "
                    f"{est['seeds']} seeds")
    for c in ("seed", "ticks", "calls", "tokens_in", "tokens_out", "usd", *(("wall_s",) if est["speed"] else ())):
        t.add_column(c, justify="right")
    for g in est["games"]:
        t.add_row(str(g["seed"]), str(g["ticks"]), f"{g['calls']:.0f}", f"{g['tokens_in']:.0f}", f"{g['tokens_out']:.0f}",
                  f"{g['usd']:.6f}", *((f"{g['wall_s']:.0f}",) if est["speed"] else ()))
    Console(width=200).print(t)

    def rng(key: str, fmt: str) -> str:
        lo, hi = est[f"{key}_range"]
        return f"{key}={format(est[key], fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"

    print(f"projected (median [min, max] over {est['seeds']} seeds): " + " ".join(
        rng(k, f) for k, f in (("ticks", "g"), ("calls", ".0f"), ("tokens_in", ".0f"), ("tokens_out", ".0f"),
                               ("usd", ".6f"))))
    q = est.get("usd_quantiles")
    if q:
        print(f"USD per game P10={q['p10']:.6f} P50={q['p50']:.6f} P90={q['p90']:.6f} over {est['seeds']} seeds x "
              f"{est['draws']} draws of output tokens (log-normal; oracle tiers their own, else sigma "
              f"{est['output_sigma']:g}); mean {est['usd_mean_sampled']:.6f}")
    for w in est.get("warnings") or ():
        print(f"warning: {w}")
    print(f"re-asks: {est['reask_rate']:.0%} invalid replies assumed -> {est['expected_reasks_per_call']:.3f} "
          f"re-asks per call, included above")
    if est["speed"]:
        sp = est["speed"]
        print(f"wall time (local model): {rng('wall_s', '.0f')} s at {sp['prompt_tps']:g} prompt and "
              f"{sp['grammar_tps']:g} structured-output tokens/s ({sp['source']})")


def _multirun(overrides: list[str]) -> int:
    """Delegate sweeps to Hydra's multirun and its launchers (joblib, ray)."""
    from sim.config import CONF_DIR, as_hydra
    from sim.montecarlo import cli_batch
    from sim.sweep import check_sweep, hydra_main

    check_sweep(overrides)  # every point, before Hydra creates the sweep folder
    done = cli_batch(overrides)  # a seed sweep with run.dir=null: in-process games, one frame, no files
    if done is not None:
        return done
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
