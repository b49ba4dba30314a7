"""mesa-llm side of ``benchmarks/peers.py``: N LLMAgents, one LLM call each per model step.

Runs in the peers' virtualenv (never imports Agora). Public mesa-llm API only:
``mesa_llm.llm_agent.LLMAgent`` (its ``ModuleLLM`` as ``agent.llm``), its short/long-term
memory (0.3: ``agenerate_obs`` / ``memory.aadd_to_memory`` inside ``astep``; 0.2: the sync
ones) and mesa-llm's parallel stepping, which gathers every agent's ``astep`` on an
asyncio loop: 0.3 ``mesa_llm.step_agents_parallel_sync(agents)``, called explicitly
because its automatic mode patches ``mesa.AgentSet.shuffle_do`` while Mesa >= 3.5's
``model.agents`` is a ``_HardKeyAgentSet`` that the patch does not reach (every agent
would silently step one after another); 0.2 ``model.agents.shuffle_do("step")`` with
``model.parallel_stepping = True``. The JSON says which path stepped the agents.
litellm is pointed at the loopback server with ``OPENAI_API_BASE``.

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

    step_parallel = getattr(mesa_llm, "step_agents_parallel_sync", None)  # 0.3; None on 0.2
    stepped = {"astep": 0, "step": 0}
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

        def _prompt(self, obs) -> list[str]:
            return [*self.memory.get_prompt_ready(),
                    f"Now: Tick {obs.step}. Your skill: {self.skill:.2f} per hour.\n"
                    f"Tax brackets on period income (marginal rates): {BRACKETS}.\n"
                    f"Choose your hours this tick from {HOURS}.\nJSON fields: {{\"hours\": one of {HOURS}}}"]

        def _parse(self, rsp) -> dict:
            self.hours = int(json.loads(rsp.choices[0].message.content)["hours"])
            self.ok += 1
            return {"hours": self.hours}

        async def astep(self):  # parallel stepping: mesa-llm gathers these
            stepped["astep"] += 1
            aobs = getattr(self, "agenerate_obs", None)  # 0.3: async memory ops inside astep
            obs = await aobs() if aobs else self.generate_obs()
            act = self._parse(await self.llm.agenerate(self._prompt(obs), response_format=LaborChoice))
            if hasattr(self.memory, "aadd_to_memory"):
                await self.memory.aadd_to_memory(type="action", content=act)
            else:
                self.memory.add_to_memory(type="action", content=act)

        def step(self):  # sequential stepping
            stepped["step"] += 1
            act = self._parse(self.llm.generate(self._prompt(self.generate_obs()), response_format=LaborChoice))
            self.memory.add_to_memory(type="action", content=act)

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
            if self.parallel_stepping and step_parallel is not None:
                step_parallel(list(self.agents))
            else:
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
    if stepped["astep"] and not stepped["step"]:
        how = "mesa_llm.step_agents_parallel_sync" if step_parallel else "automatic parallel stepping (shuffle_do)"
        mode = f"mesa-llm parallel stepping, asyncio: {how} (LLMAgent.astep -> ModuleLLM.agenerate)"
    else:  # asked for, or fell back to: one agent after another
        mode = "sequential Mesa stepping (LLMAgent.step -> ModuleLLM.generate)"
        mode += "" if a.sequential else " [parallel stepping did not engage]"
    print(json.dumps({"wall_s": wall, "tick_s": ticks, "ok_replies": ok, "mode": mode, "warmup_calls": 1,
                      "version": f"mesa-llm {mesa_llm.__version__}, mesa {mesa.__version__}"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
