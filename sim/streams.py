"""Many seeded streams drawn in lockstep: ``np_rng(root, *names)`` for N agents at once.

``sim.seeding.np_rng`` gives every agent its own ``np.random.default_rng`` per
decision (seed = sha256 of the names). Creating one Generator costs ~20 us, more
than the decision itself, so a phase of 1,000 scripted agents spent most of its
time building generators. ``Streams`` holds N such generators as arrays (NumPy's
SeedSequence mixing, the PCG64 (XSL-RR) state, its buffered 32-bit half) and
draws one value per stream per call, bit for bit what each Generator would
return for the same call sequence (tests/sim/test_streams.py checks this against
NumPy). Only the draws the scripted policies use are here: ``random()`` and
``integers(n)`` / ``integers(low, high)`` with 32-bit ranges.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

import numpy as np

U32 = np.uint32
U64 = np.uint64
_M32 = U64(0xFFFFFFFF)
# numpy/random/bit_generator.pyx (SeedSequence)
_INIT_A, _MULT_A = 0x43B0D7E5, 0x931E8875
_INIT_B, _MULT_B = 0x8B51F9DD, 0x58F38DED
_MIX_L, _MIX_R = U32(0xCA01F9DD), U32(0x4973F715)
_XSHIFT = U32(16)
# numpy/random/src/pcg64/pcg64.h: PCG_DEFAULT_MULTIPLIER_128
_MUL_HI, _MUL_LO = U64(0x2360ED051FC65DA4), U64(0x4385DF649FCCF645)
_TWO53 = 1.0 / 9007199254740992.0


def derive_seeds(root: int, prefix: Sequence[object], keys: Iterable[object]) -> np.ndarray:
    """``[derive_seed(root, *prefix, k) for k in keys]`` as uint64, hashing the prefix once."""
    h = hashlib.sha256(str(int(root)).encode())
    for n in prefix:
        h.update(b"\x1f")
        h.update(str(n).encode())
    copy = h.copy

    def head(k: object) -> bytes:  # the digest's first 8 bytes (a little-endian seed before the mask)
        hk = copy()
        hk.update(b"\x1f" + str(k).encode())
        return hk.digest()[:8]

    return np.frombuffer(b"".join(map(head, keys)), dtype="<u8").astype(U64) & U64((1 << 63) - 1)


def _mulhi64(a: np.ndarray, b: np.uint64) -> np.ndarray:
    """High 64 bits of a * b (uint64 arrays; numpy has no 128-bit product)."""
    a0, a1 = a & _M32, a >> U64(32)
    b0, b1 = b & _M32, b >> U64(32)
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    mid = (p00 >> U64(32)) + (p01 & _M32) + (p10 & _M32)
    return p11 + (p01 >> U64(32)) + (p10 >> U64(32)) + (mid >> U64(32))


def _hash_consts(init: int, mult: int, n: int) -> list[int]:
    """The hash constants SeedSequence uses, call by call (they never depend on the data)."""
    out, h = [], init
    for _ in range(n):
        out.append(h)
        h = (h * mult) & 0xFFFFFFFF
    return out


def _mul_consts(init: int, mult: int, n: int) -> np.ndarray:
    """The multiplier of each hashmix call: the constant after its update."""
    return np.array([(h * mult) & 0xFFFFFFFF for h in _hash_consts(init, mult, n)], dtype=U32)


_HA = np.array(_hash_consts(_INIT_A, _MULT_A, 16), dtype=U32)  # 4 pool fills + 12 mixing steps
_MA = _mul_consts(_INIT_A, _MULT_A, 16)
_HB = np.array(_hash_consts(_INIT_B, _MULT_B, 8), dtype=U32)[:, None]
_MB = _mul_consts(_INIT_B, _MULT_B, 8)[:, None]


def _hashmix(v: np.ndarray, k) -> np.ndarray:
    v = (v ^ _HA[k]) * _MA[k]
    return v ^ (v >> _XSHIFT)


def _seed_state(seeds: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """SeedSequence(seed).generate_state(4, uint64) for each 63-bit seed -> (state words, inc words).

    A seed is two 32-bit words (a seed below 2^32 is one word; the pool pads with 0, the same).
    """
    n = len(seeds)
    with np.errstate(over="ignore"):
        pool = np.empty((4, n), dtype=U32)
        pool[0] = _hashmix((seeds & _M32).astype(U32), 0)
        pool[1] = _hashmix((seeds >> U64(32)).astype(U32), 1)
        pool[2] = _hashmix(U32(0), 2)
        pool[3] = _hashmix(U32(0), 3)
        k = 4
        for src in range(4):  # every word mixed into every other, with the next three constants
            dst = [d for d in range(4) if d != src]
            v = _hashmix(pool[src][None, :], np.arange(k, k + 3)[:, None])
            k += 3
            r = _MIX_L * pool[dst] - _MIX_R * v
            pool[dst] = r ^ (r >> _XSHIFT)
        v = (pool[[0, 1, 2, 3, 0, 1, 2, 3]] ^ _HB) * _MB
        out = (v ^ (v >> _XSHIFT)).astype(U64)
    w = out[0::2] | (out[1::2] << U64(32))
    return (w[0], w[1]), (w[2], w[3])


# Up to this many streams, draws are plain Python integers: each NumPy call costs microseconds
# whatever its length, and a 10-player game's phase draws only a few values per stream. Seeding
# (SeedSequence's ~40 hash steps per stream) is done in Python below SEED_ARRAYS_FROM streams,
# in arrays from there on (one pass costs about as much as 15 streams in Python).
SMALL = 64
SEED_ARRAYS_FROM = 16
_M32I, _M64I, _M128I = (1 << 32) - 1, (1 << 64) - 1, (1 << 128) - 1
_MULI = (int(_MUL_HI) << 64) | int(_MUL_LO)
_HA_I = [(int(h), int(m)) for h, m in zip(_HA, _MA)]


def _hashmix_i(w: int, k: int) -> int:
    h, m = _HA_I[k]
    v = ((w ^ h) * m) & _M32I
    return v ^ (v >> 16)


_POOL23 = (_hashmix_i(0, 2), _hashmix_i(0, 3))  # the pool's padding words never depend on the seed
# (src, dst, hash constant, multiplier) of each mixing step, then (pool word, constant, multiplier) per output
_MIX_STEPS = [(s, d, *_HA_I[4 + 3 * s + j]) for s in range(4) for j, d in enumerate(x for x in range(4) if x != s)]
_OUT_STEPS = [(i & 3, int(h), int(m)) for i, (h, m) in enumerate(zip(_HB[:, 0], _MB[:, 0]))]


def _py_state(seed: int) -> tuple[int, int]:
    """(PCG64 state, increment) of ``default_rng(seed)``: ``_seed_state`` and the seeding, in plain ints."""
    p = [_hashmix_i(seed & _M32I, 0), _hashmix_i(seed >> 32, 1), *_POOL23]
    for s, d, h, m in _MIX_STEPS:
        v = ((p[s] ^ h) * m) & _M32I
        r = (0xCA01F9DD * p[d] - 0x4973F715 * (v ^ (v >> 16))) & _M32I
        p[d] = r ^ (r >> 16)
    o = []
    for s, h, m in _OUT_STEPS:
        v = ((p[s] ^ h) * m) & _M32I
        o.append(v ^ (v >> 16))
    initstate = o[0] << 64 | o[1] << 96 | o[2] | o[3] << 32
    inc = (o[4] << 65 | o[5] << 97 | o[6] << 1 | o[7] << 33 | 1) & _M128I  # initseq << 1 | 1
    # from state 0 one step gives inc; add the seed's state; step again
    return (((inc + initstate) & _M128I) * _MULI + inc) & _M128I, inc


class _PyStreams:
    """The same streams as plain Python integers (few streams: no per-call array overhead)."""

    def __init__(self, seeds: Sequence[int]):
        st = [_py_state(int(s)) for s in seeds]
        self.state = [s for s, _ in st]
        self.inc = [i for _, i in st]
        self.buf: list[int | None] = [None] * len(st)  # the buffered upper half of a 64-bit draw

    @classmethod
    def from_state(cls, hi: np.ndarray, lo: np.ndarray, inc_hi: np.ndarray, inc_lo: np.ndarray) -> "_PyStreams":
        """Streams already seeded as arrays (state and increment as 64-bit halves)."""
        self = cls([])
        self.state = [h << 64 | x for h, x in zip(hi.tolist(), lo.tolist())]
        self.inc = [h << 64 | x for h, x in zip(inc_hi.tolist(), inc_lo.tolist())]
        self.buf = [None] * len(self.state)
        return self

    def next64(self, i: int) -> int:
        s = (self.state[i] * _MULI + self.inc[i]) & _M128I
        self.state[i] = s
        hi = s >> 64
        x = hi ^ (s & _M64I)
        rot = hi >> 58
        return ((x >> rot) | (x << ((64 - rot) & 63))) & _M64I

    def next32(self, i: int) -> int:
        b = self.buf[i]
        if b is not None:
            self.buf[i] = None
            return b
        x = self.next64(i)
        self.buf[i] = x >> 32
        return x & _M32I

    def bounded(self, i: int, rng: int) -> int:
        """A value in [0, rng] (numpy's buffered Lemire for 32-bit ranges)."""
        excl = rng + 1
        m = self.next32(i) * excl
        left = m & _M32I
        if left < excl:
            thresh = (_M32I - rng) % excl
            while left < thresh:
                m = self.next32(i) * excl
                left = m & _M32I
        return m >> 32


class Streams:
    """N ``default_rng(seed)`` generators advanced together (one draw per stream per call)."""

    def __init__(self, seeds: np.ndarray):
        seeds = np.asarray(seeds, dtype=U64)
        self._n = len(seeds)
        self._py = None
        if self._n < SEED_ARRAYS_FROM:
            self._py = _PyStreams(seeds.tolist())
            return
        (s_hi, s_lo), (i_hi, i_lo) = _seed_state(seeds)
        # pcg_setseq_128_srandom_r: state = 0; inc = initseq << 1 | 1; step; state += initstate; step
        self.inc_hi = (i_hi << U64(1)) | (i_lo >> U64(63))
        self.inc_lo = (i_lo << U64(1)) | U64(1)
        self.hi, self.lo = self.inc_hi.copy(), self.inc_lo.copy()  # the first step from state 0
        lo = self.lo + s_lo
        self.hi = self.hi + s_hi + (lo < s_lo).astype(U64)
        self.lo = lo
        self._step()
        self.has32 = np.zeros(len(seeds), dtype=bool)
        self.buf32 = np.zeros(len(seeds), dtype=U64)
        if self._n <= SMALL:  # seeded as arrays (one pass beats N in Python), drawn as plain ints
            self._py = _PyStreams.from_state(self.hi, self.lo, self.inc_hi, self.inc_lo)

    @classmethod
    def continuing(cls, state: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray) -> "Streams":
        """Streams continuing from the seeded PCG states ``state`` (see ``state``) at ``rows``, drawn as
        plain integers: seed many streams in one array pass, then draw a few of them at a time."""
        st = cls(np.empty(0, dtype=U64))
        st._py = _PyStreams.from_state(*(a[rows] for a in state))
        st._n = len(rows)
        return st

    @property
    def state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(hi, lo, inc_hi, inc_lo): the PCG states of array-seeded streams (``continuing`` takes them)."""
        return self.hi, self.lo, self.inc_hi, self.inc_lo

    @property
    def plain(self) -> "_PyStreams | None":
        """The streams as plain Python integers, when they draw that way (small groups)."""
        return self._py

    @classmethod
    def named(cls, root: int, prefix: Sequence[object], keys: Iterable[object]) -> "Streams":
        """The streams ``np_rng(root, *prefix, k)`` for each ``k`` in ``keys``."""
        return cls(derive_seeds(root, prefix, keys))

    def __len__(self) -> int:
        return self._n

    def _step(self, m: np.ndarray | None = None) -> None:
        """state = state * MUL + inc (mod 2^128), for all streams or those in mask ``m``."""
        hi, lo = (self.hi, self.lo) if m is None else (self.hi[m], self.lo[m])
        ihi, ilo = (self.inc_hi, self.inc_lo) if m is None else (self.inc_hi[m], self.inc_lo[m])
        with np.errstate(over="ignore"):
            p_lo = lo * _MUL_LO
            n_hi = hi * _MUL_LO + lo * _MUL_HI + _mulhi64(lo, _MUL_LO)
            n_lo = p_lo + ilo
            n_hi = n_hi + ihi + (n_lo < p_lo).astype(U64)
        if m is None:
            self.hi, self.lo = n_hi, n_lo
        else:
            self.hi[m], self.lo[m] = n_hi, n_lo

    def _next64(self, m: np.ndarray | None = None) -> np.ndarray:
        self._step(m)
        hi, lo = (self.hi, self.lo) if m is None else (self.hi[m], self.lo[m])
        x = hi ^ lo
        rot = hi >> U64(58)
        return (x >> rot) | (x << ((U64(64) - rot) & U64(63)))

    def _next32(self, m: np.ndarray) -> np.ndarray:
        """next_uint32 for the streams in mask ``m`` (PCG64 hands out both halves of a 64-bit draw)."""
        idx = np.flatnonzero(m)
        out = np.empty(len(idx), dtype=U64)
        buffered = self.has32[idx]
        if buffered.any():
            b = idx[buffered]
            out[buffered] = self.buf32[b]
            self.has32[b] = False
        fresh = idx[~buffered]
        if len(fresh):
            fm = np.zeros(len(self), dtype=bool)
            fm[fresh] = True
            x = self._next64(fm)  # values in the order of ``fresh``
            out[~buffered] = x & _M32
            self.has32[fresh] = True
            self.buf32[fresh] = x >> U64(32)
        return out

    def random(self, m: np.ndarray | None = None) -> np.ndarray:
        """``rng.random()`` per stream (those in mask ``m``, in stream order)."""
        if self._py is not None:
            py = self._py
            idx = range(self._n) if m is None else np.flatnonzero(m).tolist()
            return np.array([(py.next64(i) >> 11) * _TWO53 for i in idx], dtype=np.float64)
        return (self._next64(m) >> U64(11)).astype(np.float64) * _TWO53

    def random_runs(self, counts: Sequence[int]) -> list[list[float]]:
        """``[[rng.random() for _ in range(c)] for each stream's count c]``: a run of draws per stream."""
        if self._py is not None:
            nxt = self._py.next64
            return [[(nxt(i) >> 11) * _TWO53 for _ in range(c)] for i, c in enumerate(counts)]
        k = max(counts, default=0)
        cols = np.zeros((len(self), k))
        cnt = np.asarray(counts)
        for j in range(k):  # column j: the j-th draw of every stream that takes one
            m = cnt > j
            cols[m, j] = self.random(None if m.all() else m)
        return [row[:c] for row, c in zip(cols.tolist(), counts)]

    def integers(self, low, high=None, m: np.ndarray | None = None) -> np.ndarray:
        """``rng.integers(low, high)`` per stream (``integers(n)`` is ``[0, n)``); ranges below 2^32.

        ``low``/``high`` are scalars or arrays over the streams in ``m``. A range of one
        value draws nothing, as in NumPy.
        """
        if high is None:
            low, high = 0, low
        if self._py is not None:
            return self._py_integers(low, high, m)
        n = len(self) if m is None else int(np.count_nonzero(m))
        low = np.broadcast_to(np.asarray(low, dtype=np.int64), (n,))
        rng = (np.broadcast_to(np.asarray(high, dtype=np.int64), (n,)) - 1 - low)
        if (rng < 0).any() or (rng >= 0xFFFFFFFF).any():
            raise ValueError("Streams.integers: need low < high and a range below 2^32")
        mask = np.ones(len(self), dtype=bool) if m is None else np.asarray(m, dtype=bool)
        pos = np.flatnonzero(mask)
        out = np.zeros(n, dtype=np.int64)
        live = rng > 0  # rng == 0: the only value, no draw
        if live.any():
            excl = (rng[live] + 1).astype(U64)
            sub = np.zeros(len(self), dtype=bool)
            sub[pos[live]] = True
            mm = self._next32(sub) * excl
            left = mm & _M32
            thresh = (U64(0xFFFFFFFF) - (excl - U64(1))) % excl
            bad = left < thresh  # Lemire's rejection (rare): redraw those streams only
            while bad.any():
                again = np.zeros(len(self), dtype=bool)
                again[pos[live][bad]] = True
                mm[bad] = self._next32(again) * excl[bad]
                left = mm & _M32
                bad = left < thresh
            out[live] = (mm >> U64(32)).astype(np.int64)
        return out + low

    def _py_integers(self, low, high, m) -> np.ndarray:
        idx = range(self._n) if m is None else np.flatnonzero(m).tolist()
        n = len(idx)
        lows = np.asarray(low).tolist() if np.ndim(low) else [int(low)] * n
        highs = np.asarray(high).tolist() if np.ndim(high) else [int(high)] * n
        if len(lows) != n or len(highs) != n:
            raise ValueError("Streams.integers: low/high do not match the streams drawn")
        out = []
        py = self._py
        for i, lo, hi in zip(idx, lows, highs):
            r = hi - 1 - lo
            if r < 0 or r >= 0xFFFFFFFF:
                raise ValueError("Streams.integers: need low < high and a range below 2^32")
            out.append(lo + (py.bounded(i, r) if r else 0))
        return np.array(out, dtype=np.int64)


def pcg_states(seeds: Sequence[int] | np.ndarray) -> list[tuple[int, int]]:
    """(PCG64 state, increment) of ``default_rng(seed)`` for each seed, seeded as arrays when many."""
    seeds = np.asarray(seeds, dtype=U64)
    if len(seeds) < SEED_ARRAYS_FROM:
        return [_py_state(int(x)) for x in seeds.tolist()]
    st = Streams(seeds)
    return [(h << 64 | x, ih << 64 | il) for h, x, ih, il in
            zip(st.hi.tolist(), st.lo.tolist(), st.inc_hi.tolist(), st.inc_lo.tolist())]


def random_runs(root: int, prefix: Sequence[object], keys: Sequence[object], counts: Sequence[int],
                out: np.ndarray | None = None) -> np.ndarray:
    """``np.concatenate([np_rng(root, *prefix, k).random(c) for k, c in zip(keys, counts)])``, bit for bit.

    For long runs (a 1,000-player table's tells: 999 draws per stream): one Generator whose state is
    set per stream from the array seeding draws each run in NumPy's own loop, where a new
    ``default_rng`` per stream costs ~25 us of SeedSequence hashing. The state is written straight
    into the bit generator's memory where its layout is the one ``_state_words`` checks (the public
    setter parses a dict of Python integers: ~3 us a stream). ``out``: a float64 buffer of at least
    ``sum(counts)`` values to draw into (its first ``sum(counts)`` are returned).
    """
    bg = np.random.PCG64(0)
    gen = np.random.Generator(bg)
    ends = np.cumsum(np.asarray(counts, dtype=np.int64)).tolist()
    total = ends[-1] if ends else 0
    out = np.empty(total) if out is None else out[:total]
    seeds = derive_seeds(root, prefix, keys)
    words = _state_words(bg) if len(seeds) >= SEED_ARRAYS_FROM else None
    start = 0
    if words is not None:  # [state lo, state hi, inc lo, inc hi] of each stream, written in place
        st = Streams(seeds)
        for w, end in zip(np.stack([st.lo, st.hi, st.inc_lo, st.inc_hi], axis=1), ends):
            if end > start:
                words[:] = w
                gen.random(out=out[start:end])
            start = end
        return out
    state = {"state": 0, "inc": 0}
    full = {"bit_generator": "PCG64", "state": state, "has_uint32": 0, "uinteger": 0}
    for (s, inc), end in zip(pcg_states(seeds), ends):
        if end > start:
            state["state"], state["inc"] = s, inc
            bg.state = full
            gen.random(out=out[start:end])
        start = end
    return out


def _state_words(bg: np.random.PCG64) -> np.ndarray | None:
    """The PCG64 state and increment of ``bg`` as a writable uint64 view [state lo, state hi, inc lo,
    inc hi] (NumPy's ``pcg64_random_t``, two little-endian 128-bit words), or None where its memory is
    not laid out so: checked by setting a known state through the public setter and reading it back.
    ``random()`` reads only these words (never the buffered 32-bit half)."""
    try:
        import ctypes

        ptr = ctypes.c_void_p.from_address(bg.ctypes.state_address).value
        words = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(ptr))
    except Exception:  # noqa: BLE001 - no ctypes view: the public setter
        return None
    state, inc = 0x0123456789ABCDEF_0FEDCBA987654321, 0x2468ACE013579BDF_1122334455667789
    bg.state = {"bit_generator": "PCG64", "state": {"state": state, "inc": inc}, "has_uint32": 0, "uinteger": 0}
    want = [state & _M64I, state >> 64, inc & _M64I, inc >> 64]
    return words if words.tolist() == want else None
