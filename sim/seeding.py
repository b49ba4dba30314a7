"""One root seed; every other stream is derived from it by name.

Streams are keyed by stable names (agent id, phase, tick), never by creation
order, so adding an agent or a phase does not shift anyone else's randomness.
"""
from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(root: int, *names: object) -> int:
    h = hashlib.sha256(str(int(root)).encode())
    for n in names:
        h.update(b"\x1f")
        h.update(str(n).encode())
    return int.from_bytes(h.digest()[:8], "little") & ((1 << 63) - 1)


def np_rng(root: int, *names: object) -> np.random.Generator:
    return np.random.default_rng(derive_seed(root, *names))
