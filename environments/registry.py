"""Environments by name, imported lazily so `agora --help` stays fast."""
from __future__ import annotations

import importlib

ENVIRONMENTS = {
    "traitors": "environments.traitors.env:TraitorsEnv",
    "taxation": "environments.taxation.env:TaxationEnv",
    "market": "environments.market.env:MarketEnv",
}


def env_class(name: str):
    mod, _, cls = ENVIRONMENTS[name].partition(":")
    return getattr(importlib.import_module(mod), cls)


def config_model(name: str):
    return env_class(name).Config


def cross_check(name: str, cfg: dict) -> str | None:
    f = getattr(env_class(name), "cross_check", None)
    return f(cfg) if f else None
