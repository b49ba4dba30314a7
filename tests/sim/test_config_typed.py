"""Config is validated once into one typed RunConfig; defaults live in the models only."""
from __future__ import annotations

import re

import pytest
import yaml

from environments import registry
from sim.config import CONF_DIR, ConfigError, compose, run_config_model, to_dict


@pytest.mark.parametrize("name", registry.ENVIRONMENTS)
def test_compose_returns_the_typed_config_with_every_default(name):
    rc = compose(["llm=scripted", f"env={name}"])
    assert isinstance(rc, run_config_model())
    assert rc.env.name == name
    assert type(rc.env) is registry.config_model(name)  # the env section is a union keyed by name
    d = to_dict(rc)
    assert d["engine"]["concurrency"] == 8 and d["run"]["max_ticks"] == 10000 and d["agent"]["memory"]["k"] == 4
    assert d["env"] == registry.config_model(name)().model_dump(mode="json")  # defaults live in the model


def test_env_value_overrides_reach_the_typed_section():
    rc = compose(["llm=scripted", "env=market", "env.n_traders=6"])
    assert rc.env.n_traders == 6


def test_value_overrides_need_no_yaml_entry_but_unknown_keys_still_fail():
    assert compose(["env.n_players=6", "env.n_traitors=1"]).env.n_players == 6
    with pytest.raises(ConfigError, match="unknown key 'env.n_playerz'"):
        compose(["env.n_playerz=6"])
    with pytest.raises(ConfigError, match="unknown key 'engine.concurency'"):
        compose(["engine.concurency=4"])


def _commented_defaults(path):
    """``# key: value`` lines of a YAML file (top level and one indented level), as {dotted key: value}."""
    out, parent = {}, None
    for line in path.read_text().splitlines():
        m = re.match(r"^(\s*)# ([a-z_]+):(.*)$", line)
        if not m:
            continue
        indent, key, rest = m.groups()
        rest = rest.split("  #")[0].strip()
        if not indent and not rest:
            parent = key
            continue
        if not indent:
            parent = None
        full = f"{parent}.{key}" if indent and parent else key
        try:
            out[full] = yaml.safe_load(rest) if rest else None
        except yaml.YAMLError:
            continue  # prose
    return out


@pytest.mark.parametrize("rel,section", [*((f"env/{name}.yaml", "env") for name in registry.ENVIRONMENTS),
                                         ("agent/default.yaml", "agent"), ("budget/default.yaml", "budget"),
                                         ("config.yaml", None)])
def test_commented_defaults_in_yaml_match_the_models(rel, section):
    """The YAML shows defaults as comments; they must be the models' own values (no drift)."""
    name = rel.split("/")[1].removesuffix(".yaml") if rel.startswith("env/") else "traitors"
    d = to_dict(compose(["llm=scripted", f"env={name}"]))
    shown = _commented_defaults(CONF_DIR / rel)
    checked = 0
    for key, value in shown.items():
        node = d[section] if section else d
        try:
            for part in key.split("."):
                node = node[part]
        except (KeyError, TypeError):
            continue  # a prose comment that happens to look like "word: text"
        if isinstance(node, list):
            value = list(value)
        assert node == value, f"{rel}: {key} shows {value!r} but the model default is {node!r}"
        checked += 1
    assert checked >= 5, f"{rel}: only {checked} commented defaults found"
