"""Retrieval latency of the agent memory stream, and how it scales with stream size.

    python benchmarks/memory_retrieval.py            # 1k and 10k memories
    python benchmarks/memory_retrieval.py --n 50000  # 1k and 50k
    python benchmarks/memory_retrieval.py --quick

Memories are synthetic Traitors-style lines embedded with the lexical embedder. Each retrieval
embeds its query, scores every memory (recency + importance + relevance) and takes the top k;
the figure is the median over repeats (time.perf_counter). The ratio large/small is printed last:
near 1 means per-call overhead dominates, near n_large/n_small means the scan does.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

from agents.memory import MemoryStream  # noqa: E402

PLAYERS = [f"p{i}" for i in range(1, 13)]
VERBS = ["trusts", "suspects", "accuses", "defends", "voted to banish", "whispered to", "ignored", "questioned"]
TAILS = ["at the round table", "after breakfast", "during the conclave", "near the castle gate",
         "with no evidence", "because of the shield", "while others laughed", ""]
QUERIES = ["who suspects p3", "p5 voted to banish p2", "the conclave at night", "who defends p7 at the round table"]


def synthetic_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"[t{i // 20} speech] {rng.choice(PLAYERS)}: {rng.choice(VERBS)} {rng.choice(PLAYERS)} "
            f"{rng.choice(TAILS)}".rstrip() for i in range(n)]


def build_stream(n: int, seed: int) -> tuple[MemoryStream, float]:
    """A stream of n memories (20 per tick) and the seconds it took to build."""
    rng = random.Random(seed + 1)
    lines = synthetic_lines(n, seed)
    t0 = time.perf_counter()
    m = MemoryStream(capacity=64)
    m.extend(lines, [i // 20 for i in range(n)], [rng.uniform(0, 10) for _ in range(n)])
    return m, time.perf_counter() - t0


def time_retrieval(m: MemoryStream, repeats: int, k: int) -> float:
    """Median seconds per ``retrieve`` call; ``now`` advances so access updates matter."""
    now0 = m.record(len(m) - 1).tick + 1  # ticks are appended in order here
    for q in QUERIES:  # warm-up (lru cache of term hashes, numpy dispatch)
        m.retrieve(q, now0, k)
    times = []
    for r in range(repeats):
        q = QUERIES[r % len(QUERIES)]
        t0 = time.perf_counter()
        m.retrieve(q, now0 + r, k)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="size of the large stream")
    ap.add_argument("--small", type=int, default=1_000, help="size of the small stream")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="fewer repeats (CI smoke run)")
    a = ap.parse_args(argv)
    repeats = 30 if a.quick else a.repeats

    per_call = {}
    for n in (a.small, a.n):
        m, build_s = build_stream(n, a.seed)
        per_call[n] = time_retrieval(m, repeats, a.k)
        print(f"n={n:>7,}  build {build_s * 1e3:8.1f} ms ({build_s / n * 1e6:.1f} us/memory)  "
              f"retrieve k={a.k}: {per_call[n] * 1e3:.3f} ms (median of {repeats})")
    print(f"ratio {a.n}/{a.small}: {per_call[a.n] / per_call[a.small]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
