"""Run directory: atomic writes of Parquet/JSON, per-tick parts, checkpoints.

Layout::

    config.yaml        resolved config (no secrets)
    summary.json       status, totals, outcome
    events.parquet     the event log         (compacted at the end)
    ledger.parquet     one row per LLM attempt
    metrics.parquet    one row per tick of environment metrics
    llm_cache.jsonl    content-addressed recorded replies (record/replay)
    parts/             per-tick Parquet parts written while running
    checkpoints/       pickled state after each tick (latest kept)

Every file is written to a temporary name in the same folder, then renamed:
a crash leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import polars as pl


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


def atomic_write_parquet(path: Path, df: pl.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_parts(folder: Path, prefix: str) -> pl.DataFrame | None:
    files = sorted(folder.glob(f"{prefix}-*.parquet"))
    if not files:
        return None
    return pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")


class RunDir:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.parts = self.path / "parts"
        self.ckpt = self.path / "checkpoints"

    def create(self) -> "RunDir":
        self.parts.mkdir(parents=True, exist_ok=True)
        self.ckpt.mkdir(parents=True, exist_ok=True)
        return self

    # --- incremental parts -------------------------------------------------
    def write_part(self, name: str, tick: int, df: pl.DataFrame) -> None:
        if df.height:
            atomic_write_parquet(self.parts / f"{name}-{tick:07d}.parquet", df)

    def drop_parts_after(self, tick: int) -> None:
        for f in self.parts.glob("*-*.parquet"):
            if int(f.stem.rsplit("-", 1)[1]) > tick:
                f.unlink()

    def read_table(self, name: str) -> pl.DataFrame | None:
        """The compacted table if present, else the parts written so far."""
        final = self.path / f"{name}.parquet"
        if final.exists():
            return pl.read_parquet(final)
        return read_parts(self.parts, name)

    # --- checkpoints -------------------------------------------------------
    def write_checkpoint(self, tick: int, state: dict[str, Any]) -> None:
        atomic_write_bytes(self.ckpt / "latest.pkl", pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))

    def read_checkpoint(self) -> dict[str, Any] | None:
        f = self.ckpt / "latest.pkl"
        if not f.exists():
            return None
        with open(f, "rb") as fh:
            return pickle.load(fh)

    def summary(self) -> dict[str, Any] | None:
        f = self.path / "summary.json"
        return json.loads(f.read_text()) if f.exists() else None
