"""The public situation every player of a phase reads first (the prompt's shared prefix).

Built from the event log only, so it is byte-stable for replay and identical for every
agent of a phase: the llama.cpp KV cache and servers' prefix caches reuse it across agents.
It grows only at its end during a round (each speech is appended), so consecutive calls
share everything before the newest speech.
"""
from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

from sim.events import PUBLIC

if TYPE_CHECKING:
    from environments.traitors.env import TraitorsEnv

SPEECH_WORDS = 25  # each earlier speech is cut to this many words in the context


def _fate(env: "TraitorsEnv", e: dict) -> str:
    role = e.get("revealed_role")
    how = "banished" if e.get("how") == "banish" else "murdered"
    return f"{env.display(e['pid'])} was {how}" + (f" ({role})" if role else "")


def history(env: "TraitorsEnv") -> str:
    """Who left the game so far, oldest first, one clause each."""
    gone = [_fate(env, json.loads(r.payload)) for r in env.svc.events.rows if r.kind == "elimination"]
    return ("So far: " + "; ".join(gone) + ".\n") if gone else ""


def speeches_today(env: "TraitorsEnv") -> list[tuple[str, str]]:
    """(player, text) of today's public roundtable speeches, in order."""
    out = []
    for r in reversed(env.svc.events.rows):
        if r.tick != env.tick:
            break
        if r.kind == "speech" and r.visibility == PUBLIC and r.phase == "roundtable":
            d = json.loads(r.payload)
            out.append((d["pid"], " ".join(str(d.get("text", "")).split()[:SPEECH_WORDS])))
    return out[::-1]


def named_in(env: "TraitorsEnv", speaker: str, text: str) -> list[str]:
    """The other players a speech names (by id or name), in seat order."""
    words = {w.lower() for w in re.findall(r"\w+", text)}
    return [p for p in env.order if p != speaker
            and (p.lower() in words or (env.by_id[p].name or "").lower() in words)]


def context(env: "TraitorsEnv", speeches: bool = True, quote: bool = True) -> str:
    """Round, players still in, the history, and (optionally) what was said today: quoted, or
    (``quote=False``, the small prompt profile) only whom each speaker named."""
    alive = ", ".join(env.display(a.aid) for a in env.alive())
    s = f"Round {env.tick}. Still playing: {alive}.\n{history(env)}"
    said = speeches_today(env) if speeches else []
    if said and quote:
        s += "Said today:\n" + "".join(f"{env.display(p)}: {t}\n" for p, t in said)
    elif said:
        s += "Today " + "; ".join(f"{env.display(p)} named " + (", ".join(env.display(n) for n in named_in(env, p, t))
                                                                 or "nobody") for p, t in said) + ".\n"
    return s


def story(events) -> list[str]:
    """The game told in a few lines: each round's banishment and murder, up to three legible
    speeches (one per round), the winner. A pure function of the event frame."""
    from environments.traitors import metrics as tm
    from environments.traitors.legibility import _names, sample_speeches, speech_mode

    names = _names(events)
    show = lambda p: f"{p} ({names[p]})" if names.get(p) else str(p)  # noqa: E731
    said = {s["_tick"]: s for s in sample_speeches(events, 3)}
    rounds: dict[int, list[str]] = {}
    for e in tm._decode(events, "elimination"):
        role = f", a {e['revealed_role']}" if e.get("revealed_role") else ""
        how = "banished" if e.get("how") == "banish" else "murdered at night"
        rounds.setdefault(e["_tick"], []).append(f"{show(e['pid'])} {how}{role}")
    mode = speech_mode(events)
    lines = ["The story:" + {"grammar": " (speeches grammar-constrained to name a player: env.speech=grammar)",
                             "mixed": " (some speeches grammar-constrained: env.speech)"}.get(mode or "", "")]
    for t in sorted(set(rounds) | set(said)):
        lines.append(f"  Round {t}: " + ("; ".join(rounds.get(t, [])) or "nobody left") + ".")
        if t in said:
            lines.append(f"    {show(said[t]['pid'])} said: \"{said[t]['text']}\"")
    end = tm._decode(events, "game_end")
    traitors = [p for p, r in tm.initial_roles(events).items() if r == tm.TRAITOR]
    who = ", ".join(show(p) for p in sorted(traitors, key=tm._pid_key))
    if end:
        lines.append(f"  Winner: the {end[-1]['winner']} (the traitors were {who}).")
    else:
        lines.append(f"  No winner: the game was cut short (the traitors were {who}).")
    return lines
