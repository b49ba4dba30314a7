"""Run directory: atomic writes of Parquet/JSON, per-tick parts, authenticated checkpoints.

Layout::

    config.yaml        resolved config (no secrets)
    summary.json       status, totals, outcome
    events.parquet     the event log         (compacted at the end)
    ledger.parquet     one row per LLM attempt
    metrics.parquet    one row per tick of environment metrics
    llm_cache.jsonl    content-addressed recorded replies (record/replay)
    parts/             per-tick Parquet parts written while running
    checkpoints/       latest.ckpt: the environment's state after the last tick

Every file is written to a temporary name in the same folder, then renamed:
a crash leaves either the old file or the new one, never half of one.

A run directory is data: it may come from anyone, and nothing in it is ever
turned into code. The one binary file, ``checkpoints/latest.ckpt``, is
``MAGIC + HMAC-SHA256(key, MAGIC + body) + body``, keyed by a per-machine
secret (``$AGORA_HOME/secret.key``, default ``~/.config/agora/secret.key``)
that is never written into a run directory. The tag is checked before the body
is decompressed or unpickled, so only a snapshot this machine wrote is ever
loaded; anything else is refused with one line naming the file.
The body is zlib of (JSON metadata, pickle of the environment and client
state, its numpy buffers without their zero tails). Events, ledger and
metrics rows are not in it: they are the per-tick parts, whose sha256 and size the
metadata lists and ``resume`` checks before use. Parts and tables are read only as
plain files inside the run (never through a link, never a FIFO or a device).
"""
from __future__ import annotations

import errno
import hashlib
import hmac
import io
import json
import os
import pickle
import re
import secrets
import stat
import struct
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import polars as pl

from sim.config import ConfigError

MAGIC = b"AGORA-CKPT-1\n"
TAG_LEN = 32  # HMAC-SHA256
KEY_LEN = 32
CKPT_NAME = "latest.ckpt"
LEGACY_PICKLE = "latest.pkl"
PART_RE = re.compile(r"^(events|ledger|metrics)-(\d{7})\.parquet$")
ZLIB_LEVEL = 6  # measured, zero tails dropped: same time as level 1 (~107 ms, 1,000 traders), 13-18% smaller
# entries Hydra writes into a job's output folder before the job runs (that folder is the run.dir of a sweep job)
HYDRA_DIR = ".hydra"


class RunDirError(ConfigError):
    """A run directory that cannot be used as asked: one line naming it (CLI: ``error: ...``, exit 2)."""


class UnreadableTable(RunDirError, OSError):
    """A run's table file that is refused or cannot be decoded; one line naming it. Also an OSError, so
    a reader that can carry on without the table (``agora report``'s spend per phase) does."""


class CheckpointError(RunDirError):
    """A checkpoint (or a part it relies on) that is refused; the message names the file and why."""

    def __init__(self, path: Path | str, why: str):
        super().__init__(f"{path}: checkpoint refused: {why}")
        self.path = Path(path)


# ----------------------------------------------------------------- atomic writes
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


def atomic_write_parquet(path: Path, df: pl.DataFrame | pl.LazyFrame) -> None:
    """A frame, or a lazy one streamed to the file in batches (a run's parts joined: bounded memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if isinstance(df, pl.LazyFrame):
            df.sink_parquet(tmp)
        else:
            df.write_parquet(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_parts(folder: Path, prefix: str) -> pl.DataFrame | None:
    """A table's parts joined (a running or killed run); only part file names, each a plain file."""
    if folder.is_symlink():
        raise UnreadableTable(f"{folder}: the parts folder is a link; refused (a run's files stay inside it)")
    files = sorted(f for f in folder.glob(f"{prefix}-*.parquet") if PART_RE.match(f.name))
    if not files:
        return None
    return pl.concat([read_table_file(f) for f in files], how="diagonal_relaxed")


def read_table_file(f: Path) -> pl.DataFrame:
    """One Parquet file of a run: a plain file (never a link out of the run, nor a FIFO a read would
    block on), decoded; anything else is one ``UnreadableTable`` line naming it."""
    with _plain_file(f, UnreadableTable, "a link out of the run; refused") as fh:
        try:
            return pl.read_parquet(fh)
        except (OSError, pl.exceptions.PolarsError) as e:
            why = " ".join(str(e).split())[:160] or type(e).__name__
            raise UnreadableTable(f"{f}: not a readable Parquet file ({why})") from None


@contextmanager
def _plain_file(f: Path, error: type[RunDirError], link_why: str) -> Iterator[Any]:
    """``f`` opened for reading only if it is a regular file reached without following a link (and
    without blocking on a FIFO); otherwise ``error`` with one line naming it."""
    try:
        fd = os.open(f, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        why = link_why if e.errno == errno.ELOOP else (e.strerror or str(e))
        raise error(f"{f}: unreadable ({why})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise error(f"{f}: not a regular file; refused")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            yield fh
    finally:
        os.close(fd)


# ----------------------------------------------------------------- the machine key
def agora_home() -> Path:
    home = os.environ.get("AGORA_HOME")
    return Path(home).expanduser() if home else Path.home() / ".config" / "agora"


def machine_key() -> bytes:
    """This machine's checkpoint key: 32 random bytes made on first use, readable by the owner only."""
    f = agora_home() / "secret.key"
    try:
        key = f.read_bytes()
    except FileNotFoundError:
        key = _create_key(f)
    except OSError as e:
        raise RunDirError(f"{f}: cannot read the machine key: {e.strerror or e}") from None
    if len(key) != KEY_LEN:
        raise RunDirError(f"{f}: the machine key must be {KEY_LEN} bytes, found {len(key)}; delete it to make a new "
                          "one (checkpoints signed with the old key will then be refused)")
    return key


def _create_key(f: Path) -> bytes:
    f.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_LEN)
    # written whole under a private name (O_EXCL, 0600), then linked into place:
    # two runs starting at once on a new machine see no key or a whole one, never half
    tmp = f.with_name(f".{f.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, f)
        except FileExistsError:
            return f.read_bytes()  # another process made it first: use theirs
    finally:
        os.unlink(tmp)
    return key


# ----------------------------------------------------------------- snapshot encoding
def _tag(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, MAGIC + body, hashlib.sha256).digest()


def config_refs(cfg: dict) -> dict[int, str]:
    """id -> path of every dict and list inside the config, e.g. ``cfg/llm``.

    The environment keeps references to config sections (its ``llm_cfg`` is
    ``cfg["llm"]``); the snapshot pickles those as a reference by path into the
    secret-free config of the metadata, so a key put in the config by mistake
    never reaches the pickle.
    """
    refs: dict[int, str] = {}

    def walk(x: Any, at: str) -> None:
        if isinstance(x, (dict, list)):
            refs[id(x)] = at
            for k, v in (x.items() if isinstance(x, dict) else enumerate(x)):
                walk(v, f"{at}/{k}")

    walk(cfg, "cfg")
    return refs


def _resolve_ref(cfg: dict, ref: str) -> Any:
    node: Any = cfg
    for k in ref.split("/")[1:]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    return node


class _RefPickler(pickle.Pickler):
    def __init__(self, f, refs: dict[int, str], buffer_callback):
        super().__init__(f, protocol=5, buffer_callback=buffer_callback)
        self.refs = refs

    def persistent_id(self, obj: Any) -> str | None:
        return self.refs.get(id(obj))


class _RefUnpickler(pickle.Unpickler):
    def __init__(self, f, cfg: dict, buffers: list[bytearray]):
        super().__init__(f, buffers=buffers)
        self.cfg = cfg

    def persistent_load(self, pid: Any) -> Any:
        return _resolve_ref(self.cfg, pid)


def _used_length(buf: pickle.PickleBuffer) -> int:
    """Bytes up to the last non-zero one: preallocated arrays (agents' memories) are mostly zero tail."""
    import numpy as np

    raw = np.frombuffer(buf.raw(), np.uint8)
    if not raw.any():  # the common case (an unused memory), without building an index array
        return 0
    nz = np.flatnonzero(raw)
    return int(nz[-1]) + 1


def encode_checkpoint(meta: dict, state: Any, live_cfg: dict, key: bytes, secret_values: Iterable[str] = ()) -> bytes:
    """Signed snapshot bytes. ``meta`` (JSON) must hold ``cfg``, the secret-free copy of ``live_cfg``.

    Body, before zlib: lengths of the metadata, the pickle and the number of
    large buffers; the metadata; the pickle; then each buffer (numpy arrays,
    pickled out of band) as its length, the length up to its zero tail, and
    those bytes. The zero tails are never written, so a 1,000-trader market's
    133 MB of preallocated memory arrays cost nothing to compress or store.
    """
    bufs: list[pickle.PickleBuffer] = []
    pkl = io.BytesIO()
    _RefPickler(pkl, config_refs(live_cfg), bufs.append).dump(state)
    meta_json = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    chunks = [struct.pack(">QQQ", len(meta_json), pkl.tell(), len(bufs)), meta_json, pkl.getbuffer()]
    for b in bufs:
        raw = b.raw()
        used = _used_length(b)
        chunks += [struct.pack(">QQ", raw.nbytes, used), raw[:used]]
    needles = [s.encode() for s in secret_values if s]
    for c in chunks[1:] if needles else ():
        if any(n in bytes(c) for n in needles):  # bytes: `in` on a memoryview tests for one element
            # something copied a key out of the config; never write it (the run fails with this line)
            raise RunDirError("refusing to write a checkpoint: the environment state holds a secret value "
                              "from the config")
    z = zlib.compressobj(ZLIB_LEVEL)
    body = b"".join([*(z.compress(c) for c in chunks), z.flush()])
    return MAGIC + _tag(key, body) + body


def decode_checkpoint(path: Path, data: bytes, key: bytes) -> tuple[dict, Any]:
    """(meta, state) of a snapshot this machine signed; CheckpointError for anything else.

    The tag is compared (in constant time) before any byte of the body is
    decompressed or unpickled.
    """
    if not data:
        raise CheckpointError(path, "the file is empty")
    if not data.startswith(MAGIC):
        raise CheckpointError(path, "not an Agora checkpoint (unknown header)")
    if len(data) <= len(MAGIC) + TAG_LEN:
        raise CheckpointError(path, "the file is truncated")
    tag, body = data[len(MAGIC):len(MAGIC) + TAG_LEN], data[len(MAGIC) + TAG_LEN:]
    if not hmac.compare_digest(tag, _tag(key, body)):
        raise CheckpointError(path, "its signature does not match this machine's key (the file was edited or "
                                    "truncated, or written on another machine)")
    # signed by this machine: from here on the bytes are our own
    try:
        raw = memoryview(zlib.decompress(body))
        n_meta, n_pkl, n_bufs = struct.unpack(">QQQ", raw[:24])
        at = 24
        meta = json.loads(bytes(raw[at:at + n_meta]))
        at += n_meta
        pkl = raw[at:at + n_pkl]
        at += n_pkl
        buffers = []
        for _ in range(n_bufs):
            size, used = struct.unpack(">QQ", raw[at:at + 16])
            buf = bytearray(size)  # writable, zero tail restored
            buf[:used] = raw[at + 16:at + 16 + used]
            buffers.append(buf)
            at += 16 + used
        state = _RefUnpickler(io.BytesIO(pkl), meta["cfg"], buffers).load()
    except Exception as e:  # noqa: BLE001 - a signed but unreadable snapshot (e.g. from an older Agora)
        raise CheckpointError(path, f"signed but unreadable ({type(e).__name__}: {e})") from None
    return meta, state


# ----------------------------------------------------------------- the run directory
class RunDir:
    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.parts = self.path / "parts"
        self.ckpt = self.path / "checkpoints"
        self.part_hashes: dict[str, str] = {}  # part file name -> sha256 of its bytes, for the next checkpoint
        self.part_sizes: dict[str, int] = {}  # and its size: a part grown huge is refused before it is read

    def create(self) -> "RunDir":
        self.parts.mkdir(parents=True, exist_ok=True)
        self.ckpt.mkdir(parents=True, exist_ok=True)
        return self

    # --- a fresh run's folder ------------------------------------------------
    def foreign_entries(self, config_text: bytes | None = None) -> list[str]:
        """Names in the folder that are not this (fresh) run's: empty means the folder may be used.

        Allowed: nothing at all; an identical config.yaml with empty parts/ and
        checkpoints/ (a run that stopped before its first tick); the ``.hydra``
        folder and ``*.log`` files Hydra writes into a sweep job's folder.
        """
        if not self.path.is_dir():
            return []
        names = sorted(p.name for p in self.path.iterdir())
        hydra = HYDRA_DIR in names
        out = []
        for n in names:
            p = self.path / n
            if hydra and (n == HYDRA_DIR or (n.endswith(".log") and p.is_file())):
                continue
            if n in ("parts", "checkpoints") and p.is_dir() and not p.is_symlink() and not any(p.iterdir()):
                continue
            if (n == "config.yaml" and config_text is not None and p.is_file() and not p.is_symlink()
                    and p.read_bytes() == config_text):
                continue
            out.append(n)
        return out

    def clear_run_files(self) -> None:
        """Remove a previous run's results (``run.overwrite=true``) so two runs' files never mix."""
        for name in ("summary.json", "events.parquet", "ledger.parquet", "metrics.parquet"):
            _unlink(self.path / name)
        for name in (CKPT_NAME, LEGACY_PICKLE):
            _unlink(self.ckpt / name)
        if self.parts.is_dir():
            for f in self.parts.iterdir():
                if PART_RE.match(f.name):
                    _unlink(f)

    # --- incremental parts -------------------------------------------------
    def check_layout(self) -> None:
        """The run's own folders are folders, not links elsewhere (resume writes and deletes in them)."""
        for d in (self.parts, self.ckpt):
            if d.is_symlink() or (os.path.lexists(d) and not d.is_dir()):
                raise RunDirError(f"{d}: not a folder of this run (a link or a file); refused")

    def drop_temporary_files(self) -> None:
        """Temporary files of writes a kill cut short (``.<name>.<random>.tmp``): never read, now removed."""
        for d in (self.path, self.parts, self.ckpt):
            if d.is_dir() and not d.is_symlink():
                for f in d.iterdir():
                    if f.name.startswith(".") and f.name.endswith(".tmp") and not f.is_dir():
                        _unlink(f)

    def write_part(self, name: str, tick: int, df: pl.DataFrame, durable: bool = True) -> Path | None:
        """``parts/<name>-<tick>.parquet`` (none for an empty frame); ``durable=False``: no fsync (a spill)."""
        if not df.height:
            return None
        buf = io.BytesIO()
        df.write_parquet(buf)
        data = buf.getvalue()
        fname = f"{name}-{tick:07d}.parquet"
        if durable:
            atomic_write_bytes(self.parts / fname, data)
        else:
            (self.parts / fname).write_bytes(data)
        self.part_hashes[fname] = hashlib.sha256(data).hexdigest()
        self.part_sizes[fname] = len(data)
        return self.parts / fname

    def part_files(self, name: str) -> list[Path]:
        """This run's parts of one table, in tick order."""
        return sorted(f for f in self.parts.glob(f"{name}-*.parquet") if PART_RE.match(f.name))

    def verify_parts(self, manifest: dict[str, str], sizes: dict[str, int] | None = None) -> dict[str, list]:
        """The parts a checkpoint relies on, each checked against its sha256, in tick order:
        ``events`` and ``ledger`` as (file, rows), counted, not loaded (a resumed run reads them
        back only when asked); ``metrics`` (one row a tick) as the frames of the bytes checked."""
        out: dict[str, list] = {"events": [], "ledger": [], "metrics": []}
        for fname, data in self._verified(manifest, sizes):
            table = PART_RE.match(fname).group(1)
            if table == "metrics":
                out[table].append(pl.read_parquet(io.BytesIO(data)))
            else:
                n = pl.scan_parquet(io.BytesIO(data)).select(pl.len()).collect().item()
                out[table].append((self.parts / fname, int(n)))
        return out

    def read_verified_parts(self, manifest: dict[str, str]) -> dict[str, list[pl.DataFrame]]:
        """The parts a checkpoint relies on, by table, in tick order; each checked against its sha256."""
        out: dict[str, list[pl.DataFrame]] = {"events": [], "ledger": [], "metrics": []}
        for fname, data in self._verified(manifest):
            out[PART_RE.match(fname).group(1)].append(pl.read_parquet(io.BytesIO(data)))  # the bytes just checked
        return out

    def _verified(self, manifest: dict[str, str], sizes: dict[str, int] | None = None):
        """(name, bytes) of each part in the manifest, in name order, once its sha256 matched.

        Each is a plain file (a link, a folder or a FIFO is refused before any read) of the size the
        checkpoint recorded, when it did (a part swapped for a huge file is never read into memory)."""
        self.check_layout()
        for fname in sorted(manifest):
            m = PART_RE.match(fname)
            f = self.parts / fname
            if m is None:
                raise CheckpointError(f, "not a part file name")
            try:
                data = _read_plain(f, None if sizes is None else sizes.get(fname))
            except OSError as e:
                why = "it is a link" if e.errno == errno.ELOOP else (e.strerror or str(e))
                raise CheckpointError(f, f"a part the checkpoint relies on is unreadable ({why})") from None
            if not hmac.compare_digest(hashlib.sha256(data).hexdigest(), str(manifest[fname])):
                raise CheckpointError(f, "the part file changed since the checkpoint was written (sha256 mismatch)")
            yield fname, data

    def drop_parts_not_in(self, manifest: dict[str, str]) -> None:
        """Parts written after the checkpoint (the tick in flight when the run was killed)."""
        for f in self.parts.iterdir():
            if PART_RE.match(f.name) and f.name not in manifest:
                f.unlink()

    def read_table(self, name: str) -> pl.DataFrame | None:
        """The compacted table if present, else the parts written so far."""
        final = self.path / f"{name}.parquet"
        if os.path.lexists(final):
            return read_table_file(final)
        return read_parts(self.parts, name)

    # --- checkpoints -------------------------------------------------------
    def write_checkpoint(self, meta: dict, state: Any, live_cfg: dict, secret_values: Iterable[str] = ()) -> int:
        """Sign and write the snapshot; returns its size in bytes."""
        data = encode_checkpoint(meta, state, live_cfg, machine_key(), secret_values)
        atomic_write_bytes(self.ckpt / CKPT_NAME, data)
        return len(data)

    def read_checkpoint(self) -> tuple[dict, Any] | None:
        """(meta, state), None when there is no checkpoint; CheckpointError for anything not ours."""
        f = self.ckpt / CKPT_NAME
        if not os.path.lexists(f):
            legacy = self.ckpt / LEGACY_PICKLE
            if os.path.lexists(legacy):
                raise CheckpointError(legacy, "pickle checkpoints are no longer loaded (loading one can run "
                                              "code); this run cannot be resumed")
            return None
        try:
            data = f.read_bytes()
        except OSError as e:
            raise CheckpointError(f, f"unreadable ({e.strerror or e})") from None
        return decode_checkpoint(f, data, machine_key())

    def summary(self) -> dict[str, Any] | None:
        f = self.path / "summary.json"
        return json.loads(f.read_text()) if f.exists() else None


def read_plain_bytes(f: Path) -> bytes:
    """A run file's bytes: a plain file, not read through a link nor blocking on a FIFO; else one line."""
    with _plain_file(f, RunDirError, "a link; refused") as fh:
        return fh.read()


def _read_plain(f: Path, size: int | None) -> bytes:
    """A part's bytes: a plain file (not through a link; a FIFO never blocks) of ``size`` bytes when
    given, else CheckpointError before anything is read."""
    fd = os.open(f, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f, "a part the checkpoint relies on is not a plain file")
        if size is not None and st.st_size != size:
            raise CheckpointError(f, f"the part file changed since the checkpoint was written ({st.st_size} bytes, "
                                     f"{size} recorded: its sha256 cannot match)")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)


def _unlink(f: Path) -> None:
    try:
        f.unlink()
    except FileNotFoundError:
        pass
