"""The Traitors' scripted decisions for a whole phase at once (the batch path of sim/batch.py).

Each function returns exactly what the per-agent fallbacks in env.py return for the
same state, drawing from each agent's own named stream (``Streams.named`` is
``rng_for(...)`` for every agent at once): the morning tells, the secret banishment
vote under every shipped policy (random, majority, bayes; traitors random or bloc),
and the traitors' shared night target. tests/environments/traitors/test_batch.py
holds the batch and per-agent paths to identical events, ledgers and outcomes.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from environments.traitors.baselines import beliefs_many
from sim.batch import Decided
from sim.streams import Streams

if TYPE_CHECKING:
    from environments.traitors.env import TraitorPlayer, TraitorsEnv


def observe_tells(env: "TraitorsEnv") -> None:
    """Every alive player's private tells for this morning, drawn and applied at once.

    Per player: one uniform per other player it still tracks, in sorted id order, from
    ``rng_for("tells", tick, pid)`` (``BayesSuspicion.draw_tells``), then a Bayes update.
    """
    alive = env.alive()
    if not alive:
        return
    traitor = {a.aid for a in env.players() if a.role == "traitor"}
    models = [env.suspicion[a.aid] for a in alive]
    pids = [sorted(m.log_odds) for m in models]
    st = Streams.named(env.root_seed, ("tells", env.tick), [a.aid for a in alive])
    for m, ps, u in zip(models, pids, st.random_runs([len(p) for p in pids])):
        hi, lo = m.q_hi, m.q_lo
        m.observe({pid: x < (hi if pid in traitor else lo) for pid, x in zip(ps, u)})
    c = env.cfg
    if c.discussion_passes or c.belief_probe or c.faithful_policy != "random":
        beliefs_many([m for a, m in zip(alive, models) if a.role != "traitor"])  # warm the memos at once


def banish_votes(env: "TraitorsEnv", voters: Sequence["TraitorPlayer"], alive_ids: Sequence[str],
                 bloc: str | None) -> list[Decided]:
    """Each voter's secret banishment vote under the configured scripted policies.

    Traitors on ``bloc`` vote the team's seeded target; ``random`` voters draw uniformly
    over the others; ``majority`` and ``bayes`` voters (nothing seen yet in a secret vote)
    take the most suspected, ties broken by their stream.
    """
    cfg = env.cfg
    n = len(voters)
    out: list[str | None] = [None] * n
    pick: list[list[str] | None] = [None] * n  # choose uniformly among these with the voter's stream
    smart: list[tuple[int, list[str]]] = []
    for i, a in enumerate(voters):
        targets = [x for x in alive_ids if x != a.aid]
        if a.role == "traitor" and bloc and cfg.traitor_policy == "bloc" and bloc in targets:
            out[i] = bloc
        elif a.role == "traitor" or cfg.faithful_policy == "random":
            pick[i] = targets
        else:
            smart.append((i, targets))
    if smart:
        for (i, targets), b in zip(smart, beliefs_many([env.suspicion[voters[i].aid] for i, _ in smart])):
            known = [t for t in targets if t in b]
            if not known:
                pick[i] = targets
                continue
            best = max(b[t] for t in known)
            top = [t for t in known if math.isclose(b[t], best, rel_tol=0, abs_tol=1e-12)]
            if len(top) == 1:
                out[i] = top[0]
            else:
                pick[i] = top
    mask = np.array([p is not None for p in pick])
    if mask.any():
        st = Streams.named(env.root_seed, ("vote", "banish", env.tick), [a.aid for a in voters])
        ks = st.integers(np.array([len(p) for p in pick if p is not None]), m=mask)
        for i, k in zip(np.flatnonzero(mask).tolist(), ks.tolist()):
            out[i] = pick[i][k]
    return [Decided(target=t) for t in out]
