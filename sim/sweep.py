"""Hydra multirun entry: each job is one run in its own run directory."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="pkg://conf", config_name="config")
def hydra_main(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from sim.config import to_dict, validate
    from sim.runner import run_config

    from sim.config import apply_aliases

    apply_aliases(cfg)
    validate(cfg)
    d = to_dict(cfg)
    if d["run"].get("dir") == "auto":
        d["run"]["dir"] = HydraConfig.get().runtime.output_dir
    res = run_config(d, progress=False)
    s = res.summary
    print(f"[job] {s['env']} seed={s['seed']} status={s['status']} dir={res.dir}")
    return None
