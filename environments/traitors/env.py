"""The Traitors: hidden traitors mislead the faithful.

One tick is one round. Phases (data, in order):
breakfast -> roundtable -> belief -> banish -> reactions -> recruit -> conclave -> murder.
Win is checked after the banishment, after a recruitment and after the murder. Rules follow the
Traitors paper's code (10 players, 3 traitors) with the options in
conf/env/traitors.yaml; see docs/traitors.md.
"""
from __future__ import annotations

import typing
from collections import Counter
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from agents.base import Player
from agents.profiles import OWN_PART
from agents.persona import population_for
from environments.traitors import baselines as bl
from environments.traitors import batch as tb
from environments.traitors import metrics as tm
from environments.traitors import forms, texts
from environments.traitors.legibility import legibility
from environments.traitors.actions import RecruitAnswer, Speech, belief_model, belief_values, vote_model
from environments.registry import register
from sim.engine import ActRequest, Environment, LiveOptions, MetricSpec, Truth
from sim.batch import Decided, act_batch, act_each, batch_enabled
from sim.events import private, team

TOPICS = [
    "Who do you suspect is a traitor, and why?",
    "Who do you trust the most, and why?",
    "What behaviour so far seems suspicious to you?",
    "How should we decide who to banish today?",
    "Defend yourself: why should people trust you?",
    "What did last night's murder tell us?",
]
REACTIONS = ["React to what was said.", "Do you agree with the accusations?", "Who changed their story?",
             "Who stayed too quiet?", "Whose argument convinced you?"]


LLM_MAX_PLAYERS = 60


class TraitorsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Literal["traitors"] = "traitors"
    # scripted/oracle tables up to 10,000 (Monte Carlo, engine benchmarks); a model-played one up to
    # LLM_MAX_PLAYERS (cross_check): every prompt lists the table
    n_players: int = Field(10, ge=3, le=10_000)
    n_traitors: int = Field(3, ge=1)
    discussion_passes: int = Field(2, ge=0, le=5)
    speaker_order: Literal["rotate", "seat", "bid"] = "rotate"
    words_max: int = Field(60, ge=5, le=300)
    tie_break: Literal["random", "first_voted"] = "random"
    vote_visibility: Literal["secret", "open_sequential"] = "secret"
    exile_rule: Literal["plurality", "majority"] = "plurality"
    reveal_banished: Literal["role", "none"] = "role"
    reveal_murdered: Literal["role", "none"] = "role"
    belief_probe: bool = True
    # auto: top for agents on the small prompt profile (the embedded model), list for the rest
    belief_format: Literal["auto", "list", "keyed", "top"] = "auto"
    # free: plain text; grammar: decoded under a grammar that forces naming a player in plain words,
    # labelled in every speech event, the outcome (speech_mode) and the story; auto: grammar for
    # agents on the small prompt profile, free for the rest (docs/embedded.md)
    speech: Literal["auto", "free", "grammar"] = "auto"
    reactions: bool = True
    conclave: bool = True
    recruitment: bool = False
    # scripted answer to a recruitment offer: accept when the persona's honesty is below this
    recruit_accept_below_honesty: float = Field(0.5, ge=0, le=1)
    max_rounds: Optional[int] = Field(None, ge=1)
    faithful_policy: Literal["random", "majority", "bayes"] = "bayes"
    traitor_policy: Literal["random", "bloc"] = "bloc"
    tell_q_hi: float = Field(0.6, gt=0, lt=1)
    tell_q_lo: float = Field(0.4, gt=0, lt=1)
    speech_tokens: int = Field(120, ge=8, le=1024)
    belief_tokens: int = Field(120, ge=16, le=2048)
    vote_tokens: int = Field(16, ge=8, le=512)


class TraitorPlayer(Player):
    def rules_text(self) -> str:
        c = self.model.cfg
        return (f"Game: The Traitors. {c.n_players} players; {c.n_traitors} of them are secret traitors. Each "
                "round the players talk, then vote to banish one player; at night the traitors murder one. The "
                "faithful win by banishing every traitor; the traitors win once they are as many as the faithful.")

    def _mates(self) -> str:
        """The other traitors, as the prompt names them ("" for none)."""
        return ", ".join(self.model.display(p) for p in self.model.traitor_ids() if p != self.aid)

    def role_text(self) -> str:
        if self.role == "traitor":
            return (f"You are secretly a traitor (fellow traitors: {self._mates() or 'none'}). Avoid suspicion and "
                    "steer the vote toward faithful players.")
        return "You are faithful: find the traitors and banish them."

    def role_label(self) -> str:
        # a label like the seat before it: SmolLM2-135M opened its speeches with the sentence
        # "You are faithful." (docs/embedded.md)
        if self.role == "traitor":
            mates = self._mates()
            return (f", secretly a traitor{' with ' + mates if mates else ''}. Goal: avoid suspicion and steer "
                    "the vote toward faithful players.")
        return ", faithful. Goal: find the traitors and banish them."

    # no example answers: SmolLM2-135M copied a speech example word for word (names from the
    # example, not the game) and a belief example's numbers into every form (docs/embedded.md)


@register
class TraitorsEnv(Environment):
    name = "traitors"
    phases = ("breakfast", "roundtable", "belief", "banish", "reactions", "recruit", "conclave", "murder")
    Config = TraitorsConfig
    memory_importance = {"elimination": 8, "vote_result": 6, "role": 10, "team_reveal": 10, "speech": 4,
                         "vote": 5, "belief": 2, "game_end": 9, "recruit": 9,
                         "recruit_offer": 9, "recruit_answer": 9}

    metrics = (
        MetricSpec("alive", "Players alive", "players", "board"),
        MetricSpec("alive_traitors", "Traitors alive", "players", "board"),
        MetricSpec("alive_faithful", "Faithful alive", "players", "board"),
        MetricSpec("winner", "Winner", "", "game", source="outcome", doc="faithful or traitors; null if cut short"),
        MetricSpec("rounds", "Rounds played", "rounds", "game", source="outcome"),
        MetricSpec("mis_banish_rate", "Mis-banish rate", "share of banishments", "game", False, "outcome",
                   "share of banishments that removed a faithful"),
        MetricSpec("banish_precision", "Banish precision", "share of banishments", "game", True, "outcome",
                   "share of banishments that removed a traitor"),
        MetricSpec("tsr", "Traitor survival rate", "share of traitors", "game", None, "outcome",
                   "share of initial traitors alive at the end"),
        MetricSpec("fcr", "Faithful consensus rate", "share of votes", "trust", True, "outcome",
                   "share of faithful banish votes cast on a traitor"),
        MetricSpec("fcr_lift", "FCR lift over random", "ratio", "trust", True, "outcome",
                   "faithful consensus rate divided by its random-vote expectation"),
        MetricSpec("suspicion_gap", "Suspicion gap", "probability", "trust", True, "outcome",
                   "mean stated P(traitor) on traitors minus on faithful"),
        MetricSpec("brier", "Brier score", "squared error", "trust", False, "outcome",
                   "mean squared error of stated P(traitor)"),
        MetricSpec("brier_skill", "Brier skill", "vs uniform prior", "trust", True, "outcome",
                   "1 - Brier / Brier of the uniform prior"),
        MetricSpec("auroc", "AUROC of suspicion", "probability", "trust", True, "outcome",
                   "chance a random traitor gets more suspicion than a random faithful"),
        MetricSpec("bus_rate", "Bus rate", "share of votes", "trust", None, "outcome",
                   "share of traitor banish votes cast on a fellow traitor (throwing one under the bus)"),
        MetricSpec("night_unanimity", "Night unanimity", "share of nights", "trust", None, "outcome",
                   "share of murder votes where all traitors picked the same target"),
        MetricSpec("p_faithful_win_random", "Faithful win rate, random play", "probability", "game", None,
                   "outcome", "exact faithful win probability when everybody votes at random"),
        # legibility (environments/traitors/legibility.py): can a person follow the game?
        MetricSpec("legible_speech_share", "Legible speech share", "share of speeches", "legibility", True,
                   "outcome", "speeches by their agent that name a player, have 3-40 words, no markup and no "
                   "echoed prompt scaffolding"),
        MetricSpec("belief_seat_rho", "Belief |rho| with seat order", "Spearman |rho|", "legibility", False,
                   "outcome", "mean |Spearman rho| of each stated belief vector with seat order (1: a copied ramp)"),
        MetricSpec("belief_truth_rho", "Belief rho with the truth", "Spearman rho", "legibility", True,
                   "outcome", "mean Spearman rho of faithful raters' beliefs with who is a traitor"),
        MetricSpec("belief_form_rho", "Belief |rho| with form order", "Spearman |rho|", "legibility", False,
                   "outcome", "mean |Spearman rho| of each belief vector with the order its form listed players "
                   "in (answering by position)"),
    )
    # one-line meanings of outcome keys that are not declared metrics (`agora report`, docs/reports.md)
    glossary = {"speech_mode": "free: plain-text speeches; grammar: speeches decoded under a grammar that forces "
                               "naming a player (env.speech); mixed: both",
                "traitors": "the initial traitors", "recruited": "faithful who accepted a recruitment offer",
                "metrics_error": "why the game metrics could not be computed"}
    quick = ("env.n_players=8", "env.n_traitors=2", "env.discussion_passes=1")
    # what a decision is worth, in the game's outcome unit (one faithful win): a banishment vote
    # removes a player every round and is the faithful's only lever, so it is the unit; the
    # traitors' night murder vote is a bloc choice among faithful that all look alike to them
    # (a quarter); an answer to a recruitment offer turns a player at most once (a half); a pick
    # of whom to recruit (a quarter); a speech or reaction only moves suspicion (a tenth); a
    # conclave line is team chatter (a twentieth); a belief probe is a measurement (0)
    stakes = {"vote": 1.0, "recruit_answer": 0.5, "murder": 0.25, "recruit_pick": 0.25, "speak": 0.1,
              "react": 0.1, "conclave": 0.05, "belief": 0.0}
    deliberate = ("vote",)  # by default a policy deliberates the banishment vote only (deliberation.purposes)
    live = LiveOptions(human_seat=True, seat_label="player",
                       channels={"speak": "speech", "react": "speech", "conclave": "team", "vote": "choice",
                                 "murder": "choice", "recruit_pick": "choice", "recruit_answer": "yesno"})

    @classmethod
    def sweep_rows(cls, outcomes: list[dict]) -> list[dict]:
        """Faithful win rate (Wilson interval) against the exact random-play baseline."""
        from sim.stats import games_needed, wilson_interval

        n = len(outcomes)
        if not n:
            return []
        wins = sum(o.get("winner") == "faithful" for o in outcomes)
        lo, hi = wilson_interval(wins, n)
        rate = wins / n
        rows = [{"key": "win_rate", "metric": "faithful win rate (Wilson)", "value": rate, "interval": (lo, hi),
                 "n": n, "doc": "share of these games the faithful won, with its Wilson 95% interval"}]
        p0s = {o.get("p_faithful_win_random") for o in outcomes}
        if len(p0s) == 1 and isinstance(next(iter(p0s)), (int, float)):
            p0 = float(next(iter(p0s)))
            rows += [{"key": "p_random", "metric": "random baseline (exact)", "value": p0,
                      "doc": "exact faithful win probability for this N and T when every vote is uniformly random"},
                     {"key": "lift", "metric": "lift over random", "value": rate - p0,
                      "doc": "faithful win rate minus the exact random baseline"}]
            if rate != p0 and 0 < rate < 1:
                rows.append({"key": "games_needed", "metric": "games needed to tell apart (80% power)",
                             "value": games_needed(rate, p0),
                             "doc": "games for a two-sided 5% test to tell this win rate from the baseline, 80% power"})
        elif len(p0s) > 1:  # never pick one baseline for games of different sizes
            shown = ", ".join(sorted(f"{p:.5f}" if isinstance(p, (int, float)) else str(p) for p in p0s))
            rows.append({"key": "p_random", "metric": f"random baseline: MIXED ({shown})", "value": None,
                         "doc": "these games have different exact baselines (different N or T); no lift is computed"})
        return rows

    @classmethod
    def story(cls, events) -> list[str]:
        return texts.story(events)

    @classmethod
    def population(cls, env_cfg: dict) -> int | None:
        return env_cfg.get("n_players")

    @classmethod
    def cross_check(cls, cfg: dict) -> str | None:
        e = cfg["env"]
        if e["n_traitors"] * 2 >= e["n_players"]:
            return (f"env.n_traitors={e['n_traitors']}: must be less than half of env.n_players={e['n_players']} "
                    "(traitors would win at once)")
        if e["n_players"] > LLM_MAX_PLAYERS:
            providers = {(cfg.get("llm") or {}).get("provider")}
            providers |= {(r or {}).get("provider") for r in ((cfg.get("agent") or {}).get("llm_by_role") or {}).values()}
            model = sorted(str(p) for p in providers - {"scripted", "oracle", None})
            if model:
                return (f"env.n_players={e['n_players']}: at most {LLM_MAX_PLAYERS} when a model plays "
                        f"(llm provider {model[0]}; every prompt lists the table); larger tables are for "
                        "llm=scripted or llm=oracle")
        return None

    def __init__(self, env_cfg: dict, seed: int, agent_cfg: dict | None = None, llm_cfg: dict | None = None):
        super().__init__(env_cfg, seed, agent_cfg, llm_cfg)
        self.cfg = TraitorsConfig.model_validate(env_cfg)
        self.winner: str | None = None
        self.murdered_last: str | None = None
        self.banished_last: str | None = None
        self.traitors_initial: list[str] = []
        self.suspicion: dict[str, bl.BayesSuspicion] = {}
        self.last_banish_votes: dict[str, str] = {}

    # ---- helpers ----------------------------------------------------------
    def horizon(self) -> int:
        return self.cfg.max_rounds or self.cfg.n_players

    def display(self, pid: str) -> str:
        a = self.by_id[pid]
        return f"{pid} ({a.persona.name})"

    def alive(self, role: str | None = None) -> list[TraitorPlayer]:
        return [a for a in self.players() if a.alive and (role is None or a.role == role)]

    def traitor_ids(self) -> list[str]:
        """Everyone who is a traitor now (initial traitors and accepted recruits), dead or alive."""
        return [a.aid for a in self.players() if a.role == "traitor"]

    def roles(self) -> dict[str, str]:
        return {a.aid: a.role for a in self.players()}

    def context_for(self, *agents: TraitorPlayer) -> str:
        """The shared game context, with today's speeches quoted unless a small-profile agent reads it."""
        return texts.context(self, quote=all(a.profile.quote_speeches for a in agents))

    def speech_mode(self, a: TraitorPlayer) -> str:
        """``free`` or ``grammar`` for this agent (``auto``: grammar on the small prompt profile)."""
        m = self.cfg.speech
        return ("grammar" if a.profile.name == "small" else "free") if m == "auto" else m

    def belief_form(self, a: TraitorPlayer) -> str:
        f = self.cfg.belief_format
        return ("top" if a.profile.name == "small" else "list") if f == "auto" else f

    def speech_cls(self, a: TraitorPlayer, pids: list[str]) -> type[BaseModel]:
        """Speech, or under ``grammar`` a speech that must name one of ``pids`` by id or name."""
        if self.speech_mode(a) == "free":
            return Speech
        return forms.guided_speech_model([n for p in pids for n in (p, self.by_id[p].name)])

    def speech_modes(self) -> str:
        """The run's speech label for the outcome: free, grammar or mixed."""
        modes = {self.speech_mode(a) for a in self.players()}
        return modes.pop() if len(modes) == 1 else "mixed"

    # ---- setup ---------------------------------------------------------
    def setup(self) -> None:
        n, t = self.cfg.n_players, self.cfg.n_traitors
        self.order = [f"p{i}" for i in range(1, n + 1)]
        personas = population_for(self, n)
        traitors = set(self.rng_for("roles").choice(self.order, size=t, replace=False).tolist())
        self.traitors_initial = sorted(traitors, key=self.order.index)
        self.by_id: dict[str, TraitorPlayer] = {}
        mem = (self.agent_cfg or {}).get("memory") or {}
        for pid, persona in zip(self.order, personas):
            role = "traitor" if pid in traitors else "faithful"
            teams = ("traitors",) if role == "traitor" else ()
            a = TraitorPlayer(self, pid, persona, role, teams, self.endpoint_for(role), mem)
            a.budget_teams = ("traitors",) if role == "traitor" else ("faithful",)
            self.by_id[pid] = a
        self.emit("game_start", {"players": self.order, "names": {p: self.by_id[p].name for p in self.order},
                                 "n_traitors": t, "rules": self.cfg.model_dump()})
        for a in self.players():
            self.emit("role", {"pid": a.aid, "role": a.role}, actor="host", visibility=private(a.aid))
        self.emit("team_reveal", {"traitors": self.traitors_initial}, actor="host", visibility=team("traitors"))
        # every player's observer is a row of one table: a phase's tells and beliefs are arrays
        self.suspicion = bl.BayesSuspicion.many(self.order, t, self.cfg.tell_q_hi, self.cfg.tell_q_lo)

    def is_done(self) -> bool:
        return self.winner is not None or (self.tick >= self.horizon() and self.phase == "murder")

    # ---- phases ----------------------------------------------------------
    def phase_breakfast(self) -> None:
        if self.murdered_last:
            self.emit("announcement", {"text": f"{self.display(self.murdered_last)} was murdered last night."},
                      actor="host")
        # scripted baselines see private noisy tells each morning; drawn only where a faithful's scripted
        # answer reads them (each player's tells are its own named stream: skipping them shifts nothing)
        if not tb.tells_read(self.cfg):
            return
        if batch_enabled(self):
            tb.observe_tells(self)
            return
        roles = self.roles()
        for a in self.alive():
            s = self.suspicion[a.aid]
            s.observe(s.draw_tells(roles, self.rng_for("tells", self.tick, a.aid)))

    def _speakers(self, pass_no: int) -> list[TraitorPlayer]:
        alive = self.alive()
        if self.cfg.speaker_order == "seat":
            return alive
        if self.cfg.speaker_order == "rotate":
            k = (self.tick - 1 + pass_no) % len(alive)
            return alive[k:] + alive[:k]
        rng = self.rng_for("bid", self.tick, pass_no)  # bid: seeded random bids 0-4, ties by seat
        bids = {a.aid: int(rng.integers(0, 5)) for a in alive}
        return sorted(alive, key=lambda a: -bids[a.aid])

    def _speech_fallback(self, a: TraitorPlayer, topic: str, cls: type[BaseModel] = Speech):
        def f():
            rng = self.rng_for("speech", self.tick, a.aid, topic)
            others = [x.aid for x in self.alive() if x.aid != a.aid]
            if a.role == "traitor":
                faithful = [x for x in others if self.by_id[x].role != "traitor"]
                target = faithful[int(rng.integers(len(faithful)))] if faithful else others[0]
            else:
                b = self.suspicion[a.aid].beliefs()
                target = max(others, key=lambda p: (b.get(p, 0), -self.order.index(p)))
            return cls(text=f"I have doubts about {target}.")
        return f

    def phase_roundtable(self) -> None:
        for pass_no in range(self.cfg.discussion_passes):
            for a in self._speakers(pass_no):
                topic = TOPICS[(self.tick - 1) % len(TOPICS)] if pass_no == 0 else REACTIONS[(self.tick + pass_no) % len(REACTIONS)]
                # the topic comes last, after who the speaker is: a small model answers the last line
                obs = (lambda topic=topic, a=a: f"{self.context_for(a)}{OWN_PART}{topic} Answer in one sentence "
                       f"(at most {self.cfg.words_max} words) that names a player.")
                cls = self.speech_cls(a, [x.aid for x in self.alive() if x.aid != a.aid])
                r = self.act(ActRequest(a, "speak", cls, obs, self._speech_fallback(a, topic, cls),
                                        max_tokens=self.cfg.speech_tokens))
                text = " ".join(r.action.text.split()[: self.cfg.words_max])
                self.emit("speech", {"pid": a.aid, "text": text, "pass": pass_no, "topic": topic,
                                     "valid": r.valid, "mode": self.speech_mode(a)}, actor=a.aid)

    def phase_belief(self) -> None:
        if not self.cfg.belief_probe:
            return
        reqs, orders = [], []
        alive = self.alive()
        for a in alive:
            fmt = self.belief_form(a)
            others = [x.aid for x in alive if x.aid != a.aid]
            order = others
            if fmt == "top":  # a seeded shuffled order per agent and round (position bias is not a seat ramp)
                order = [str(p) for p in self.rng_for("belief_order", self.tick, a.aid).permutation(others)]
                cls = forms.top_belief_model(order)
                ask = (f"{self.context_for(a)}Secret form: name the player you most suspect of being a traitor, "
                       f"and the player you trust most.{OWN_PART}Your form lists: "
                       f"{', '.join(self.display(p) for p in order)}.")
            elif fmt == "list":
                cls = belief_model(others, fmt)
                ask = (f"{self.context_for(a)}Secret form: give each other player's chance of being a traitor "
                       "in tenths (0-10), high for those you suspect, then split 10 trust points among them."
                       f"{OWN_PART}"
                       f"Your form lists, in this order: {', '.join(others)}.")
            else:
                cls = belief_model(others, fmt)
                ask = (f"Round {self.tick}: for each player give the chance (0-100) they are a traitor, "
                       f"and split 10 trust points among: {', '.join(others)}.")
            orders.append(order)
            reqs.append(ActRequest(a, "belief", cls, ask, self._belief_fallback(a, others, cls, fmt),
                                   max_tokens=self.cfg.belief_tokens))
        for a, order, r in zip(alive, orders, self.act_all(reqs)):
            others = [x.aid for x in alive if x.aid != a.aid]
            fmt = self.belief_form(a)
            probs, trust = forms.top_values(r.action, others) if fmt == "top" else belief_values(r.action, others)
            # the top form's shuffled order is recorded (position-bias checks: belief_form_rho); the
            # list and keyed forms list players in seat order
            shown = {"form": fmt, "order": order} if fmt == "top" else {}
            self.emit("belief", {"pid": a.aid, "beliefs": {k: round(float(v), 4) for k, v in probs.items()},
                                 "trust": _normalise_trust(trust), "valid": r.valid, **shown},
                      actor=a.aid, visibility=private(a.aid))

    def _belief_fallback(self, a, others, cls, fmt: str = "keyed"):
        def f():
            if a.role == "traitor":
                probs = {p: (0.0 if self.by_id[p].role == "traitor" else 0.5) for p in others}
            else:
                b = self.suspicion[a.aid].beliefs()
                probs = {p: round(b.get(p, 0.0), 4) for p in others}
            inv = {p: 1.0 - v for p, v in probs.items()}
            trust = _largest_remainder(inv, 10)
            tenths = {p: int(round(v * 10)) for p, v in probs.items()}
            if fmt == "top":
                return cls(suspect=max(others, key=lambda p: (probs[p], -others.index(p))),
                           trust=max(others, key=lambda p: (trust[p], -others.index(p))))
            if fmt == "list":
                return cls(suspicion=[tenths[p] for p in others], trust=[trust[p] for p in others])
            return cls.model_validate({"traitor_percent": {p: t * 10 for p, t in tenths.items()}, "trust": trust})
        return f

    def _options_shown(self, a, kind: str, targets: list[str]) -> list[str]:
        """The vote options in the order a model sees them: its own seeded shuffle."""
        shown = list(targets)
        if self.svc is not None and self.policy_of(a) == "llm":
            self.rng_for("vote_options", kind, self.tick, a.aid).shuffle(shown)
        return shown

    def _vote_fallback(self, a, targets, kind: str, bloc_target: str | None, seen: dict):
        # a model sees its options in its own seeded order: SmolLM2-135M picked the first listed
        # target almost every time, which in seat order is a vote for p1 (docs/embedded.md); the
        # scripted policies draw from ``targets`` in seat order, so their votes are unchanged
        cls = vote_model(self._options_shown(a, kind, targets))

        def f():
            rng = self.rng_for("vote", kind, self.tick, a.aid)
            if a.role == "traitor" and bloc_target and self.cfg.traitor_policy == "bloc":
                t = bloc_target if bloc_target in targets else bl.random_vote(a.aid, targets, rng)
            elif a.role == "traitor":  # traitor_policy=random: uniform over all valid targets
                t = bl.random_vote(a.aid, targets, rng)
            elif self.cfg.faithful_policy == "random":
                t = bl.random_vote(a.aid, targets, rng)
            elif self.cfg.faithful_policy == "majority":
                t = bl.majority_follower(a.aid, targets, rng, seen_votes=dict(seen),
                                         suspicion=self.suspicion[a.aid].beliefs())
            else:
                t = self.suspicion[a.aid].vote(targets, rng)
            return cls(target=t)
        return cls, f

    def phase_banish(self) -> None:
        alive = self.alive()
        rng = self.rng_for("bloc", "banish", self.tick)
        faithful_alive = [a.aid for a in alive if a.role != "traitor"]
        bloc = faithful_alive[int(rng.integers(len(faithful_alive)))] if faithful_alive else None
        order = list(alive)
        self.rng_for("vote_order", self.tick).shuffle(order)
        votes: dict[str, str] = {}
        first_voted: list[str] = []

        def validate_for(a):
            def v(action):
                if action.target == a.aid:
                    return "you cannot vote for yourself"
                if not self.by_id[action.target].alive:
                    return f"{action.target} is not alive"
                return None
            return v

        def req(a):
            targets = [x.aid for x in alive if x.aid != a.aid]
            cls, fb = self._vote_fallback(a, targets, "banish", bloc, votes)
            obs = lambda: f"{self.context_for(a)}Secret banishment vote: choose one other player to banish."
            return ActRequest(a, "vote", cls, obs, fb, validate=validate_for(a), max_tokens=self.cfg.vote_tokens)

        bulk = tb.banish_bulk(self, order, [x.aid for x in alive], bloc) if self.cfg.vote_visibility == "secret" \
            else None
        if bulk is not None:  # every voter scripted on a direct endpoint: targets, rows and events in bulk
            votes.update(zip([a.aid for a in order], bulk))
            first_voted.extend(bulk)
        elif self.cfg.vote_visibility == "secret":
            results = act_batch(self, order, "vote", req,
                                lambda pos: tb.banish_votes(self, [order[i] for i in pos], [x.aid for x in alive], bloc),
                                max_tokens=self.cfg.vote_tokens)
            for a, r in zip(order, results):
                votes[a.aid] = r.action.target
                first_voted.append(r.action.target)
                self.emit("vote", {"vote_kind": "banish", "voter": a.aid, "target": r.action.target,
                                   "valid": r.valid}, actor=a.aid, visibility=private(a.aid))
        else:  # open sequential: each voter sees earlier votes
            for a in order:
                r = self.act(req(a))
                votes[a.aid] = r.action.target
                first_voted.append(r.action.target)
                self.emit("vote", {"vote_kind": "banish", "voter": a.aid, "target": r.action.target,
                                   "valid": r.valid}, actor=a.aid)
        self.last_banish_votes = votes
        target, tie = self._tally(votes, first_voted, len(alive), "banish")
        counts = dict(sorted(Counter(votes.values()).items()))
        self.emit("vote_result", {"vote_kind": "banish", "counts": counts, "target": target, "tie": tie},
                  actor="host")
        self.banished_last = target
        if target:
            self._eliminate(target, "banish", self.cfg.reveal_banished == "role")
        self._win_check()

    def _tally(self, votes: dict[str, str], first_voted: list[str], n_voters: int, kind: str):
        counts = Counter(votes.values())
        if not counts:
            return None, False
        top = max(counts.values())
        leaders = sorted(p for p, c in counts.items() if c == top)
        if kind == "banish" and self.cfg.exile_rule == "majority" and top * 2 <= n_voters:
            return None, len(leaders) > 1
        if len(leaders) == 1:
            return leaders[0], False
        if self.cfg.tie_break == "first_voted":
            return next(p for p in first_voted if p in leaders), True
        rng = self.rng_for("tie", kind, self.tick)
        return leaders[int(rng.integers(len(leaders)))], True

    def _eliminate(self, pid: str, how: str, reveal: bool) -> None:
        a = self.by_id[pid]
        a.alive = False
        self.emit("elimination", {"pid": pid, "how": how, "revealed_role": a.role if reveal else None}, actor="host")
        bl.eliminate_all(self.suspicion.values(), pid, a.role if reveal else None)

    def _win_check(self) -> None:
        t = len(self.alive("traitor"))
        f = len(self.alive()) - t
        if t == 0:
            self.winner = "faithful"
        elif t >= f:
            self.winner = "traitors"
        if self.winner:
            self.status = "running"  # the engine marks the run completed after this tick
            self.emit("game_end", {"winner": self.winner, "rounds": self.tick, "status": "completed"}, actor="host")
            self._stop_phases = True

    def step(self) -> None:
        self._stop_phases = False
        super().step()

    def phase_reactions(self) -> None:
        if self.winner or not self.cfg.reactions or not self.banished_last:
            return
        who = self.display(self.banished_last)
        line = f"So {self.banished_last} is gone. Let us keep watching."

        def said(a, r):
            self.emit("speech", {"pid": a.aid, "text": " ".join(r.action.text.split()[: self.cfg.words_max]),
                                 "pass": 99, "topic": "reaction", "valid": r.valid, "mode": self.speech_mode(a)},
                      actor=a.aid)

        def req(a):
            cls = self.speech_cls(a, [x.aid for x in self.alive() if x.aid != a.aid] + [self.banished_last])
            return ActRequest(a, "react", cls, lambda: f"{self.context_for(a)}{OWN_PART}{who} was just "
                              "banished. React in one sentence that names a player.",
                              lambda: cls(text=line), max_tokens=self.cfg.speech_tokens)

        act_each(self, self.alive(), "react", req,
                 lambda pos: [Decided(text=line)] * len(pos), said, max_tokens=self.cfg.speech_tokens)

    def phase_recruit(self) -> None:
        """Optional (``recruitment=true``): after a traitor is banished, the surviving traitors
        pick one alive faithful (a secret vote like the murder vote) and offer them to turn.

        The offer is private to the target; the answer is a structured yes/no. An accepted
        offer makes the player a traitor from this moment (role event, team membership,
        team budget), and the win check runs again.
        """
        if self.winner or not self.cfg.recruitment or not self.banished_last:
            return
        if self.by_id[self.banished_last].role != "traitor":
            return
        traitors = self.alive("traitor")
        faithful = [a.aid for a in self.alive("faithful")]
        if not traitors or not faithful:
            return
        target, _, _ = self._team_vote(
            "recruit", "recruit_pick", faithful,
            lambda shown: f"Round {self.tick}: a fellow traitor was banished. Choose one faithful to invite to "
                          f"join the traitors: {', '.join(self.display(f) for f in shown)}.")
        if target is None:
            return
        cand = self.by_id[target]
        self.emit("recruit_offer", {"pid": target, "by": [a.aid for a in traitors]}, actor="host",
                  visibility=private(target))
        accept_default = cand.persona.honesty < self.cfg.recruit_accept_below_honesty
        obs = (f"Round {self.tick}: the traitors secretly invite you to join them. If you accept you become a "
               f"traitor and win with them; if you refuse you stay faithful. Traitors alive: "
               f"{', '.join(self.display(a.aid) for a in traitors)}. Do you accept?")
        r = self.act(ActRequest(cand, "recruit_answer", RecruitAnswer, obs,
                                lambda: RecruitAnswer(accept=accept_default), max_tokens=self.cfg.vote_tokens))
        accepted = bool(r.action.accept)
        if accepted:
            cand.role = "traitor"
            cand.teams = ("traitors",)
            cand.budget_teams = ("traitors",)
            self.emit("role", {"pid": target, "role": "traitor", "via": "recruitment"}, actor="host",
                      visibility=private(target))
        # the answer reaches the traitors' channel (which now includes an accepted recruit)
        self.emit("recruit", {"pid": target, "accepted": accepted, "valid": r.valid}, actor=target,
                  visibility=team("traitors"))
        if not accepted:  # the candidate's own record of refusing (the team event is not theirs to see)
            self.emit("recruit_answer", {"pid": target, "accepted": False, "valid": r.valid}, actor=target,
                      visibility=private(target))
        self._win_check()

    def phase_conclave(self) -> None:
        if self.winner or not self.cfg.conclave:
            return
        traitors = self.alive("traitor")
        if len(traitors) < 1:
            return
        faithful = [a.aid for a in self.alive("faithful")]
        line = f"Let us take out {faithful[0]}." if faithful else ""
        for step in ("propose", "agree"):
            obs = (f"{self.context_for(*traitors)}{OWN_PART}Secret traitors' meeting ({step}). Faithful still playing: "
                   f"{', '.join(faithful)}. In one sentence: whom should we murder tonight?")

            def said(a, r, step=step):
                self.emit("speech", {"pid": a.aid, "text": " ".join(r.action.text.split()[: self.cfg.words_max]),
                                     "pass": 0 if step == "propose" else 1, "topic": "conclave", "valid": r.valid,
                                     "mode": self.speech_mode(a)}, actor=a.aid, visibility=team("traitors"))

            def req(a, obs=obs):
                cls = self.speech_cls(a, faithful)
                return ActRequest(a, "conclave", cls, obs, lambda: cls(text=f"Let us take out {faithful[0]}."),
                                  max_tokens=self.cfg.speech_tokens)

            act_each(self, traitors, "conclave", req,
                     lambda pos: [Decided(text=line)] * len(pos), said, max_tokens=self.cfg.speech_tokens)

    def phase_murder(self) -> None:
        self.murdered_last = None
        if self.winner:
            return
        traitors = self.alive("traitor")
        targets = [a.aid for a in self.alive("faithful")]
        if not traitors or not targets:
            return
        target, tie, votes = self._team_vote("murder", "murder", targets,
                                             lambda shown: f"Night {self.tick}: choose a faithful to murder: "
                                                           f"{', '.join(shown)}.")
        self.emit("vote_result", {"vote_kind": "murder", "counts": dict(sorted(Counter(votes.values()).items())),
                                  "target": target, "tie": tie}, actor="host", visibility=team("traitors"))
        if target:
            self._eliminate(target, "murder", self.cfg.reveal_murdered == "role")
            self.murdered_last = target
        self._win_check()

    def _team_vote(self, kind: str, purpose: str, targets: list[str], ask):
        """The alive traitors' secret vote over ``targets`` on the team channel.

        Fallback: one seeded target shared by the whole team (bloc). Returns
        (plurality target, tie, votes).
        """
        traitors = self.alive("traitor")
        rng = self.rng_for(kind, self.tick)
        shared = targets[int(rng.integers(len(targets)))]

        def req(a):
            shown = self._options_shown(a, kind, targets)
            cls = vote_model(shown)  # built only when a request is (a new target set costs ~1 ms)
            return ActRequest(a, purpose, cls, ask(shown), (lambda: cls(target=shared)),
                              max_tokens=self.cfg.vote_tokens)

        votes: dict[str, str] = {}
        for a, r in zip(traitors, act_batch(self, traitors, purpose, req,
                                            lambda pos: [Decided(target=shared)] * len(pos),
                                            max_tokens=self.cfg.vote_tokens)):
            votes[a.aid] = r.action.target
            self.emit("vote", {"vote_kind": kind, "voter": a.aid, "target": r.action.target, "valid": r.valid},
                      actor=a.aid, visibility=team("traitors"))
        target, tie = self._tally(votes, list(votes.values()), len(traitors), kind)
        return target, tie, votes

    @classmethod
    def success_value(cls, outcome) -> float | None:
        """A faithful win (cost-of-pass: USD per faithful win); None for a game cut short."""
        w = outcome.get("winner")
        return None if w is None else float(w == "faithful")

    def ground_truth(self, request: ActRequest) -> Truth | None:
        """A faithful's banishment vote: right = any alive traitor, wrong = any other alive faithful."""
        if request.purpose != "vote" or request.agent.role == "traitor":
            return None
        cls = request.action_cls
        targets = typing.get_args(cls.model_fields["target"].annotation)
        right = tuple(cls(target=t) for t in targets if self.by_id[t].role == "traitor")
        wrong = tuple(cls(target=t) for t in targets if self.by_id[t].role != "traitor")
        # difficulty: the chance a blind pick misses, rising as traitors get rarer among the candidates
        return Truth(right, wrong, difficulty=len(wrong) / len(targets)) if right else None

    # ---- results ---------------------------------------------------------
    def tick_metrics(self) -> dict[str, Any]:
        t = len(self.alive("traitor"))
        return {"alive": len(self.alive()), "alive_traitors": t, "alive_faithful": len(self.alive()) - t,
                "banished": self.banished_last or "", "murdered": self.murdered_last or ""}

    def partial_outcome(self) -> dict[str, Any]:
        return {"winner": self.winner if self.status != "aborted_budget" else None, "rounds": int(self.tick),
                "traitors": self.traitors_initial,
                "recruited": [p for p in self.traitor_ids() if p not in self.traitors_initial],
                "speech_mode": self.speech_modes(),
                "p_faithful_win_random": float(bl.p_faithful_win_random(self.cfg.n_players, self.cfg.n_traitors))}

    def outcome(self, events) -> dict[str, Any]:
        out = self.partial_outcome()
        try:
            keys = [spec.key for spec in self.metrics if spec.source == "outcome"]
            gm = tm.game_metrics(events, only=keys) | legibility(events)
            out["speech_mode"] = gm["speech_mode"] or self.speech_modes()
            for spec in self.metrics:  # every declared outcome metric is present; None where undefined
                if spec.source == "outcome" and spec.key not in out:
                    out[spec.key] = gm.get(spec.key)
        except Exception as e:  # noqa: BLE001 - metrics never break a run
            out["metrics_error"] = str(e)[:200]
        return out

    def artifacts(self, path: Path, events) -> None:
        try:
            graphs = tm.trust_matrices(events)
            tm.write_graphml(graphs, path / "trust")
            rm = tm.round_metrics(events)
            rm.write_parquet(path / "round_metrics.parquet")
        except Exception:  # noqa: BLE001
            pass


def _largest_remainder(weights: dict[str, float], total: int) -> dict[str, int]:
    s = sum(max(w, 0) for w in weights.values())
    if s <= 0:
        weights = {k: 1.0 for k in weights}
        s = float(len(weights))
    raw = {k: max(w, 0) * total / s for k, w in weights.items()}
    base = {k: int(v) for k, v in raw.items()}
    left = total - sum(base.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - base[k]), k))[:left]:
        base[k] += 1
    return base


def _normalise_trust(trust: dict[str, int]) -> dict[str, int]:
    return _largest_remainder({k: float(v) for k, v in trust.items()}, 10)
