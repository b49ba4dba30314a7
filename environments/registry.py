"""Environments by name: the one place their names live.

Each environment module decorates its class with ``@register``; the table
below says which module to import for a name, so `agora --help` stays fast and
nothing else in the code base needs to know which environments exist.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sim.engine import Environment

# name -> module that registers it
MODULES = {
    "traitors": "environments.traitors.env",
    "taxation": "environments.taxation.env",
    "market": "environments.market.env",
    "macro": "environments.macro.env",
}
ENVIRONMENTS = tuple(MODULES)
_CLASSES: dict[str, type["Environment"]] = {}


def register(cls: type["Environment"]) -> type["Environment"]:
    """Class decorator: ``cls.name`` becomes a registered environment."""
    if cls.name not in MODULES:
        raise ValueError(f"environment {cls.name!r} is not listed in environments/registry.py MODULES")
    _CLASSES[cls.name] = cls
    return cls


def env_class(name: str) -> type["Environment"]:
    if name not in _CLASSES:
        if name not in MODULES:
            raise KeyError(f"unknown environment {name!r}; known: {', '.join(ENVIRONMENTS)}")
        importlib.import_module(MODULES[name])
    return _CLASSES[name]


def config_model(name: str):
    return env_class(name).Config


def cross_check(name: str, cfg: dict) -> str | None:
    return env_class(name).cross_check(cfg)
