"""Streams: N seeded generators drawn in lockstep give exactly what NumPy's default_rng gives."""
from __future__ import annotations

import numpy as np
import pytest

from sim.seeding import derive_seed, np_rng
from sim.streams import Streams, derive_seeds


def test_derive_seeds_matches_derive_seed():
    keys = ["t0", "t17", 3, "p10"]
    got = derive_seeds(42, ("policy", 7), keys)
    assert got.tolist() == [derive_seed(42, "policy", 7, k) for k in keys]


# (SMALL, SEED_ARRAYS_FROM): draws as arrays; Python ints seeded in Python; Python ints seeded as arrays
PATHS = {"arrays": (0, 0), "python-ints": (10_000, 10_000), "array-seeded-ints": (10_000, 0)}


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("seeds", [[0, 1, 2**32 - 1, 2**32, 2**63 - 1], list(range(1000, 1300))])
def test_mixed_draws_match_numpy_bit_for_bit(seeds, path, monkeypatch):
    # every implementation, whatever the stream count
    monkeypatch.setattr("sim.streams.SMALL", PATHS[path][0])
    monkeypatch.setattr("sim.streams.SEED_ARRAYS_FROM", PATHS[path][1])
    ref = [np.random.default_rng(s) for s in seeds]
    st = Streams(np.array(seeds, dtype=np.uint64))
    rs = np.random.default_rng(0)
    for step in range(40):
        op = step % 4
        m = rs.random(len(seeds)) < 0.7  # a subset of streams draws each time
        if op == 0:
            got = st.random(m)
            want = [g.random() for g, k in zip(ref, m) if k]
        elif op == 1:
            n = rs.integers(1, 12, m.sum())
            got = st.integers(n, m=m)
            want = [int(g.integers(k)) for g, k in zip([g for g, k in zip(ref, m) if k], n)]
        elif op == 2:
            lo, hi = 1, int(rs.integers(2, 300))
            got = st.integers(lo, hi, m=m)
            want = [int(g.integers(lo, hi)) for g, k in zip(ref, m) if k]
        else:  # a range near 2^32 makes Lemire's rejection loop run
            hi = 3_000_000_000
            got = st.integers(0, hi, m=m)
            want = [int(g.integers(0, hi)) for g, k in zip(ref, m) if k]
        assert list(np.asarray(got).tolist()) == want, f"step {step}"


def test_named_streams_are_the_agents_np_rng():
    st = Streams.named(9, ("vote", "banish", 3), ["p1", "p2", "p3"])
    assert st.integers(7).tolist() == [int(np_rng(9, "vote", "banish", 3, p).integers(7)) for p in ["p1", "p2", "p3"]]


def test_bad_range_is_refused():
    with pytest.raises(ValueError):
        Streams(np.array([1], dtype=np.uint64)).integers(0)


@pytest.mark.parametrize("path", list(PATHS))
def test_random_runs_are_each_streams_successive_draws(path, monkeypatch):
    monkeypatch.setattr("sim.streams.SMALL", PATHS[path][0])
    monkeypatch.setattr("sim.streams.SEED_ARRAYS_FROM", PATHS[path][1])
    seeds, counts = [5, 2**40 + 3, 77, 2**63 - 2], [3, 0, 7, 1]
    got = Streams(np.array(seeds, dtype=np.uint64)).random_runs(counts)
    assert got == [[g.random() for _ in range(c)] for g, c in
                   zip([np.random.default_rng(s) for s in seeds], counts)]


@pytest.mark.parametrize("n", [3, 40])  # seeded in Python ints / as arrays
def test_module_random_runs_are_each_agents_np_rng_runs(n):
    """``random_runs`` (one Generator, its state set per stream) draws what each agent's own rng draws."""
    from sim.streams import random_runs

    keys = [f"p{i}" for i in range(n)]
    counts = [(i * 7) % 13 for i in range(n)]  # zero-length runs included
    got = random_runs(5, ("tells", 3), keys, counts)
    want = np.concatenate([np_rng(5, "tells", 3, k).random(c) for k, c in zip(keys, counts)])
    assert np.array_equal(got, want)
    g = np_rng(5, "tells", 3, "p1")  # a run is the same as successive scalar draws
    assert np.array_equal([g.random() for _ in range(9)], np_rng(5, "tells", 3, "p1").random(9))
