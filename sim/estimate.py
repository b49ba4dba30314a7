"""``agora estimate``: what a run will cost before it runs, as a range over seeds.

A dry run answers every model call with the counting provider (the scripted policy
decides; usage is projected), so one seed is one plausible game. Games differ in
length (a Traitors game ends when a side wins), so the estimate plays ``seeds``
seeds and reports the median and the range of ticks, calls, tokens and USD.

Two things a dry run cannot see are added from measurements:

- **Re-asks.** An invalid reply is asked again (``agent.reasks`` times at most). With a
  per-call invalid rate ``p``, a call costs ``1 + p + p^2 + ...`` attempts; each re-ask
  carries the prompt, the bad reply and the error. ``REASK_RATE`` holds measured rates
  (``--reask-rate`` overrides): SmolLM2-135M (the embedded model) gave invalid first
  replies to 34% of market orders before numeric menus and to about a third of
  Taxation planner proposals under a short cap (issue 15); hosted models with strict
  structured output rarely do (5% is a cautious allowance).
- **Wall time of a local model,** from tokens per second: ``LOCAL_SPEED`` was measured
  on the 2-core development machine while other jobs shared it (load ~8): prompt
  evaluation 19 tokens/s, free generation 5.8 tokens/s, grammar-constrained generation
  2.1 tokens/s. An idle or bigger machine is faster; ``--measure`` times the model on
  this machine instead (a few seconds).

**Cost quantiles.** A dry run projects each call's output tokens as one number, but output
("thinking") tokens vary about tenfold across repeats of the same query (Chen et al. 2026,
arXiv 2603.23971). So for every seed's game the USD is also drawn ``draws`` times with each
call's output tokens sampled: log-normal with the oracle tier's ``output_median`` and
``output_sigma`` for an oracle tier (its ``input_tokens`` as the prompt), else with the dry
run's projection as the median and ``output_sigma`` (``--output-sigma``, default
``OUTPUT_SIGMA``: P90/P10 = 10), capped at the call's ``max_tokens`` and priced by the
configured price table. ``usd_quantiles`` holds P10/P50/P90 over seeds x draws.

**Price reversal.** A tier listed cheaper (input and output prices both no higher, one lower)
can cost more per call when it writes more output tokens. ``price_reversals`` compares the
expected cost per call of every pair of oracle tiers (prompt tokens at the input price,
E[min(output, cap)] at the output price) and the estimate warns about each reversal.
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Any

import numpy as np
import polars as pl

REASK_RATE = {"local": 0.34, "openai": 0.05, "langchain": 0.05, "scripted": 0.0, "oracle": 0.0}
LOCAL_SPEED = {"prompt_tps": 19.0, "gen_tps": 5.8, "grammar_tps": 2.1, "source": "2-core dev box under load (constant)"}
REASK_EXTRA_TOKENS = 40  # the "Your reply was invalid: ..." message and its template
# log-normal spread of a real model's output tokens around the projection: P90/P10 = exp(2 * 1.2816 * sigma) = 10
OUTPUT_SIGMA = 0.9
DRAWS = 200  # sampled token draws per seed
QUANTILES = (0.1, 0.5, 0.9)


def expected_reasks(p: float, reasks: int) -> float:
    """Expected re-asks per call: p + p^2 + ... + p^reasks (each re-ask happens if the one before was invalid)."""
    return sum(p ** k for k in range(1, max(0, reasks) + 1))


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure_local_speed(llm_cfg: dict) -> dict[str, Any]:
    """Prompt and generation tokens per second of the configured local model, timed here (a few seconds)."""
    from sim.inference.providers.local import bundled_gguf, load_llama
    from pathlib import Path

    path = Path(llm_cfg["model_path"]) if llm_cfg.get("model_path") else bundled_gguf()
    llm = load_llama(path, int(llm_cfg.get("n_ctx") or 4096), llm_cfg.get("n_threads"))
    msgs = [{"role": "user", "content": "Describe a market in a few words. " * 20}]
    llm.reset()
    t0 = time.perf_counter()
    out = llm.create_chat_completion(messages=msgs, max_tokens=1, temperature=0)
    prompt_tps = out["usage"]["prompt_tokens"] / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    out = llm.create_chat_completion(messages=msgs, max_tokens=32, temperature=0.7, seed=1)
    gen_tps = max(1, out["usage"]["completion_tokens"]) / (time.perf_counter() - t0)
    schema = {"type": "object", "properties": {"side": {"enum": ["buy", "sell", "hold"]},
                                               "qty": {"enum": list(range(0, 10))}}, "required": ["side", "qty"]}
    t0 = time.perf_counter()
    out = llm.create_chat_completion(messages=msgs, max_tokens=24, temperature=0.7, seed=1,
                                     response_format={"type": "json_object", "schema": schema})
    grammar_tps = max(1, out["usage"]["completion_tokens"]) / (time.perf_counter() - t0)
    return {"prompt_tps": round(prompt_tps, 1), "gen_tps": round(gen_tps, 1), "grammar_tps": round(grammar_tps, 1),
            "source": "measured now on this machine"}


def local_wall_s(tokens_in: float, tokens_cached: float, tokens_out: float, speed: dict) -> float:
    """Seconds a local model needs: uncached prompt tokens at the prompt rate, output at the grammar rate
    (structured replies are decoded under a grammar; it is the slower, so the cautious, one)."""
    return max(0.0, tokens_in - tokens_cached) / speed["prompt_tps"] + tokens_out / speed["grammar_tps"]


def estimate(overrides: list[str], seeds: int = 5, reask_rate: float | None = None,
             measure: bool = False, draws: int = DRAWS, output_sigma: float = OUTPUT_SIGMA) -> dict[str, Any]:
    """Projected ticks, calls, tokens, USD (and local wall time) over ``seeds`` seeds: median and range,
    and USD quantiles over seeds x sampled output tokens."""
    from sim.config import compose, to_dict
    from sim.runner import run_config_memory

    if seeds < 1:
        raise ValueError(f"--seeds={seeds}: at least 1")
    if draws < 1:
        raise ValueError(f"--draws={draws}: at least 1")
    if not 0 <= output_sigma <= 5:
        raise ValueError(f"--output-sigma={output_sigma}: a log-normal spread from 0 to 5")
    cfg = to_dict(compose(list(overrides)))
    cfg["budget"]["run_usd"] = None
    cfg["budget"]["per_agent_usd"] = None
    cfg["budget"]["per_team_usd"] = {}
    provider = cfg["llm"]["provider"]
    p = REASK_RATE.get(provider, 0.05) if reask_rate is None else float(reask_rate)
    if not 0 <= p < 1:
        raise ValueError(f"--reask-rate={reask_rate}: a probability from 0 up to (not including) 1")
    e = expected_reasks(p, int((cfg.get("agent") or {}).get("reasks", 1)))
    speed = (measure_local_speed(cfg["llm"]) if measure else dict(LOCAL_SPEED)) if provider == "local" else None
    games, models, sampled = [], [], []
    model = TokenModel(cfg, output_sigma)
    rng = np.random.default_rng(int(cfg["seed"]))
    for k in range(seeds):
        c = json.loads(json.dumps(cfg))
        c["seed"] = int(cfg["seed"]) + k
        res = run_config_memory(c, estimate_only=True)
        led = res.ledger.filter(pl.col("outcome") == "ok")
        calls = led.height
        t_in, t_out = int(led["tokens_in"].sum()), int(led["tokens_out"].sum())
        usd = float(led["cost_nano"].sum()) / 1e9
        # re-asks: e more attempts per call, each with the prompt, the bad reply and the error, and a reply
        r_in = e * (t_in + t_out + REASK_EXTRA_TOKENS * calls)
        r_out = e * t_out
        price_in = (usd * t_in / (t_in + t_out)) / t_in if t_in else 0.0  # split of USD by token share
        price_out = (usd * t_out / (t_in + t_out)) / t_out if t_out else 0.0
        g = {"seed": c["seed"], "ticks": int(res.summary["ticks"]), "calls": calls + e * calls,
             "tokens_in": t_in + r_in, "tokens_out": t_out + r_out, "usd": usd + r_in * price_in + r_out * price_out,
             "outcome": _short_outcome(res.summary.get("outcome"))}
        if speed:
            g["wall_s"] = local_wall_s(g["tokens_in"], 0.0, g["tokens_out"], speed)
        games.append(g)
        sampled.append(model.sample_usd(led, draws, e, rng))
        models.append(led.group_by("model").agg(pl.len().alias("calls"), pl.col("tokens_in").sum(),
                                                 pl.col("tokens_out").sum(), (pl.col("cost_nano").sum() / 1e9).alias("usd")))
    by_model = (pl.concat(models).group_by("model").agg(pl.col("calls").median(), pl.col("tokens_in").median(),
                                                         pl.col("tokens_out").median(), pl.col("usd").median())
                .sort("model")) if models else pl.DataFrame()
    out = {"env": cfg["env"]["name"], "provider": provider, "price_version": cfg["llm"].get("price_version"),
           "seeds": seeds, "reask_rate": p, "expected_reasks_per_call": round(e, 4), "games": games,
           "by_model": by_model.to_dicts(), "speed": speed}
    for key in ("ticks", "calls", "tokens_in", "tokens_out", "usd", *(("wall_s",) if speed else ())):
        spread = _spread([g[key] for g in games])
        out[key] = spread["median"]
        out[f"{key}_range"] = [spread["min"], spread["max"]]
    usd = np.concatenate([u for u, _ in sampled])
    out["usd_quantiles"] = {f"p{round(q * 100)}": float(np.quantile(usd, q)) for q in QUANTILES}
    out["usd_mean_sampled"] = float(usd.mean())
    out["usd_expected"] = float(np.mean([x for _, x in sampled]))  # E[USD] of each game's calls, averaged
    out["draws"], out["output_sigma"] = draws, output_sigma
    cap = int(np.median(led["max_tokens"].to_numpy())) if led.height else int(cfg["llm"].get("max_tokens") or 96)
    prompt = float(led["tokens_in"].mean()) if led.height else 0.0
    out["tier_costs"] = model.tier_costs(cap, prompt)
    out["warnings"] = [reversal_text(r) for r in price_reversals(out["tier_costs"])]
    return out


class TokenModel:
    """Per-call token distributions and prices of a run: oracle tiers' own, else around the dry run's projection."""

    def __init__(self, cfg: dict, output_sigma: float):
        from sim.inference.prices import PriceTable
        from sim.inference.providers.oracle import tiers_from

        llm = cfg["llm"]
        prices = dict(llm.get("prices") or {})
        oracles = dict(tiers_from(llm.get("oracle"))) if llm.get("provider") == "oracle" else {}
        extra = [*(((cfg.get("agent") or {}).get("llm_by_role") or {}).values()),
                 *(((cfg.get("deliberation") or {}).get("tier_llm") or {}).values())]
        for over in extra:  # per-role and per-tier endpoints bring their prices (and oracle tiers)
            prices.update((over or {}).get("prices") or {})
            if (over or {}).get("provider") == "oracle":
                oracles.update(tiers_from(over.get("oracle") or llm.get("oracle")))
        self.prices = PriceTable(prices, str(llm.get("price_version") or "none"))
        self.oracles = oracles
        self.sigma = float(output_sigma)

    def price(self, model: str):
        try:
            return self.prices.for_model(model)
        except KeyError:
            return None

    def sample_usd(self, led, draws: int, reasks: float, rng) -> tuple[np.ndarray, float]:
        """(``draws`` sampled USD totals of one game's calls, their expected value) with output tokens drawn."""
        from sim.deliberation import expected_capped_lognormal

        if led.height == 0:
            return np.zeros(draws), 0.0
        rows = led.select("provider", "model", "tokens_in", "tokens_out", "max_tokens", "cost_nano").to_dicts()
        tin, med, sig, cap, pin, pout, fixed = ([] for _ in range(7))
        for r in rows:
            tier = self.oracles.get(r["model"]) if r["provider"] == "oracle" else None
            p = self.price(r["model"])
            if p is None:  # unpriced here: the dry run's own cost, not sampled
                fixed.append(r["cost_nano"])
                continue
            if tier is not None:
                tin.append(tier.input_tokens if tier.input_tokens is not None else r["tokens_in"])
                med.append(tier.output_median)
                sig.append(tier.output_sigma)
            else:
                tin.append(r["tokens_in"])
                med.append(max(1, r["tokens_out"]))
                sig.append(self.sigma if r["tokens_out"] > 0 else 0.0)
            cap.append(r["max_tokens"] or 0)
            pin.append(p.input)
            pout.append(p.output)
        tin, med, sig, capa, pin, pout = (np.asarray(x, dtype=float) for x in (tin, med, sig, cap, pin, pout))
        out = np.maximum(1, np.round(med * np.exp(sig * rng.standard_normal((draws, med.size)))))
        out = np.where(capa > 0, np.minimum(out, np.where(capa > 0, capa, 1)), out)
        # a re-ask carries the prompt, the bad reply and the error message, and gets a new reply
        nano = (tin * pin + out * pout + reasks * ((tin + out + REASK_EXTRA_TOKENS) * pin + out * pout)).sum(axis=1)
        e_out = np.array([expected_capped_lognormal(float(m), float(s), int(c)) for m, s, c in zip(med, sig, capa)])
        expected = float((tin * pin + e_out * pout + reasks * ((tin + e_out + REASK_EXTRA_TOKENS) * pin
                                                                + e_out * pout)).sum())
        return (nano + sum(fixed)) / 1e9, (expected + sum(fixed)) / 1e9

    def tier_costs(self, cap: int, prompt_tokens: float) -> list[dict]:
        """Listed prices and expected USD per call of each priced oracle tier, at output cap ``cap``."""
        from sim.deliberation import expected_call_usd, expected_capped_lognormal

        out = []
        for name, tier in self.oracles.items():
            p = self.price(name)
            if p is None:
                continue
            out.append({"tier": name, "input_per_mtok": p.input / 1e3, "output_per_mtok": p.output / 1e3,
                        "mean_output_tokens": expected_capped_lognormal(tier.output_median, tier.output_sigma, cap),
                        "usd_per_call": expected_call_usd(tier, p, cap, int(round(prompt_tokens)))})
        return out


def price_reversals(tiers: list[dict]) -> list[dict]:
    """Pairs (cheap, pricey) where ``cheap`` is listed cheaper (no price higher, one lower) but costs more per call."""
    out = []
    for a in tiers:
        for b in tiers:
            listed = (a["input_per_mtok"] <= b["input_per_mtok"] and a["output_per_mtok"] <= b["output_per_mtok"]
                      and (a["input_per_mtok"], a["output_per_mtok"]) != (b["input_per_mtok"], b["output_per_mtok"]))
            if listed and a["usd_per_call"] > b["usd_per_call"]:
                out.append({"cheap": a, "pricey": b, "ratio": a["usd_per_call"] / b["usd_per_call"]})
    return out


def reversal_text(r: dict) -> str:
    a, b = r["cheap"], r["pricey"]
    return (f"price reversal: tier {a['tier']!r} is listed cheaper than {b['tier']!r} "
            f"({a['input_per_mtok']:g}/{a['output_per_mtok']:g} vs {b['input_per_mtok']:g}/{b['output_per_mtok']:g} "
            f"USD per M input/output tokens) but costs {r['ratio']:.2f}x as much per call "
            f"({a['usd_per_call']:.3g} vs {b['usd_per_call']:.3g} USD): it writes {a['mean_output_tokens']:.0f} "
            f"output tokens on average against {b['mean_output_tokens']:.0f}")


def _short_outcome(o: Any) -> str:
    if not isinstance(o, dict):
        return ""
    return ", ".join(f"{k}={o[k]}" for k in list(o)[:2] if isinstance(o[k], (int, str, float)))
