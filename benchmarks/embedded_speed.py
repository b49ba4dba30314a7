"""Raw speed of the embedded model on this machine: prompt and output tokens per second.

    python benchmarks/embedded_speed.py           # 3 repeats
    python benchmarks/embedded_speed.py --quick   # 1 repeat

Prompt processing: ``Llama.eval`` of a ~360-token text from an empty context. Output: a
greedy completion of 60 tokens with no grammar, and one under a JSON-schema grammar of a
free string field (what speech would cost without the local provider's plain-text path).
These set the floor for an embedded-model game: a call costs about
prompt_tokens / prompt_tps + output_tokens / output_tps.
Figures are printed last as ``name: value`` lines.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

from sim.inference.providers.local import bundled_gguf, load_llama  # noqa: E402

TEXT = "The castle's round table fell silent as the players weighed who had lied the night before. " * 20
SCHEMA = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 400}}, "required": ["text"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    reps = 1 if a.quick else 3
    llm = load_llama(bundled_gguf(), 2048, None)
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

    def gen(**kw) -> float:
        best = 0.0
        for i in range(reps):
            llm.reset()
            t = time.perf_counter()
            out = llm.create_chat_completion(messages=msgs, max_tokens=60, temperature=0.0, seed=i, **kw)
            n = out["usage"]["completion_tokens"]
            # subtract the (short) prompt's share at the measured prompt speed
            dt = time.perf_counter() - t - out["usage"]["prompt_tokens"] / max(pp)
            best = max(best, n / max(dt, 1e-6))
        return best

    free = gen()
    grammar = gen(response_format={"type": "json_object", "schema": SCHEMA})
    print(f"# embedded_speed ({bundled_gguf().name}, {llm.n_threads if hasattr(llm, 'n_threads') else '?'} threads)")
    print(f"prompt_tokens: {len(toks)}")
    print(f"prompt_tokens_per_s: {max(pp):.1f}")
    print(f"output_tokens_per_s_free_text: {free:.1f}")
    print(f"output_tokens_per_s_json_grammar: {grammar:.1f}")
    print(f"grammar_slowdown_ratio: {free / grammar:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
