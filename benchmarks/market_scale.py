"""A long scripted market: tick time at tick 10 vs the last tick, and the process's peak RSS.

    python benchmarks/market_scale.py --traders 1000 --ticks 1000            # in memory (run.dir=null)
    python benchmarks/market_scale.py --traders 1000 --ticks 1000 --dir      # parts + checkpoint per tick
    python benchmarks/market_scale.py --traders 10000 --ticks 1000 --dir     # the bounded-memory target
    python benchmarks/market_scale.py --quick

Runs one asset market (trader_policy=mix: fundamental, momentum and ZI-C traders) through the
session API and times every tick. ``tick_ratio`` is the median of ticks 1,000-ish (the last
``--window``) over the median around tick 10 (targets: <= 1.2 for 1,000 traders; peak RSS
under 2 GiB for 10,000 traders x 1,000 ticks); ``tick_ratio_mean`` is the same with means
over ``--mean-window`` ticks, which counts the ticks that wrote a checkpoint (``--dir`` writes
one when due: a bounded share of the run's time). ``--dir`` writes a run folder in a temporary
directory (removed afterwards). Figures last.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traders", type=int, default=1000)
    ap.add_argument("--ticks", type=int, default=1000)
    ap.add_argument("--dir", action="store_true", help="write a run folder: parts every tick, checkpoints when due")
    ap.add_argument("--window", type=int, default=10, help="ticks in each median")
    ap.add_argument("--mean-window", type=int, default=100, help="ticks in each mean (tick_ratio_mean)")
    ap.add_argument("--reference", action="store_true", help="the per-agent path (engine.batch_scripted=false)")
    ap.add_argument("--quick", action="store_true", help="200 traders x 40 ticks")
    a = ap.parse_args(argv)
    traders, ticks = (200, 40) if a.quick else (a.traders, a.ticks)
    from sim.config import compose, to_dict
    from sim.runner import open_session

    tmp = tempfile.TemporaryDirectory(prefix="agora-scale-") if a.dir else None
    over = ["env=market", "llm=scripted", f"env.n_traders={traders}", f"env.ticks={ticks}", "env.trader_policy=mix",
            "agent.reflection.enabled=false", "seed=1", f"run.max_ticks={ticks}",
            f"engine.batch_scripted={'false' if a.reference else 'true'}",
            f"run.dir={tmp.name + '/run' if tmp else 'null'}", f"run.checkpoint={'true' if a.dir else 'false'}"]
    t_all = time.perf_counter()
    session = open_session(to_dict(compose(over)))
    t0 = time.perf_counter()
    session.start()
    setup_s = time.perf_counter() - t0
    times: list[float] = []
    ckpt = session.rd.ckpt / "latest.ckpt" if session.rd else None
    stamps, checkpoints = set(), 0
    more = True
    while more:
        t0 = time.perf_counter()
        more = session.step()
        times.append(time.perf_counter() - t0)
        if ckpt is not None and ckpt.exists():
            st = ckpt.stat().st_mtime_ns
            checkpoints += st not in stamps
            stamps.add(st)
    t0 = time.perf_counter()
    res = session.finish()
    finish_s = time.perf_counter() - t0
    wall = time.perf_counter() - t_all
    w = max(1, min(a.window, len(times) // 4))
    early = times[max(0, 10 - w // 2 - 1):max(0, 10 - w // 2 - 1) + w]  # around tick 10
    late = times[-w:]
    m_early, m_late = statistics.median(early), statistics.median(late)
    mw = max(1, min(a.mean_window, len(times) // 4))
    mean_early, mean_late = statistics.fmean(times[:mw]), statistics.fmean(times[-mw:])
    print(f"# market_scale: {traders} traders x {len(times)} ticks, "
          f"{'run folder, parts per tick, checkpoints when due' if a.dir else 'in memory (run.dir=null)'}, "
          f"{'per-agent reference path' if a.reference else 'batch path'}; status {res.summary['status']}")
    if tmp:
        tmp.cleanup()
    print(f"traders: {traders}")
    print(f"ticks: {len(times)}")
    print(f"setup_s: {setup_s:.2f}")
    print(f"finish_s: {finish_s:.2f}")
    print(f"wall_s: {wall:.2f}")
    print(f"tick_10_ms: {m_early * 1e3:.2f}")
    print(f"tick_last_ms: {m_late * 1e3:.2f}")
    print(f"tick_ratio: {m_late / m_early:.3f}")
    print(f"tick_ratio_mean: {mean_late / mean_early:.3f}  (first {mw} ticks vs last {mw}, checkpoint ticks included)")
    if ckpt is not None:
        print(f"checkpoints_after_ticks: {checkpoints}")
    print(f"agent_steps_per_s: {traders * len(times) / sum(times):.0f}")
    print(f"peak_rss_mib: {peak_rss_mib():.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
