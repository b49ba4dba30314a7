"""Agora engine. Python API: ``sim.run(overrides)``, ``sim.run_many(...)``, ``sim.run_batch(...)``."""
from __future__ import annotations


def run(overrides=(), **kw):
    from sim.runner import run as _run

    return _run(overrides, **kw)


def run_many(overrides, seeds, workers: int = 1):
    from sim.runner import run_many as _rm

    return _rm(overrides, seeds, workers)


def run_batch(overrides, seeds, workers: int = 1):
    """Many small in-memory games of one config: a polars frame with one outcome row per seed."""
    from sim.montecarlo import run_batch as _rb

    return _rb(overrides, seeds, workers)


def __getattr__(name):
    if name in ("RunResult", "RunFailed", "resume", "replay", "estimate", "load_run"):
        import sim.runner as r

        return getattr(r, name)
    raise AttributeError(name)
