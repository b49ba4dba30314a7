"""Config: Hydra composition plus validation that names the bad key.

Hydra composes ``conf/`` with the user's overrides; then each section is
checked by a small pydantic model (``extra="forbid"``), so a wrong key, type
or value fails at start with one line naming it and what is allowed.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import conf as _conf_pkg

CONF_DIR = Path(_conf_pkg.__file__).parent


class ConfigError(ValueError):
    """One clear line naming the key and what is allowed."""


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = h_compose("config", overrides=overrides)
    except Exception as e:  # noqa: BLE001 - turned into one clear line below
        raise ConfigError(_explain(e, overrides)) from None
    finally:
        GlobalHydra.instance().clear()
    apply_aliases(cfg)
    validate(cfg)
    return cfg


def apply_aliases(cfg: DictConfig) -> None:
    """Top-level shorthands: ``planner=saez`` means ``env.planner=saez`` (taxation)."""
    planner = cfg.get("planner")
    if planner is not None:
        if cfg.env.get("name") != "taxation":
            raise ConfigError(f"planner={planner}: only env=taxation has a planner")
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.env.planner = planner


def _explain(e: Exception, overrides: list[str]) -> str:
    msg = str(e)
    m = re.search(r"Could not find '([\w/]+)/([^']+)'", msg)
    if m:
        group, opt = m.group(1), m.group(2)
        return f"{group}={opt} is not a known option; allowed: {', '.join(group_options(group))}"
    m = re.search(r"Could not override '([^']+)'", msg) or re.search(r"Key '([^']+)' is not in struct", msg)
    if m:
        key = m.group(1)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        allowed = _keys_under(parent, overrides)
        return f"unknown key '{key}'" + (f"; keys under '{parent}': {', '.join(allowed)}" if allowed else "") + \
            " (use +key=value to add a new key)"
    m = re.search(r"Error parsing override '([^']+)'", msg)
    if m:
        return f"cannot parse override '{m.group(1)}': expected key=value"
    first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
    return f"bad config: {first}"


def _chosen(group: str, overrides: list[str]) -> str | None:
    for o in overrides:
        k, _, v = o.partition("=")
        if k.lstrip("+~") == group:
            return v
    base = OmegaConf.load(CONF_DIR / "config.yaml")
    for d in base.get("defaults", []):
        if isinstance(d, DictConfig) and group in d:
            return d[group]
    return None


def _keys_under(parent: str, overrides: list[str] = ()) -> list[str]:
    try:
        base = OmegaConf.load(CONF_DIR / "config.yaml")
        node = OmegaConf.select(base, parent) if parent else base
        if parent and node is None:
            group = parent.split(".")[0]
            if (CONF_DIR / group).is_dir():
                keys: set[str] = set()
                chosen = _chosen(group, list(overrides))
                files = [CONF_DIR / group / f"{chosen}.yaml"] if chosen else list((CONF_DIR / group).glob("*.yaml"))
                for f in files:
                    sub = OmegaConf.load(f)
                    rest = parent.split(".")[1:]
                    sub = OmegaConf.select(sub, ".".join(rest)) if rest else sub
                    if isinstance(sub, DictConfig):
                        keys |= set(sub.keys())
                return sorted(keys)
        return sorted(k for k in node.keys() if k != "defaults") if isinstance(node, DictConfig) else []
    except Exception:  # noqa: BLE001
        return []


def to_dict(cfg: DictConfig | dict) -> dict[str, Any]:
    if isinstance(cfg, dict):
        return cfg
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def validate(cfg: DictConfig | dict) -> None:
    from pydantic import ValidationError

    from environments import registry

    d = to_dict(cfg)
    env_name = d.get("env", {}).get("name")
    if env_name not in registry.ENVIRONMENTS:
        raise ConfigError(f"env.name={env_name!r} is not known; allowed: {', '.join(registry.ENVIRONMENTS)}")
    checks = [("env", registry.config_model(env_name)), ("llm", _llm_model()), ("budget", _budget_model()),
              ("run", _run_model()), ("agent", _agent_model())]
    for section, model in checks:
        try:
            model.model_validate(d.get(section) or {})
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(x) for x in err["loc"])
            key = f"{section}.{loc}" if loc else section
            val = _get(d.get(section) or {}, err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(model.model_fields))
                raise ConfigError(f"unknown key '{key}'; allowed keys under '{section}': {allowed}") from None
            raise ConfigError(f"{key}={val!r}: {msg}") from None
    if not isinstance(d.get("seed"), int) or d["seed"] < 0:
        raise ConfigError(f"seed={d.get('seed')!r}: must be a non-negative integer")
    personas = (d.get("agent") or {}).get("personas")
    if personas:
        from agents.persona import PersonaFileError, load_persona_file

        try:
            load_persona_file(str(personas))
        except PersonaFileError as e:
            raise ConfigError(str(e)) from None
    n_cross = registry.cross_check(env_name, d)
    if n_cross:
        raise ConfigError(n_cross)


def _get(d: Any, loc: tuple) -> Any:
    for k in loc:
        try:
            d = d[k]
        except (KeyError, IndexError, TypeError):
            return None
    return d


def _llm_model():
    from typing import Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    class Cache(BaseModel):
        model_config = ConfigDict(extra="forbid")
        mode: Literal["off", "record", "replay", "reuse"] = "record"
        shared_dir: Optional[str] = None

    class RL(BaseModel):
        model_config = ConfigDict(extra="forbid")
        rpm: Optional[float] = Field(None, gt=0)
        tpm: Optional[float] = Field(None, gt=0)

    class LLM(BaseModel):
        model_config = ConfigDict(extra="allow")
        provider: Literal["local", "openai", "langchain", "scripted"]
        model: str
        temperature: float = Field(0.7, ge=0, le=2)
        top_p: float = Field(0.9, gt=0, le=1)
        max_tokens: int = Field(96, ge=0, le=32768)
        timeout_s: float = Field(30, gt=0)
        max_retries: int = Field(2, ge=0, le=10)
        concurrency: int = Field(8, ge=1)
        cap_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
        schema_mode: Literal["json_schema", "json_object", "none"] = "json_schema"
        cache: Cache = Cache()
        rate_limit: RL = RL()
        prices: dict

    return LLM


def _budget_model():
    from typing import Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    class B(BaseModel):
        model_config = ConfigDict(extra="forbid")
        run_usd: Optional[float] = Field(None, ge=0)
        sweep_usd: Optional[float] = Field(None, ge=0)  # total over a Hydra multirun (sim/sweep.py)
        per_agent_usd: Optional[float] = Field(None, ge=0)
        per_team_usd: dict[str, float] = {}
        on_exhaust: Literal["deny", "shrink", "downgrade", "halt"] = "deny"
        min_output_tokens: int = Field(16, ge=1)
        show_remaining: bool = True

    return B


def _agent_model():
    from typing import Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    class Memory(BaseModel):
        model_config = ConfigDict(extra="forbid")
        embedder: Literal["lexical", "minilm", "auto"] = "lexical"
        k: int = Field(4, ge=0, le=100)
        line_chars: int = Field(120, ge=20, le=2000)
        w_recency: float = Field(1.0, ge=0)
        w_importance: float = Field(1.0, ge=0)
        w_relevance: float = Field(1.0, ge=0)
        decay: float = Field(0.99, gt=0, le=1)
        scripted: bool = False

    class Reflection(BaseModel):
        model_config = ConfigDict(extra="forbid")
        enabled: bool = True
        threshold: float = Field(40.0, gt=0)

    class Agent(BaseModel):
        model_config = ConfigDict(extra="forbid")
        personas: Optional[str] = None
        personas_fill: Literal["generate", "error"] = "generate"
        memory: Memory = Memory()
        reflection: Reflection = Reflection()
        reasks: int = Field(1, ge=0, le=5)
        llm_by_role: Optional[dict[str, dict]] = {}

    return Agent


def _run_model():
    from typing import Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    class R(BaseModel):
        model_config = ConfigDict(extra="forbid")
        dir: Optional[str] = "auto"
        root: str = "runs"
        checkpoint: bool = True
        progress: Literal["auto", "on", "off"] | bool = "auto"
        max_ticks: int = Field(10000, ge=1)

    return R


def secret_free(d: dict[str, Any]) -> dict[str, Any]:
    """Config as written to config.yaml: names of key variables stay, values never exist here."""
    def scrub(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: ("***" if re.search(r"(api_key|secret|token)$", k) and k != "api_key_env" and isinstance(v, str)
                        else scrub(v)) for k, v in x.items()}
        if isinstance(x, list):
            return [scrub(v) for v in x]
        return x
    return scrub(d)
