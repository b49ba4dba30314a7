"""Phase wall time with N agents deciding at once, through the real engine and client.

    python benchmarks/concurrency.py            # 5 ticks
    python benchmarks/concurrency.py --quick    # 2 ticks, 30 players

A Traitors run with llm=openai pointed at the loopback server (50 ms per reply): every
belief/vote phase issues one call per living player via ``Environment.act_all``. Events
carry no timestamps, so ``act_all`` is wrapped to time each batch. Run once with
engine.concurrency = llm.concurrency = N and once with 1; the figures are the batch
wall over one call's latency and the speed-up of concurrent over sequential.
Traitors caps env.n_players at 60, so N = 60 here rather than 100
(30 with --quick).
On 2 cores the client and the stub share the CPU: see client_overhead.py's raw_gather_s.
Figures are printed last as ``name: value`` lines.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

import sim  # noqa: E402
from sim.engine import Environment  # noqa: E402
from sim.testing.loopback import LoopbackServer  # noqa: E402

LATENCY_S = 0.05


class BatchTimer:
    """Wraps ``Environment.act_all`` to record (requests, seconds, prompt-build seconds) per batch.

    Prompt building (``_chat_request``) runs serially before the calls are gathered, so it is
    timed apart: batch minus build is the part concurrency can shrink. Restores on exit.
    """

    def __init__(self) -> None:
        self.batches: list[tuple[int, float, float]] = []
        self._orig = None
        self._orig_build = None
        self._build_s = 0.0

    def __enter__(self) -> "BatchTimer":
        self._orig = orig = Environment.act_all
        self._orig_build = build = Environment._chat_request
        timer = self

        def timed(env, requests):
            timer._build_s = 0.0
            t0 = time.perf_counter()
            try:
                return orig(env, requests)
            finally:
                timer.batches.append((len(requests), time.perf_counter() - t0, timer._build_s))

        def timed_build(env, r, call_id, *rest):
            t0 = time.perf_counter()
            try:
                return build(env, r, call_id, *rest)
            finally:
                timer._build_s += time.perf_counter() - t0

        Environment.act_all = timed
        Environment._chat_request = timed_build
        return self

    def __exit__(self, *exc: object) -> None:
        Environment.act_all = self._orig
        Environment._chat_request = self._orig_build


def overrides(base_url: str, n: int, ticks: int, conc: int) -> list[str]:
    return ["env=traitors", "llm=openai", f"llm.base_url={base_url}", "llm.api_key_env=null", "llm.model=bench",
            f"llm.concurrency={conc}", f"engine.concurrency={conc}", f"env.n_players={n}",
            f"env.n_traitors={max(1, n // 10)}", "env.discussion_passes=0", "env.reactions=false",
            "env.conclave=false", "agent.reflection.enabled=false", f"env.max_rounds={ticks}", "run.dir=null",
            "llm.cache.mode=off", "budget=unlimited", "run.checkpoint=false", "llm.rate_limit.rpm=null",
            "llm.rate_limit.tpm=null", "seed=1"]


def measure(base_url: str, n: int, ticks: int, conc: int) -> dict[str, float]:
    """Run once; summarise the batches that asked at least half the players at once."""
    with BatchTimer() as bt:
        res = sim.run(overrides(base_url, n, ticks, conc), progress=False)
    big = [(k, s, b) for k, s, b in bt.batches if k >= n // 2]
    calls = int((res.ledger["outcome"] == "ok").sum()) if res.ledger.height else 0
    return {"wall_s": float(res.summary["wall_s"]), "ticks": float(res.summary["ticks"]), "ok_calls": float(calls),
            "big_batches": float(len(big)), "big_batch_mean_s": statistics.fmean(s for _, s, _ in big) if big else 0.0,
            "big_batch_build_mean_s": statistics.fmean(b for _, _, b in big) if big else 0.0,
            "big_batch_mean_size": statistics.fmean(k for k, _, _ in big) if big else 0.0,
            "ledger_rows": float(res.ledger.height)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--players", type=int, default=None, help="default 60 (traitors' cap); --quick 30")
    a = ap.parse_args(argv)
    ticks = 2 if a.quick else 5
    if a.players is None:
        a.players = 30 if a.quick else 60  # 30 keeps --quick near a minute on a shared 2-core box
    with LoopbackServer(latency_s=LATENCY_S) as srv:
        conc = measure(srv.base_url, a.players, ticks, a.players)
        seq = measure(srv.base_url, a.players, ticks, 1)
    one = seq["big_batch_mean_s"] / seq["big_batch_mean_size"] if seq["big_batch_mean_size"] else float("nan")
    figs = {"players": float(a.players), "latency_ms": LATENCY_S * 1e3, "one_call_s_measured": one}
    figs.update({f"concurrent_{k}": v for k, v in conc.items()})
    figs.update({f"sequential_{k}": v for k, v in seq.items()})
    figs["batch_wall_over_latency_ratio"] = conc["big_batch_mean_s"] / LATENCY_S
    figs["batch_wall_over_one_call_ratio"] = conc["big_batch_mean_s"] / one if one == one else float("nan")
    figs["batch_speedup_over_sequential"] = (seq["big_batch_mean_s"] / conc["big_batch_mean_s"]
                                            if conc["big_batch_mean_s"] else float("nan"))
    c_calls = conc["big_batch_mean_s"] - conc["big_batch_build_mean_s"]
    s_calls = seq["big_batch_mean_s"] - seq["big_batch_build_mean_s"]
    figs["calls_only_speedup_over_sequential"] = s_calls / c_calls if c_calls > 0 else float("nan")
    figs["calls_only_wall_over_latency_ratio"] = c_calls / LATENCY_S
    figs["run_speedup_over_sequential"] = seq["wall_s"] / conc["wall_s"] if conc["wall_s"] else float("nan")
    print("# concurrency (traitors via llm=openai -> loopback 50 ms; batch = one act_all of >= n/2 calls)")
    for k, v in figs.items():
        print(f"{k}: {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
