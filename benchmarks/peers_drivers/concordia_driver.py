"""Concordia side of ``benchmarks/peers.py``: N entities, one ``sample_text`` call each per step.

Runs in the peers' virtualenv (never imports Agora). Public gdm-concordia API only:
the OpenAI wrapper ``GptLanguageModel`` (2.4: ``concordia.contrib.language_models``'
``language_model_setup(api_type="openai")``; 2.1: ``concordia.language_model.gpt_model``;
its ``openai.OpenAI`` client reads ``OPENAI_BASE_URL``), entities built by the
``concordia.prefabs.entity.minimal.Entity`` prefab on an ``AssociativeMemoryBank``, and
``concordia.utils.concurrency`` to step every entity at once as Concordia's simultaneous
engine does (2.4: ``run_tasks_in_background``; 2.1: ``run_tasks``; one thread per
entity: observe, then ``act`` with a FREE action spec -> one ``sample_text``). No game
master: it would add its own calls.

    python concordia_driver.py --agents 100 --ticks 3 [--sequential]

Prints one JSON line last: wall time of the ticks (after imports and entity set-up).
"""
from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
from importlib import metadata

from workload import BRACKETS, HOURS, parse_args  # noqa: E402 - sibling module


def main() -> int:
    a = parse_args("step entities one after another", ())

    import numpy as np
    from concordia.associative_memory import basic_associative_memory
    from concordia.prefabs.entity import minimal
    from concordia.typing import entity as entity_lib
    from concordia.utils import concurrency

    def embed(text: str) -> np.ndarray:
        """Hashed bag of words (no network, no model download): Concordia only needs a vector."""
        v = np.zeros(64)
        for w in text.lower().split():
            v[int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little") % 64] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    try:  # 2.4: the model wrappers moved to contrib, behind a loader
        from concordia.contrib.language_models import language_model_setup

        model = language_model_setup(api_type="openai", model_name="bench")
        loader = "contrib.language_models.language_model_setup(api_type='openai')"
    except ImportError:  # 2.1
        from concordia.language_model import gpt_model

        model = gpt_model.GptLanguageModel("bench")
        loader = "language_model.gpt_model.GptLanguageModel"
    # either way the key comes from OPENAI_API_KEY and the URL from OPENAI_BASE_URL
    step_all = getattr(concurrency, "run_tasks_in_background", concurrency.run_tasks)
    rng = np.random.default_rng(1)
    skills = rng.uniform(1.24, 159.1, a.agents)
    entities = []
    for i in range(a.agents):
        name = f"w{i + 1:03d}"
        prefab = minimal.Entity(params={
            "name": name,
            "goal": (f"Economy: {name} chooses how many hours to work each tick (0 to 100). Income = skill x "
                     "hours. Income is taxed by brackets and all tax revenue is shared equally. Maximise "
                     "utility."),
            "randomize_choices": False})
        entities.append(prefab.build(model=model, memory_bank=basic_associative_memory.AssociativeMemoryBank(
            sentence_embedder=embed)))
    spec = entity_lib.ActionSpec(
        call_to_action=f"How many hours does {{name}} work this tick? Answer with one of {HOURS}.",
        output_type=entity_lib.OutputType.FREE)
    replies = [0]

    def entity_step(i: int, tick: int) -> str:
        e = entities[i]
        e.observe(f"Tick {tick}. {e.name}'s skill: {skills[i]:.2f} per hour. Tax brackets on period income "
                  f"(marginal rates): {BRACKETS}.")
        out = e.act(spec)
        replies[0] += 1  # GIL-atomic enough for a count; checked against the server's count anyway
        return out

    model.sample_text("warm-up: say ok", max_tokens=4)  # lazy imports of the SDK, outside the timing
    ticks = []
    t_all = time.perf_counter()
    for tick in range(1, a.ticks + 1):
        t0 = time.perf_counter()
        if a.sequential:
            for i in range(a.agents):
                entity_step(i, tick)
        else:
            out = step_all({e.name: functools.partial(entity_step, i, tick) for i, e in enumerate(entities)})
            if isinstance(out, tuple) and out[1]:  # run_tasks_in_background returns (results, errors)
                name, err = next(iter(out[1].items()))
                raise RuntimeError(f"{len(out[1])} entities failed, e.g. {name}: {type(err).__name__}: {err}")
        ticks.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_all
    mode = ("sequential entity loop" if a.sequential else
            f"concordia.utils.concurrency.{step_all.__name__} (one thread per entity, as the simultaneous "
            f"engine); {loader}")
    print(json.dumps({"wall_s": wall, "tick_s": ticks, "ok_replies": replies[0], "mode": mode, "warmup_calls": 1,
                      "version": f"gdm-concordia {metadata.version('gdm-concordia')}, "
                                 f"openai {metadata.version('openai')}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
