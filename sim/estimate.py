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
"""
from __future__ import annotations

import json
import statistics
import time
from typing import Any

import polars as pl

REASK_RATE = {"local": 0.34, "openai": 0.05, "langchain": 0.05, "scripted": 0.0, "oracle": 0.0}
LOCAL_SPEED = {"prompt_tps": 19.0, "gen_tps": 5.8, "grammar_tps": 2.1, "source": "2-core dev box under load (constant)"}
REASK_EXTRA_TOKENS = 40  # the "Your reply was invalid: ..." message and its template


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
             measure: bool = False) -> dict[str, Any]:
    """Projected ticks, calls, tokens, USD (and local wall time) over ``seeds`` seeds: median and range."""
    from sim.config import compose, to_dict
    from sim.runner import run_config_memory

    if seeds < 1:
        raise ValueError(f"--seeds={seeds}: at least 1")
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
    games, models = [], []
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
    return out


def _short_outcome(o: Any) -> str:
    if not isinstance(o, dict):
        return ""
    return ", ".join(f"{k}={o[k]}" for k in list(o)[:2] if isinstance(o[k], (int, str, float)))
