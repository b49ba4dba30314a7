"""Config: Hydra composition plus validation that names the bad key.

Hydra composes ``conf/`` with the user's overrides; then each section is
checked by a small pydantic model (``extra="forbid"``), so a wrong key, type
or value fails at start with one line naming it and what is allowed.
"""
from __future__ import annotations

import functools
import os
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


def groups() -> list[str]:
    """Config groups (folders of conf/): ``env=market`` picks a file there."""
    return sorted(p.name for p in CONF_DIR.iterdir() if p.is_dir() and not p.name.startswith("_"))


def as_hydra(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """User overrides as Hydra takes them: ``key=value`` sets a value whether or not the YAML lists it.

    Defaults live in the pydantic models only; the YAML files keep comments and group
    choices. So a value override is a forced add (``++key=value``) and the models,
    not Hydra's struct mode, refuse unknown keys with one line naming them. Group
    choices (``env=market``), Hydra's own keys and explicit ``+``/``++``/``~`` are kept.
    """
    gs = set(groups())
    out = []
    for o in overrides:
        key, eq, _ = o.partition("=")
        if (not eq or o.startswith(("+", "~")) or key in gs or key.split("/")[0] in gs
                or key.startswith("hydra")):
            out.append(o)
        else:
            out.append("++" + o)
    return out


def compose(overrides: list[str] | tuple[str, ...] = ()) -> "RunConfig":
    """The validated, typed config of a run: Hydra composition + the pydantic models' defaults."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = h_compose("config", overrides=as_hydra(overrides))
    except Exception as e:  # noqa: BLE001 - turned into one clear line below
        raise ConfigError(_explain(e, overrides)) from None
    finally:
        GlobalHydra.instance().clear()
    d = to_dict(cfg)
    apply_aliases(d)
    return validate(d)


# top-level shorthands environments may declare (``Environment.aliases``); null unless set
SHORTHANDS = ("planner",)


def apply_aliases(cfg: DictConfig | dict) -> None:
    """Top-level shorthands the chosen environment declares: e.g. ``planner=saez`` -> ``env.planner=saez``."""
    from environments import registry

    for key in SHORTHANDS:
        value = cfg.get(key)
        if value is None:
            continue
        env_name = cfg["env"].get("name")
        target = registry.env_class(env_name).aliases.get(key) if env_name in registry.ENVIRONMENTS else None
        if target is None:
            raise ConfigError(f"{key}={short(value)}: env={env_name} has no '{key}' shorthand")
        if isinstance(cfg, dict):
            cfg["env"][target] = value
            continue
        from omegaconf import open_dict

        with open_dict(cfg):
            cfg.env[target] = value


def _explain(e: Exception, overrides: list[str]) -> str:
    msg = str(e)
    m = re.search(r"Could not find '([\w/]+)/([^']+)'", msg)
    if m:
        group, opt = m.group(1), m.group(2)
        return f"{group}={short(opt)} is not a known option; allowed: {', '.join(group_options(group))}"
    m = re.search(r"Could not override '([^']+)'", msg) or re.search(r"Key '([^']+)' is not in struct", msg)
    if m:
        key = m.group(1)
        # a mapping value (k={a: {...}}) fails on the key inside it: name that one
        inner = re.search(r"full_key: (\S+)", str(e.__cause__ or ""))
        if inner and inner.group(1).startswith(key + "."):
            key = inner.group(1)
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        allowed = _keys_under(parent, overrides)
        under = f"; keys under '{short(parent)}': {', '.join(allowed)}" if allowed else ""
        return f"unknown key '{short(key)}'{under} (use +key=value to add a new key)"
    m = re.search(r"Error parsing override '([^']+)'", msg)
    if m:
        return f"cannot parse override '{short(m.group(1))}': expected key=value"
    first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
    return f"bad config: {short(first, 300)}"


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


def to_dict(cfg: "DictConfig | dict | RunConfig") -> dict[str, Any]:
    """A plain dict of the config (a RunConfig's every default filled in)."""
    if isinstance(cfg, dict):
        return cfg
    if hasattr(cfg, "model_dump"):
        return cfg.model_dump(mode="json")
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


@functools.cache
def run_config_model():
    """``RunConfig``: the whole run's config, one pydantic model; ``env`` is a union keyed by ``name``."""
    from typing import Annotated, Optional, Union

    from pydantic import BaseModel, ConfigDict, Field

    from environments import registry

    envs = tuple(registry.config_model(n) for n in registry.ENVIRONMENTS)
    Env = Annotated[Union[envs], Field(discriminator="name")]  # type: ignore[valid-type]

    class RunConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        seed: int = Field(0, ge=0)
        env: Env
        llm: _llm_model()
        budget: _budget_model() = Field(default_factory=_budget_model())
        agent: _agent_model() = Field(default_factory=_agent_model())
        run: _run_model() = Field(default_factory=_run_model())
        engine: _engine_model() = Field(default_factory=_engine_model())
        deliberation: _deliberation_model() = Field(default_factory=_deliberation_model())
        planner: Optional[str] = None  # shorthand, already applied to env (SHORTHANDS)

    return RunConfig


def __getattr__(name: str):
    if name == "RunConfig":
        return run_config_model()
    raise AttributeError(name)


# every top-level key the composed config may hold; anything else (``+foo=1``) is a typo
TOP_LEVEL = ("seed", "env", "llm", "budget", "agent", "run", "engine", "deliberation", *SHORTHANDS)


def short(text: Any, n: int = 60) -> str:
    """A user-supplied value cut to ``n`` characters, so one bad value stays one readable line."""
    s = str(text)
    return s if len(s) <= n else s[:n] + "…"


def validate(cfg: DictConfig | dict) -> "RunConfig":
    """Check every section (one line naming the first bad key) and return the typed config."""
    from environments import registry

    d = to_dict(cfg)
    if not isinstance(d, dict):
        raise ConfigError(f"config must be a mapping, not {type(d).__name__}")
    extra = sorted(str(k) for k in d if k not in TOP_LEVEL)
    if extra:
        raise ConfigError(f"unknown key '{short(extra[0])}'; allowed top-level keys: {', '.join(sorted(TOP_LEVEL))}")
    env_name = (d.get("env") or {}).get("name") if isinstance(d.get("env"), dict) else None
    if env_name not in registry.ENVIRONMENTS:
        raise ConfigError(f"env.name={short(repr(env_name))} is not known; allowed: {', '.join(registry.ENVIRONMENTS)}")
    checks = [("env", registry.config_model(env_name)), ("llm", _llm_model()), ("budget", _budget_model()),
              ("run", _run_model()), ("agent", _agent_model()), ("engine", _engine_model()),
              ("deliberation", _deliberation_model())]
    for section, model in checks:
        _check_section(section, model, d.get(section) or {})
    seed = d.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed={short(repr(seed))}: must be a non-negative integer")
    for where, llm in endpoints(d):
        if where != "llm":  # a role's override merged onto llm: checked as a whole llm section
            _check_section(where, _llm_model(), llm)
        _check_prices(where, llm)
    # the typed config; the cross-field checks below see every default filled in
    rc = run_config_model().model_validate({k: v for k, v in d.items() if v is not None or k == "planner"})
    full = rc.model_dump(mode="json")
    _check_personas(env_name, full)
    n_cross = registry.cross_check(env_name, full)
    if n_cross:
        raise ConfigError(n_cross)
    return rc


def _check_section(section: str, model, value: Any) -> None:
    """Validate one section with its pydantic model; the first error becomes one line naming the key."""
    from pydantic import ValidationError

    if not isinstance(value, dict):
        raise ConfigError(f"{section}={short(repr(value))}: must be a mapping of keys")
    try:
        model.model_validate(value)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(short(x) for x in err["loc"])
        key = f"{section}.{loc}" if loc else section
        if err["type"] == "extra_forbidden":
            parent = err["loc"][:-1]
            where = f"{section}.{'.'.join(short(x) for x in parent)}" if parent else section
            allowed = ", ".join(sorted(_fields_at(model, parent)))
            raise ConfigError(f"unknown key '{key}'; allowed keys under '{where}': {allowed}") from None
        val = _get(value, err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{key}={short(repr(val))}: {msg}") from None


def _fields_at(model, loc: tuple) -> list[str]:
    """Field names of the (nested) model at ``loc``, for "allowed keys under ..."; dict key levels skipped."""
    import typing

    from pydantic import BaseModel

    def model_in(tp) -> tuple[Any, bool]:
        """(the BaseModel class inside ``tp``, whether a dict key level comes before it)."""
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return tp, False
        if typing.get_origin(tp) is dict:
            return model_in(typing.get_args(tp)[1])[0], True
        for t in typing.get_args(tp):  # Optional[...] and other unions
            m, keyed = model_in(t)
            if m is not None:
                return m, keyed
        return None, False

    cur, i = model, 0
    while i < len(loc):
        field = cur.model_fields.get(str(loc[i]))
        if field is None:
            return []
        cur, keyed = model_in(field.annotation)
        if cur is None:
            return []
        i += 2 if keyed else 1
    return list(cur.model_fields)


def endpoints(d: dict) -> list[tuple[str, dict]]:
    """(key prefix, llm config) of the default endpoint and of each role in agent.llm_by_role.

    A role's config is its override merged onto ``llm`` exactly as the client merges it.
    """
    llm = d.get("llm") or {}
    out = [("llm", llm)]
    for role, over in ((d.get("agent") or {}).get("llm_by_role") or {}).items():
        where = f"agent.llm_by_role.{short(role)}"
        if not isinstance(over, dict):
            raise ConfigError(f"{where}={short(repr(over))}: must be a mapping such as "
                              "{provider: openai, model: gpt-4o}")
        prices = over.get("prices") or {}
        if not isinstance(prices, dict):
            raise ConfigError(f"{where}.prices={short(repr(prices))}: must be a mapping of model: prices")
        out.append((where, {**llm, **over, "prices": {**(llm.get("prices") or {}), **prices}}))
    return out


def _check_prices(where: str, llm: dict) -> None:
    """Every model the endpoint may call (its model and fallbacks) has a price."""
    from sim.inference.prices import PriceTable

    try:
        table = PriceTable(llm.get("prices") or {}, llm.get("price_version", "none"))
    except (ValueError, ArithmeticError, TypeError) as e:  # the price model above should have caught it
        raise ConfigError(f"{where}.prices: {short(e, 200)}") from None
    for key, models in (("model", [llm.get("model")]), ("fallback_models", llm.get("fallback_models") or [])):
        for m in models:
            try:
                table.for_model(str(m))
            except KeyError:
                known = ", ".join(short(k, 40) for k in sorted(table.models)) or "none"
                raise ConfigError(f"{where}.{key}: model {short(repr(str(m)))} has no price in {where}.prices "
                                  f"(known: {known}); add it or a 'default' entry") from None


def _check_personas(env_name: str, d: dict) -> None:
    """The persona file loads, is large enough for personas_fill=error, and its env fields are valid.

    The environments check the same things in setup(); checked here, a bad file
    fails before the run directory exists instead of mid-run.
    """
    agent = d.get("agent") or {}
    personas = agent.get("personas")
    if not personas:
        return
    from agents.persona import PersonaFileError, load_persona_file

    try:
        listed = load_persona_file(str(personas))
    except PersonaFileError as e:
        raise ConfigError(short(e, 400)) from None
    except OSError as e:
        raise ConfigError(f"agent.personas={short(repr(personas))}: cannot read: {e.strerror or e}") from None
    from environments import registry

    cls = registry.env_class(env_name)
    need = cls.population(d.get("env") or {})
    if agent.get("personas_fill") == "error" and need is not None and len(listed) < need:
        raise ConfigError(f"agent.personas={short(repr(personas))} lists {len(listed)} personas but the run needs "
                          f"{need} (set agent.personas_fill=generate to generate the rest)")
    for i, p in enumerate(listed):
        problem = cls.check_persona(p)
        if problem:  # the environment's own wording, with the file and entry in front
            raise ConfigError(f"agent.personas={short(repr(personas))}: personas[{i}]: {short(problem, 200)}")


def _get(d: Any, loc: tuple) -> Any:
    for k in loc:
        try:
            d = d[k]
        except (KeyError, IndexError, TypeError):
            return None
    return d


def _price_per_mtok(v: Any) -> Any:
    """A price in USD per 1M tokens: a finite number >= 0 the integer nano-USD pricing represents exactly."""
    from decimal import Decimal, InvalidOperation

    try:
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise InvalidOperation
        d = Decimal(str(v).strip())
    except InvalidOperation:
        raise ValueError("must be a number of USD per 1M tokens, e.g. \"0.150\"") from None
    if not d.is_finite() or d < 0:
        raise ValueError("must be a finite number >= 0 (USD per 1M tokens)")
    if d * 1000 != (d * 1000).to_integral_value():
        raise ValueError("at most 3 decimals: prices are whole nano-USD per token (0.001 USD per 1M tokens)")
    return v


@functools.cache  # building a pydantic model costs milliseconds; sweeps validate thousands
def _llm_model():
    from typing import Annotated, Literal, Optional

    from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

    Price = Annotated[Any, BeforeValidator(_price_per_mtok)]
    cfg = ConfigDict(extra="forbid", allow_inf_nan=False)

    class Cache(BaseModel):
        model_config = cfg
        mode: Literal["off", "record", "replay", "reuse"] = "record"
        shared_dir: Optional[str] = None

    class RL(BaseModel):
        model_config = cfg
        rpm: Optional[float] = Field(None, gt=0)
        tpm: Optional[float] = Field(None, gt=0)

    class OracleTier(BaseModel):
        model_config = cfg
        accuracy: float = Field(ge=0, le=1)  # P(right answer) at difficulty 0
        difficulty_slope: float = Field(0.0, ge=0)  # accuracy lost per unit of a decision's difficulty
        input_tokens: Optional[int] = Field(None, ge=0)  # null: a quarter of the prompt's bytes
        output_median: float = Field(8.0, gt=0)  # output ("thinking") tokens: log-normal median ...
        output_sigma: float = Field(0.0, ge=0, le=5)  # ... and log-scale spread

    class Oracle(BaseModel):
        model_config = cfg
        tiers: dict[str, OracleTier] = {}

    class ModelPrices(BaseModel):
        model_config = cfg
        input_per_mtok: Price
        cached_input_per_mtok: Optional[Price] = None
        output_per_mtok: Price
        shadow: bool = False

    class LLM(BaseModel):
        # every key a provider or the client reads is declared (conf/llm/*.yaml,
        # sim/inference/client.py); anything else is a typo and is refused
        model_config = cfg
        provider: Literal["local", "openai", "langchain", "scripted", "oracle"]
        model: str = Field(min_length=1)
        model_path: Optional[str] = None  # local: a .gguf file
        n_ctx: Optional[int] = Field(None, ge=1)  # local
        n_threads: Optional[int] = Field(None, ge=1)  # local
        base_url: Optional[str] = None  # openai
        api_key_env: Optional[str] = None  # openai: name of the variable holding the key
        class_path: Optional[str] = None  # langchain: "package.module:Class"
        class_kwargs: dict[str, Any] = {}  # langchain
        temperature: float = Field(0.7, ge=0, le=2)
        top_p: float = Field(0.9, gt=0, le=1)
        max_tokens: int = Field(96, ge=0, le=32768)
        timeout_s: float = Field(30, gt=0)
        max_retries: int = Field(2, ge=0, le=10)
        retry_backoff_s: float = Field(0.5, ge=0, le=600)
        concurrency: int = Field(8, ge=1)
        cap_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
        schema_mode: Literal["json_schema", "json_object", "none"] = "json_schema"
        cache: Cache = Cache()
        rate_limit: RL = RL()
        price_version: str = "none"
        prices: dict[str, ModelPrices]
        fallback_models: list[str] = []
        oracle: Optional[Oracle] = None  # oracle: simulated tiers (sim/inference/providers/oracle.py)

        @model_validator(mode="after")
        def _oracle_tier(self) -> "LLM":
            if self.provider == "oracle":
                tiers = sorted((self.oracle.tiers if self.oracle else {}))
                if self.model not in tiers:
                    raise ValueError(f"model {self.model!r} is not an oracle tier; llm.oracle.tiers has: "
                                     f"{', '.join(tiers) or 'none'}")
            return self

    return LLM


def _deliberation_model():
    """Deliberation policies (sim/deliberation.py holds the model and its defaults)."""
    from sim.deliberation import DeliberationConfig

    return DeliberationConfig


@functools.cache
def _engine_model():
    from pydantic import BaseModel, ConfigDict, Field

    class Engine(BaseModel):
        model_config = ConfigDict(extra="forbid")
        # 0 would make every phase wait forever on a semaphore no call can take
        concurrency: int = Field(8, ge=1, le=100_000)
        # scripted agents' decisions for a phase made as arrays in one call (sim/batch.py);
        # false: one at a time, the reference path (same events, ledger and outcome)
        batch_scripted: bool = True

    return Engine


@functools.cache
def _budget_model():
    from typing import Annotated, Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    Usd = Annotated[float, Field(ge=0)]

    class B(BaseModel):
        # inf/nan are not budgets: a limit is a finite amount of USD
        model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
        run_usd: Optional[Usd] = 5.0  # USD (shadow USD for local models); null = unlimited
        sweep_usd: Optional[Usd] = None  # total over a Hydra multirun (sim/sweep.py)
        per_agent_usd: Optional[Usd] = None
        per_team_usd: dict[str, Usd] = {}
        on_exhaust: Literal["deny", "shrink", "downgrade", "halt"] = "deny"
        min_output_tokens: int = Field(16, ge=1)
        show_remaining: bool = True

    return B


@functools.cache
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
        # agents/profiles.py: auto = small for the embedded model (llm.provider=local), full otherwise
        prompt_profile: Literal["auto", "small", "full"] = "auto"

    return Agent


@functools.cache
def _run_model():
    from typing import Literal, Optional

    from pydantic import BaseModel, ConfigDict, Field

    class R(BaseModel):
        model_config = ConfigDict(extra="forbid")
        dir: Optional[str] = "auto"
        root: str = "runs"
        checkpoint: bool = True
        overwrite: bool = False  # write into a non-empty folder that is not this run (its old results removed)
        progress: Literal["auto", "on", "off"] | bool = "auto"
        max_ticks: int = Field(10000, ge=1)
        # a run whose share of model decisions answered by the scripted fallback exceeds this is degraded
        fallback_threshold: float = Field(0.5, ge=0, le=1)
        # degraded: stop at once (status degraded) or finish the run and label it degraded
        on_degraded: Literal["stop", "continue"] = "continue"

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


# ---------------------------------------------------------------------------
# checks that need the machine, run before the run directory is created

MAX_DEPTH = 256  # levels of folders: deeper than any real layout; Path.mkdir recurses once per level


def preflight(cfg: DictConfig | dict, path: Path | None = None, *, estimate_only: bool = False) -> dict:
    """Everything that can be known before a run starts, so a bad input writes nothing.

    The config itself (``validate``), the key variables the providers will read,
    and the run directory's path: creatable, not a file, not below a file, within
    the file system's name and path limits. Returns the config with every default filled in.
    """
    d = to_dict(validate(to_dict(cfg)))
    if not estimate_only:
        for where, llm in endpoints(d):
            var = llm.get("api_key_env")
            if llm.get("provider") == "openai" and var and not os.environ.get(str(var)):
                raise ConfigError(f"{where}.api_key_env={short(var)}: environment variable {short(var)} is not set "
                                  f"(needed for {short(llm.get('base_url'))}; {where}.api_key_env=null for a "
                                  "local server without a key)")
    if path is not None:
        check_run_path(d, path)
    return d


def check_run_path(d: dict, path: Path) -> None:
    """The run directory's path (and, for run.dir=auto, run.root) can be created."""
    run = d["run"]
    if run.get("dir") == "auto":
        check_path(Path(str(run.get("root", "runs"))), "run.root")
        check_path(Path(path), "run.dir", shown=str(path))
    else:
        check_path(Path(path), "run.dir")


def check_path(path: Path, key: str, shown: str | None = None) -> None:
    """A folder that is or can be created at ``path``; ConfigError naming ``key`` otherwise."""
    label = f"{key}={short(shown if shown is not None else str(path))}"
    raw = str(path)
    if "\x00" in raw:
        raise ConfigError(f"{label}: a path cannot contain a NUL byte")
    full = os.path.abspath(raw)
    name_max, path_max = _fs_limit("PC_NAME_MAX", 255), _fs_limit("PC_PATH_MAX", 4096)
    if len(os.fsencode(full)) >= path_max:
        raise ConfigError(f"{label}: the path is {len(os.fsencode(full))} bytes; the limit is {path_max - 1}")
    parts = Path(full).parts
    if len(parts) > MAX_DEPTH:
        raise ConfigError(f"{label}: {len(parts)} folders deep; at most {MAX_DEPTH}")
    for part in parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(f"{label}: the name {short(part, 40)!r} is {len(os.fsencode(part))} bytes; "
                              f"the limit is {name_max}")
    at = Path(full)
    try:
        while not os.path.lexists(at):
            at = at.parent
        if at == Path(full):
            if not at.is_dir():
                raise ConfigError(f"{label}: exists and is not a folder")
        elif not at.is_dir():
            raise ConfigError(f"{label}: {short(str(at))} is a file, so no folder can be created below it")
        if not os.access(at, os.W_OK | os.X_OK):
            raise ConfigError(f"{label}: {short(str(at))} is not writable")
    except OSError as e:
        raise ConfigError(f"{label}: {e.strerror or e}") from None


def _fs_limit(name: str, default: int) -> int:
    try:
        return int(os.pathconf("/", name))
    except (OSError, ValueError):
        return default
