"""Is the game readable? Pure metrics over the Traitors event frame.

- **Legible speech share**: the share of speeches a person could follow. A speech counts when
  it was written by its agent (a fallback does not), names at least one player by id or name,
  has 3 to 40 words, holds no JSON braces or markup, and echoes no prompt scaffolding
  (``Memories:``, ``Alive:``, ``JSON``, ``[t1 ``, the prompt's role labels and headings, the
  context's speaker labels ``p1 (Hugo):``, the seat and role lines ``Your seat``, ``Goal:``,
  ``You are faithful``, ``You are secretly``), and is not a copy of an earlier speech by another
  player (a small model repeats the last speech it read). Naming only oneself does not count.
- **Belief informativeness**: the mean |Spearman rho| of each stated belief vector with seat
  order (a copied ramp 0.1, 0.2, 0.3 ... scores 1; it should be low), and the mean Spearman
  rho of faithful raters' beliefs with the truth (1 for a traitor, 0 for a faithful; higher
  is better). Vectors with no spread have no rank correlation and are left out.
  ``belief_form_rho`` is the same |rho| against the order the agent's form listed the players
  in (a belief event's ``order``): a model that answers by position scores high here even
  when a shuffled form keeps that bias off seat order.
- **Speech mode**: ``free`` (plain text), ``grammar`` (decoded under a grammar that forces a
  player's name, environments/traitors/forms.py) or ``mixed``; a grammar speech's legibility is
  partly guaranteed by construction, so the share is always shown with its mode.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from environments.traitors import metrics as tm

WORDS_MIN, WORDS_MAX = 3, 40
MARKUP = re.compile(r"[{}\[\]<>`|\\]|\*\*|^\s*#|https?://")
# prompt scaffolding a small model echoes back instead of speaking (case-sensitive where the
# word is also ordinary speech: "traitor" is fine in a speech, the label "TRAITOR" is not)
SCAFFOLD = re.compile(
    r"Memories:|Alive:|Notes:|Example|Answer:|Question:|Rules:|Round \d+ roundtable|JSON|json|"
    r"\[t\d+ |\bTRAITOR\b|\bFAITHFUL\b|You are p\d+|fields:|suspicion\s*[:=]|trust\s*[:=]|"
    r"\bp\d+ \([^)]*\):|Still playing|Said today|"  # the context's speaker label "p1 (Hugo):" and headings
    r"Your seat|Goal:|You are faithful|You are secretly")  # the seat and role lines, label or sentence


def _rank(x: Sequence[float]) -> np.ndarray:
    """Average ranks (ties share their mean rank)."""
    a = np.asarray(x, dtype=float)
    order = a.argsort(kind="stable")
    ranks = np.empty(len(a), dtype=float)
    ranks[order] = np.arange(len(a), dtype=float)
    for v in np.unique(a):
        m = a == v
        if m.sum() > 1:
            ranks[m] = ranks[m].mean()
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho; None when either side has no spread or fewer than 3 points."""
    if len(x) != len(y) or len(x) < 3:
        return None
    rx, ry = _rank(x), _rank(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return None
    return float(((rx - rx.mean()) * (ry - ry.mean())).mean() / (sx * sy))


def _mean(xs: Iterable[float | None]) -> float | None:
    v = [x for x in xs if x is not None]
    return float(np.mean(v)) if v else None


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w ]", " ", text.lower()).split())


def speech_problems(text: str, names: Mapping[str, str], speaker: str | None = None,
                    earlier: Iterable[str] = ()) -> list[str]:
    """Why a speech is not legible (empty list: it is). ``names`` maps player id -> name; the
    speaker's own id and name do not count as naming a player ("I am Ximena" says nothing).
    ``earlier``: other players' earlier speeches; repeating one word for word is a ``copy``."""
    return _problems(text, _naming(tuple(sorted(names.items())), speaker), {_norm(e) for e in earlier})


@functools.lru_cache(maxsize=4096)
def _naming(names: tuple[tuple[str, str], ...], speaker: str | None) -> re.Pattern | None:
    """One compiled pattern per (table, speaker): a speech names someone when it matches."""
    keys = [re.escape(k) for p, n in names if p != speaker for k in (p, n) if k]
    return re.compile(r"(?<![\w])(" + "|".join(keys) + r")(?![\w])", re.I) if keys else None


def _problems(text: str, naming: re.Pattern | None, earlier_norm: set[str]) -> list[str]:
    out = []
    if _norm(text) and _norm(text) in earlier_norm:
        out.append("copy")
    n = len(text.split())
    if not WORDS_MIN <= n <= WORDS_MAX:
        out.append("length")
    if MARKUP.search(text):
        out.append("markup")
    if SCAFFOLD.search(text):
        out.append("scaffolding")
    if naming is None or not naming.search(text):
        out.append("names nobody")
    return out


def is_legible(text: str, names: Mapping[str, str], speaker: str | None = None, earlier: Iterable[str] = ()) -> bool:
    return not speech_problems(text, names, speaker, earlier)


def _names(events: pl.DataFrame) -> dict[str, str]:
    starts = tm._decode(events, "game_start")
    if starts:
        names = starts[0].get("names") or {}
        return {p: str(names.get(p) or "") for p in starts[0].get("players") or []}
    return {p: "" for p in tm.players(events)}


def speeches(events: pl.DataFrame) -> list[dict[str, Any]]:
    """Every speech event's payload (``pid``, ``text``, ``topic``, ``valid``) plus ``_tick``, in log order."""
    return tm._decode(events, "speech")


def legible_speech_share(events: pl.DataFrame) -> float | None:
    """Share of speeches that are the agent's own (not a fallback) and legible; None without speeches."""
    sp = speeches(events)
    if not sp:
        return None
    table = tuple(sorted(_names(events).items()))
    said: dict[Any, set[str]] = {}  # normalised speeches so far, by speaker (a copy is of someone else's)
    everyone: dict[str, int] = {}   # normalised text -> how many speakers said it
    ok = 0
    for s in sp:
        text, pid = str(s.get("text") or ""), s.get("pid")
        mine, t = said.setdefault(pid, set()), _norm(text)
        # a copy when another player said the same words before (only that text is looked up)
        earlier = {t} if everyone.get(t, 0) > (t in mine) else set()
        ok += bool(s.get("valid", True)) and not _problems(text, _naming(table, pid), earlier)
        if t not in mine:
            mine.add(t)
            everyone[t] = everyone.get(t, 0) + 1
    return ok / len(sp)


def _earlier(sp: list[dict[str, Any]], i: int) -> list[str]:
    """Texts of the speeches before ``sp[i]`` by other players."""
    return [str(x.get("text") or "") for x in sp[:i] if x.get("pid") != sp[i].get("pid")]


def speech_mode(events: pl.DataFrame) -> str | None:
    """``free``, ``grammar`` or ``mixed`` over the speeches (older logs without ``mode``: free)."""
    modes = {str(s.get("mode") or "free") for s in speeches(events)}
    return (modes.pop() if len(modes) == 1 else "mixed") if modes else None


def belief_form_rho(events: pl.DataFrame) -> float | None:
    """Mean |rho| of each valid belief vector with the order its form listed the players in."""
    rhos = []
    for b in tm._decode(events, "belief"):
        order, probs = b.get("order"), b.get("beliefs") or {}
        if b.get("valid", True) and order and all(p in probs for p in order):
            r = spearman([float(probs[p]) for p in order], list(range(len(order))))
            rhos.append(None if r is None else abs(r))
    return _mean(rhos)


def belief_informativeness(events: pl.DataFrame) -> dict[str, float | None]:
    """``belief_seat_rho``: mean |rho| of beliefs with seat order (every valid probe);
    ``belief_truth_rho``: mean rho of faithful raters' beliefs with the truth."""
    g = tm._parse(events)  # the rows of ``tm.beliefs_frame`` (valid probes), without building the frame
    groups: dict[tuple[int, str], list[dict[str, Any]]] = {}  # by (seq, rater) in log order
    for r in g.beliefs:
        if r["p"] is not None:
            groups.setdefault((r["seq"], r["i"]), []).append(r)
    if not groups:
        return {"belief_seat_rho": None, "belief_truth_rho": None}
    seat = {p: i for i, p in enumerate(g.players)}
    seat_rhos, truth_rhos = [], []
    for rows in groups.values():
        p = [r["p"] for r in rows]
        r = spearman(p, [seat.get(x["j"], -1) for x in rows])
        seat_rhos.append(None if r is None else abs(r))
        if rows[0]["i_role"] == tm.FAITHFUL:
            truth_rhos.append(spearman(p, [float(x["j_role"] == tm.TRAITOR) for x in rows]))
    return {"belief_seat_rho": _mean(seat_rhos), "belief_truth_rho": _mean(truth_rhos)}


def legibility(events: pl.DataFrame) -> dict[str, float | None]:
    """The outcome keys: legible_speech_share, speech_mode, belief_seat_rho, belief_truth_rho, belief_form_rho."""
    return {"legible_speech_share": legible_speech_share(events), "speech_mode": speech_mode(events),
            **belief_informativeness(events), "belief_form_rho": belief_form_rho(events)}


def sample_speeches(events: pl.DataFrame, k: int = 3) -> list[dict[str, Any]]:
    """Up to ``k`` legible public speeches from different rounds (for the end-of-run story)."""
    names = _names(events)
    out, seen = [], set()
    sp = speeches(events)
    for i, s in enumerate(sp):
        if s.get("topic") == "conclave" or not s.get("valid", True) or s["_tick"] in seen:
            continue
        if is_legible(str(s.get("text") or ""), names, s.get("pid"), _earlier(sp, i)):
            out.append(s)
            seen.add(s["_tick"])
        if len(out) >= k:
            break
    return out
