"""mesa-llm side of ``benchmarks/peers.py``: N LLMAgents, one LLM call each per model step.

Runs in the peers' virtualenv (never imports Agora). Public mesa-llm API only:
``mesa_llm.llm_agent.LLMAgent`` (its ``ModuleLLM`` as ``agent.llm``), its short/long-term
memory (``agent.memory.add_to_memory``) and mesa-llm's automatic parallel stepping
(``model.parallel_stepping = True`` + ``model.agents.shuffle_do("step")``, which gathers
every agent's ``astep`` on an asyncio loop). litellm is pointed at the loopback server
with ``OPENAI_API_BASE`` (``ModuleLLM.agenerate`` does not forward ``api_base``).

    python mesa_llm_driver.py --agents 100 --ticks 3 [--sequential]

Prints one JSON line last: wall time of the ticks (after imports and model set-up).
"""
from __future__ import annotations

import json
import os
import sys
import time

from workload import BRACKETS, HOURS, parse_args  # noqa: E402 - sibling module


def main() -> int:
    a = parse_args("plain Mesa stepping instead of parallel", [("--display", "keep mesa-llm's per-step memory panels")])
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the price map at import

    import mesa
    from pydantic import BaseModel

    import mesa_llm
    from mesa_llm.llm_agent import LLMAgent
    from mesa_llm.reasoning.react import ReActReasoning

    class LaborChoice(BaseModel):
        hours: int

    class Worker(LLMAgent):
        def __init__(self, model, skill: float):
            super().__init__(model, reasoning=ReActReasoning, llm_model="openai/bench",
                             system_prompt=(f"Economy: you are worker {model.next_name()}. Each tick you choose "
                                            "how many hours to work (0 to 100). Income = your skill x hours. "
                                            "Income is taxed by brackets and all tax revenue is shared "
                                            "equally. Maximise your utility. Reply with one JSON object only."),
                             internal_state=[f"skill {skill:.2f}"])
            self.memory.display = a.display
            self.skill = skill
            self.hours = 0
            self.ok = 0

        def _prompt(self) -> list[str]:
            obs = self.generate_obs()
            return [*self.memory.get_prompt_ready(),
                    f"Now: Tick {obs.step}. Your skill: {self.skill:.2f} per hour.\n"
                    f"Tax brackets on period income (marginal rates): {BRACKETS}.\n"
                    f"Choose your hours this tick from {HOURS}.\nJSON fields: {{\"hours\": one of {HOURS}}}"]

        def _apply(self, rsp) -> None:
            self.hours = int(json.loads(rsp.choices[0].message.content)["hours"])
            self.ok += 1
            self.memory.add_to_memory(type="action", content={"hours": self.hours})

        async def astep(self):  # parallel stepping: mesa-llm gathers these
            self._apply(await self.llm.agenerate(self._prompt(), response_format=LaborChoice))

        def step(self):  # sequential stepping
            self._apply(self.llm.generate(self._prompt(), response_format=LaborChoice))

    class Economy(mesa.Model):
        def __init__(self, n: int, parallel: bool, seed: int = 1):
            super().__init__(seed=seed)
            self.parallel_stepping = parallel
            self._k = 0
            self.grid = None
            for _ in range(n):
                Worker(self, skill=self.random.uniform(1.24, 159.1))

        def next_name(self) -> str:
            self._k += 1
            return f"w{self._k:03d}"

        def step(self):
            self.agents.shuffle_do("step")

    model = Economy(a.agents, parallel=not a.sequential)
    for ag in model.agents:  # no grid: a fixed position so generate_obs() has a location
        ag.pos = (0, 0)
    from mesa_llm.module_llm import ModuleLLM
    ModuleLLM("openai/bench").generate("warm-up: say ok")  # litellm's lazy imports, outside the timing
    ticks = []
    t_all = time.perf_counter()
    for _ in range(a.ticks):
        t0 = time.perf_counter()
        model.step()
        ticks.append(time.perf_counter() - t0)
    wall = time.perf_counter() - t_all
    ok = sum(ag.ok for ag in model.agents)
    mode = "sequential Mesa stepping (LLMAgent.step -> ModuleLLM.generate)" if a.sequential else \
        "mesa-llm automatic parallel stepping, asyncio (LLMAgent.astep -> ModuleLLM.agenerate)"
    print(json.dumps({"wall_s": wall, "tick_s": ticks, "ok_replies": ok, "mode": mode, "warmup_calls": 1,
                      "version": f"mesa-llm {mesa_llm.__version__}, mesa {mesa.__version__}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
