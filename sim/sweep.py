"""Hydra multirun entry: each job is one run in its own run directory.

Sweep budget (``budget.sweep_usd``): one cap on the total spend of all jobs
of a sweep, on top of each run's own ``budget.run_usd``. The jobs share an
account file, ``<hydra.sweep.dir>/sweep_budget.json``, guarded by an
exclusive ``flock``; before it starts, a job reserves its run cap from what
is left of the sweep (``min(run_usd, left)``) and that reservation becomes
the run's ``run_usd``, which the metered client never overshoots. When the
job ends, its reservation is replaced by what it actually spent (from its
ledger totals), so the unspent part goes back to the sweep. Hence the total
spend of a sweep never exceeds ``sweep_usd``, whatever the launcher's
parallelism. A job that finds less than its full run cap left waits while
sibling jobs still hold reservations (they may hand some back); if nothing
at all is left it still runs, with ``run_usd=0`` and ``on_exhaust=halt``,
so it ends at its first LLM call as ``aborted_budget`` and is never
counted as a played game. The account file must be on a filesystem all
jobs share (true for joblib and for Ray on one machine).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import hydra
from omegaconf import DictConfig

ACCOUNT = "sweep_budget.json"
WAIT_POLL_S = 0.5
MAX_CHECKED = 2_000  # sweep points validated before launch; beyond that, each value once (see check_sweep)


def check_sweep(overrides: list[str]) -> int:
    """Validate every point of an ``agora run -m`` sweep before Hydra starts; returns how many were checked.

    Hydra would create the sweep folder and then fail inside a job with its own
    traceback; here each point is composed and checked like a single run
    (``sim.config.preflight``), so a bad value or unknown key is one line and
    nothing is written. Config-group sweeps (``env=market,traitors``) are
    composed once per combination; value sweeps (``seed=range(20)``) are set
    on the composed config, which is cheap, so every point is checked unless
    there are more than MAX_CHECKED, in which case every value of every swept
    key is checked once.
    """
    import copy
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sim.config import ConfigError, apply_aliases, check_path, compose, group_options, preflight, short, to_dict

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except Exception as e:  # noqa: BLE001 - Hydra's parse errors span several lines
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot parse overrides: {short(first, 200)}") from None
    fixed: list[str] = []  # override text, as Hydra's basic sweeper builds each job's overrides
    group_sweeps: list[list[str]] = []
    value_sweeps: list[tuple[str, str, list]] = []  # (key, first value as text, typed values)
    for o in parsed:
        name = o.key_or_group
        if name.split(".")[0].split("/")[0] == "hydra":
            continue  # Hydra's own settings (launcher, sweep dir): not part of the run config
        key = o.get_key_element()
        if not o.is_sweep_override():
            fixed.append(f"{key}={o.get_value_element_as_str()}")
        elif not o.is_discrete_sweep():
            raise ConfigError(f"{key}: interval sweeps need an optimizing sweeper; list the values or use range()")
        elif "." not in name and name.isidentifier() and group_options(name):
            group_sweeps.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            texts = list(o.sweep_string_iterator())
            if texts:
                value_sweeps.append((key, texts[0], list(o.sweep_iterator())))
    n_points = 1
    for n in [len(g) for g in group_sweeps] + [len(v) for _, _, v in value_sweeps]:
        n_points *= max(1, n)
    if n_points <= MAX_CHECKED:
        value_points = list(itertools.product(*[[(k, v) for v in vals] for k, _, vals in value_sweeps]))
    else:  # each value of each swept key once, the other keys at their first value
        value_points = [((k, v),) for k, _, vals in value_sweeps for v in vals] or [()]
    checked = 0
    for groups in itertools.product(*group_sweeps):
        # composing with each value sweep at its first value finds unknown keys and bad groups
        base = to_dict(compose([*fixed, *groups, *(f"{k}={first}" for k, first, _ in value_sweeps)]))
        for point in value_points:
            cfg = copy.deepcopy(base)  # plain data: conf/ has no interpolations to re-resolve
            for k, v in point:
                _set(cfg, k.lstrip("+~"), v)
            apply_aliases(cfg)
            preflight(cfg)
            run_dir = (cfg.get("run") or {}).get("dir")
            if run_dir not in (None, "auto", "null", "None", ""):
                check_path(Path(str(run_dir)), "run.dir")
            checked += 1
    return checked


def _set(d: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for k in parents:
        d = d.setdefault(k, {})
    d[last] = value


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from sim.config import apply_aliases, to_dict, validate
    from sim.runner import RunFailed, run_config

    d = to_dict(cfg)
    apply_aliases(d)
    # `agora run -m` checked every point before launch (check_sweep); this guards direct use and fills defaults
    d = to_dict(validate(d))
    hc = HydraConfig.get()
    if d["run"].get("dir") == "auto":
        d["run"]["dir"] = hc.runtime.output_dir
    elif d["run"].get("dir") not in (None, "null", "None", ""):
        # a fixed run.dir would be shared by every job of the sweep: one sub-folder per job
        d["run"]["dir"] = str(Path(d["run"]["dir"]) / str(hc.job.num))
    sweep_usd = d["budget"].get("sweep_usd")
    account = Path(str(hc.sweep.dir)) / ACCOUNT if sweep_usd is not None else None
    note, job = "", None
    if account is not None:
        job, grant = reserve(account, str(hc.job.num), sweep_usd, d["budget"].get("run_usd"))
        d["budget"]["run_usd"] = grant / 1e9
        if grant == 0:
            d["budget"]["on_exhaust"] = "halt"
        note = f" sweep_budget: granted run_usd={grant / 1e9:.9f} of sweep_usd={sweep_usd}"
    spent = None
    try:
        res = run_config(d, progress=False)
        spent = int(res.summary["llm"]["cost_nano"])
    except RunFailed as e:
        spent = int(e.result.summary["llm"]["cost_nano"])
        raise
    finally:
        if account is not None:
            settle(account, job, spent)
    s = res.summary
    print(f"[job] {s['env']} seed={s['seed']} status={s['status']} dir={res.dir}{note}")
    return None


# ----------------------------------------------------------------- sweep budget account
def _nano(usd: float | None) -> int | None:
    from sim.inference.prices import usd_to_nano

    return usd_to_nano(usd)


@contextmanager
def _locked(account: Path) -> Iterator[dict]:
    """The account's contents under an exclusive lock; written back on exit."""
    account.parent.mkdir(parents=True, exist_ok=True)
    with open(account.with_suffix(".lock"), "a+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        try:
            state = json.loads(account.read_text()) if account.exists() else {}
            state.setdefault("jobs", {})
            yield state
            tmp = account.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
            os.replace(tmp, account)
        finally:
            fcntl.flock(lk, fcntl.LOCK_UN)


def _alive(job: dict) -> bool:
    if job.get("host") != socket.gethostname():
        return True  # cannot tell from here: keep its reservation
    try:
        os.kill(int(job["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError):
        return True
    return True


def committed_nano(state: dict) -> tuple[int, int]:
    """(nano-USD committed by all jobs, number of other jobs still holding a reservation).

    A finished job counts what it spent; a running one its reservation. A job
    whose process died without settling keeps its whole reservation (its
    spend is unknown, so the conservative figure is used).
    """
    total, running = 0, 0
    for j in state["jobs"].values():
        if j["state"] == "done":
            total += int(j["spent_nano"])
        else:
            total += int(j["reserved_nano"])
            if j["state"] == "running" and _alive(j):
                running += 1
    return total, running


def reserve(account: Path, job: str, sweep_usd: float, run_usd: float | None,
            poll_s: float = WAIT_POLL_S) -> tuple[str, int]:
    """Reserve this job's run cap from the sweep budget: (account key, grant in nano-USD).

    The key is the Hydra job number; a job number already in the account (the
    same sweep folder used again) gets a suffix, so earlier spend stays counted.
    """
    limit = _nano(sweep_usd)
    cap = _nano(run_usd)
    while True:
        with _locked(account) as st:
            st["sweep_usd"] = sweep_usd
            st["sweep_nano"] = limit
            used, running = committed_nano(st)
            left = max(0, limit - used)
            want = left if cap is None else min(cap, left)
            if (cap is not None and left >= cap) or running == 0:
                key, n = job, 1
                while key in st["jobs"]:
                    key, n = f"{job}.{n}", n + 1
                st["jobs"][key] = {"state": "running", "reserved_nano": want, "spent_nano": 0,
                                   "pid": os.getpid(), "host": socket.gethostname(), "t": time.time()}
                return key, want
        time.sleep(poll_s)  # siblings hold reservations they may partly hand back


def settle(account: Path, job: str, spent_nano: int | None) -> None:
    """Replace the job's reservation by its actual spend (None: unknown, keep the reservation)."""
    with _locked(account) as st:
        j = st["jobs"].get(job)
        if j is None:
            return
        j["state"] = "done"
        j["spent_nano"] = int(j["reserved_nano"] if spent_nano is None else spent_nano)
        j["pid"] = None
