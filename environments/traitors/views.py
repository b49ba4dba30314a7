"""Traitors views for people: transcripts by viewer, trust points, calibration and vote flows.

Pure functions of the event frame (polars in, polars out), shaped for the Trust
dashboard page; they live with the game so the generic dashboards never learn
Traitors payloads. A transcript uses the same visibility rule that fills agents'
memories, so a page can never show a viewer what the game hid from them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import polars as pl

from environments.traitors import metrics as tm
from sim.events import filter_visible

TEAM = "traitors"
STORY_KINDS = ("announcement", "speech", "vote", "vote_result", "elimination", "recruit", "recruit_offer",
               "recruit_answer", "game_end", "role", "team_reveal")

# What decoding someone else's payloads can raise: bad JSON, a list where an object was
# expected, a missing key, a value of the wrong type.
PAYLOAD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, RecursionError,
                  pl.exceptions.PolarsError)


def player_roles(events: pl.DataFrame) -> dict[str, str]:
    return {str(p): str(r) for p, r in tm.roles(events).items()} if events.height else {}


def transcript(events: pl.DataFrame, view: str, roles: dict[str, str]) -> pl.DataFrame:
    """Story events as ``view`` could see them: 'public', 'traitors' (the team) or a player id."""
    if view == "public":
        seen = filter_visible(events, viewer="", teams=())
    elif view == TEAM:
        seen = filter_visible(events, viewer="", teams=(TEAM,))
    else:
        teams = (TEAM,) if roles.get(view) == "traitor" else ()
        seen = filter_visible(events, viewer=view, teams=teams)
    return (seen.filter(pl.col("kind").is_in(STORY_KINDS))
            .with_columns(pl.col("payload").map_elements(say, return_dtype=pl.Utf8).alias("text"))
            .select("seq", "tick", "phase", "actor", "kind", "visibility", "text"))


def say(payload: str) -> str:
    """One readable line for a Traitors payload (the raw text when it is not a JSON object)."""
    try:
        d = json.loads(payload)
    except (TypeError, ValueError, RecursionError):
        return str(payload)
    if not isinstance(d, dict):
        return str(payload)
    try:
        return _say_event(d)
    except TypeError:  # a field of an unexpected type: show the payload as it is
        return json.dumps(d, sort_keys=True)


def _say_event(d: dict[str, Any]) -> str:
    if "text" in d:
        return str(d["text"])
    if "voter" in d:
        return f"{d['voter']} votes to {d.get('vote_kind', '')} {d.get('target')}"
    if "counts" in d:
        return f"{d.get('vote_kind', '')} result: {d.get('target')} (counts {d['counts']})"
    if "how" in d:
        return f"{d.get('pid')} {d['how']}ed; role {d.get('revealed_role') or 'hidden'}"
    if "accepted" in d:
        return f"{d.get('pid')} {'accepted' if d['accepted'] else 'refused'} the traitors' invitation"
    if "by" in d and "pid" in d:
        return f"the traitors invite {d['pid']} to join them"
    if "winner" in d:
        return f"game over: {d['winner']} win after {d.get('rounds')} rounds"
    if "role" in d:
        return f"{d.get('pid')} is {d['role']}"
    if TEAM in d:
        return f"traitors: {', '.join(map(str, d[TEAM]))}"
    return json.dumps(d, sort_keys=True)


def trust_points(events: pl.DataFrame) -> pl.DataFrame:
    """tick, i (rater), j (rated), trust (points of 10), p (P(traitor)) from every belief event."""
    if events.height == 0:
        return pl.DataFrame(schema={"tick": pl.Int64, "i": pl.Utf8, "j": pl.Utf8, "trust": pl.Float64,
                                    "p": pl.Float64, "i_role": pl.Utf8, "j_role": pl.Utf8})
    return tm.beliefs_frame(events, include_invalid=True).select("tick", "i", "j", "trust", "p", "i_role", "j_role")


def calibration_bins(p: Sequence[float], y: Sequence[int], bins: int = 10) -> pl.DataFrame:
    """Reliability diagram data: per equal-width bin, mean forecast, observed frequency and count."""
    df = pl.DataFrame({"p": [float(x) for x in p], "y": [int(v) for v in y]},
                      schema={"p": pl.Float64, "y": pl.Int64})
    schema = {"bin": pl.Int64, "mean_p": pl.Float64, "observed": pl.Float64, "n": pl.Int64}
    if df.height == 0:
        return pl.DataFrame(schema=schema)
    return (df.with_columns((pl.col("p") * bins).floor().clip(0, bins - 1).cast(pl.Int64).alias("bin"))
            .group_by("bin").agg(pl.col("p").mean().alias("mean_p"),
                                 pl.col("y").cast(pl.Float64).mean().alias("observed"),
                                 pl.len().cast(pl.Int64).alias("n"))
            .sort("bin").select(list(schema)))


def belief_calibration(points: pl.DataFrame, bins: int = 10) -> pl.DataFrame:
    """Calibration of faithful players' P(traitor) against true roles (``points`` from ``trust_points``)."""
    t = points.filter((pl.col("i_role") == "faithful") & pl.col("p").is_not_null())
    return calibration_bins(t["p"].to_list(), (t["j_role"] == "traitor").cast(pl.Int64).to_list(), bins)


def vote_flows(events: pl.DataFrame, kind: str = "banish") -> pl.DataFrame:
    """tick, voter, target, voter_role, target_role for one vote kind."""
    v = tm.votes_frame(events)
    return v.filter(pl.col("vote_kind") == kind).select("tick", "voter", "target", "voter_role", "target_role")


def round_table(events: pl.DataFrame, stored: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per-round metrics: the stored round_metrics.parquet, else recomputed from events."""
    if stored is not None and stored.height:
        return stored
    return tm.round_metrics(events) if events.height else pl.DataFrame()


@dataclass
class TraitorsView:
    """Everything the Trust page draws that is derived from the event payloads."""

    points: pl.DataFrame
    calibration: pl.DataFrame
    rounds: pl.DataFrame
    banish_votes: pl.DataFrame
    roles: dict[str, str]


def build_view(events: pl.DataFrame, stored_rounds: pl.DataFrame | None = None) -> TraitorsView:
    """The Trust page's frames; raises one of ``PAYLOAD_ERRORS`` when the payloads are not Traitors events."""
    points = trust_points(events)
    return TraitorsView(points, belief_calibration(points), round_table(events, stored_rounds),
                        vote_flows(events, "banish"), player_roles(events))
