"""The embedded model's speed, raw and through the engine, plus the default game's wall time, in one run.

    python benchmarks/embedded_speed.py                 # raw figures, then the `make run` game
    python benchmarks/embedded_speed.py --quick         # raw figures only, 1 repeat (the smoke test)
    python benchmarks/embedded_speed.py --small-game    # raw figures, then a 1-round 6-player game
    python benchmarks/embedded_speed.py --busy          # the same with one core kept busy by a spinner
    python benchmarks/embedded_speed.py --threads 1     # llama.cpp threads (default: the provider's)

Raw llama.cpp: ``Llama.eval`` of a ~360-token text from an empty context (prompt tokens/s) and a
60-token greedy completion with no grammar and under a JSON-schema grammar (output tokens/s), the
grammar checked lazily (the provider's sampler, sim/inference/providers/lazy_grammar.py) and
eagerly (llama-cpp-python's own: the whole vocabulary every token), with their speed ratio and
whether both picked the same greedy text.

The game: every ``create_chat_completion`` call the local provider makes is timed where it
happens, so the engine path (the game's wall time: prompts, memory, the client's layers, the
event log, metrics, the run directory) and raw llama.cpp are compared on exactly the same
prompts and tokens: ``engine_over_raw`` is the wall time per call divided by llama.cpp's time
per call. ``game_wall_s_at_raw_rates`` prices the game's uncached prompt tokens and its output
tokens (free text and under a grammar) at this run's raw rates: the game's wall time on a box
as quiet as the raw measurement was. ``cached_share`` is the share of prompt tokens llama.cpp served from its KV cache
(the prefix a prompt shares with the previous one). Figures are printed last as ``name: value``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

TEXT = "The castle's round table fell silent as the players weighed who had lied the night before. " * 20
SCHEMA = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 400}}, "required": ["text"]}
# `make run`'s game (the Makefile's RUN_DEFAULTS)
GAME = ["env=traitors", "llm=local", "env.n_players=8", "env.n_traitors=2"]
QUICK_GAME = ["env=traitors", "llm=local", "env.n_players=6", "env.n_traitors=2", "env.max_rounds=1"]


def raw_figures(llm, reps: int) -> dict[str, float]:
    toks = llm.tokenize(TEXT.encode())
    llm.reset()
    llm.eval(toks[:8])  # warm-up
    pp = []
    for _ in range(reps):
        llm.reset()
        t = time.perf_counter()
        llm.eval(toks)
        pp.append(len(toks) / (time.perf_counter() - t))
    msgs = [{"role": "user", "content": "Tell a long story about a castle and its traitors."}]

    def timed(max_tokens: int, i: int, **kw) -> tuple[float, int]:
        llm.reset()
        t = time.perf_counter()
        out = llm.create_chat_completion(messages=msgs, max_tokens=max_tokens, temperature=0.0, seed=i, **kw)
        return time.perf_counter() - t, out["usage"]["completion_tokens"]

    def gen(**kw) -> float:
        best = 0.0
        for i in range(reps):
            t1, _ = timed(1, i, **kw)  # the prompt and one token: taken off the long run below
            t, n = timed(60, i, **kw)
            dt = t - t1 if t > t1 else t  # on a loaded box the difference can come out negative
            best = max(best, (n - 1) / dt if n > 1 and t > t1 else n / t)
        return best

    from sim.inference.providers.lazy_grammar import eager_grammar

    fmt = {"response_format": {"type": "json_object", "schema": SCHEMA}}
    free = gen()
    grammar = gen(**fmt)  # the provider's sampler: the grammar checked on the sampled token first
    with eager_grammar(llm):  # llama-cpp-python's own: the whole vocabulary checked every token
        grammar_eager = gen(**fmt)
    # greedy decoding: the lazy check must pick exactly the tokens the eager one picks
    texts = []
    for ctx in (eager_grammar(llm), _nothing()):
        with ctx:
            llm.reset()
            texts.append(llm.create_chat_completion(messages=msgs, max_tokens=60, temperature=0.0, seed=0,
                                                    **fmt)["choices"][0]["message"]["content"])
    llm.reset()
    return {"prompt_tokens_per_s": max(pp), "output_tokens_per_s_free_text": free,
            "output_tokens_per_s_json_grammar": grammar,
            "output_tokens_per_s_json_grammar_eager_check": grammar_eager,
            "lazy_over_eager_grammar_speed": grammar / grammar_eager if grammar_eager else float("nan"),
            "lazy_grammar_same_greedy_text": float(texts[0] == texts[1])}


@contextlib.contextmanager
def _nothing():
    yield


class Timed:
    """Wraps a Llama's create_chat_completion: seconds, prompt/output tokens per call."""

    def __init__(self, llm):
        self.llm, self.inner = llm, llm.create_chat_completion
        self.calls: list[tuple[float, int, int]] = []
        llm.create_chat_completion = self

    def __call__(self, **kw):
        t = time.perf_counter()
        out = self.inner(**kw)
        u = out.get("usage") or {}
        self.calls.append((time.perf_counter() - t, int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0))))
        return out


def game_figures(overrides: list[str], threads: int | None) -> tuple[dict[str, float], dict[str, float]]:
    import polars as pl

    import sim
    from sim.inference.providers.local import bundled_gguf, load_llama

    llm = load_llama(bundled_gguf(), 4096, threads)  # the instance the game's provider will use
    timed = Timed(llm)
    th = [f"llm.n_threads={threads}"] if threads else []
    with tempfile.TemporaryDirectory(prefix="agora-speed-") as tmp:
        t = time.perf_counter()
        res = sim.run([*overrides, *th, "llm.cache.mode=off", "budget=unlimited", f"run.dir={tmp}/run", "seed=11"],
                      progress=False)
        wall = time.perf_counter() - t
        led = res.ledger.filter(pl.col("outcome") == "ok")  # read while the run folder exists
    llm.create_chat_completion = timed.inner
    tin, tout, cached = (int(led[c].sum()) for c in ("tokens_in", "tokens_out", "tokens_cached"))
    raw_s = sum(c[0] for c in timed.calls)
    n = len(timed.calls)
    o = res.summary["outcome"]
    # output tokens decoded without a grammar: reflections, and speeches when they are free text
    free = {"reflect"} | ({"speak", "react", "conclave"} if o.get("speech_mode") == "free" else set())
    out_free = int(led.filter(pl.col("purpose").is_in(list(free)))["tokens_out"].sum())
    figs = {"game_wall_s": wall, "game_status_completed": float(res.status == "completed"),
            "game_rounds": float(o.get("rounds") or 0), "game_calls": float(n), "game_tokens_in": float(tin),
            "game_tokens_out": float(tout), "cached_share": cached / tin if tin else 0.0,
            "uncached_tokens_in": float(tin - cached),
            "engine_tokens_per_s": (tin + tout) / wall if wall else 0.0,
            "raw_tokens_per_s_same_prompts": (tin + tout) / raw_s if raw_s else 0.0,
            "engine_s_per_call": wall / n if n else 0.0, "raw_s_per_call": raw_s / n if n else 0.0,
            "engine_over_raw": wall / raw_s if raw_s else 0.0,
            "game_tokens_out_free_text": float(out_free), "game_tokens_out_grammar": float(tout - out_free)}
    for k in ("legible_speech_share", "belief_seat_rho", "belief_truth_rho", "belief_form_rho"):
        figs[k] = float("nan") if o.get(k) is None else float(o[k])
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for p, a, c in zip(led["purpose"], led["tokens_in"], led["tokens_cached"]):
        per[p][0] += int(a)
        per[p][1] += int(c)
    shares = {f"cached_share_{p}": c / a if a else 0.0 for p, (a, c) in sorted(per.items())}
    return figs, shares


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="raw figures only, 1 repeat")
    ap.add_argument("--small-game", action="store_true", help="a 1-round 6-player game instead of make run's")
    ap.add_argument("--busy", action="store_true", help="keep one core busy with a spinner while measuring")
    ap.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: the provider's)")
    ap.add_argument("--no-game", action="store_true", help="raw figures only")
    a = ap.parse_args(argv)
    from sim.inference.providers.local import bundled_gguf, default_threads, load_llama

    load0 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if a.busy else None
    try:
        llm = load_llama(bundled_gguf(), 4096, a.threads)
        figs = raw_figures(llm, 1 if a.quick else 3)
        shares: dict[str, float] = {}
        if not (a.no_game or a.quick):
            g, shares = game_figures(QUICK_GAME if a.small_game else GAME, a.threads)
            figs |= g
            # the same tokens at this run's raw rates: what the game costs llama.cpp alone
            figs["game_wall_s_at_raw_rates"] = (g["uncached_tokens_in"] / figs["prompt_tokens_per_s"]
                                                + g["game_tokens_out_free_text"] / figs["output_tokens_per_s_free_text"]
                                                + g["game_tokens_out_grammar"] / figs["output_tokens_per_s_json_grammar"])
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# embedded_speed ({bundled_gguf().name}, threads={a.threads or default_threads()}, "
          f"busy_core={'yes' if a.busy else 'no'}, cpus={os.cpu_count()}, load_1min_at_start={load0:.2f}, "
          f"load_1min_at_end={load:.2f})")
    for k, v in {**figs, **shares}.items():
        print(f"{k}: {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
