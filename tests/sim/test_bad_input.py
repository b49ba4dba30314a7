"""Every bad input is one `error:` line on stderr, exit 2, no traceback, and nothing written.

Each case runs `agora` in-process (``sim.cli.main``) against a run root or run
directory under ``tmp_path`` and checks that nothing was created there; a few
run the real console entry in a subprocess to see the whole stderr.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["llm=scripted", "env=traitors", "env.n_players=6", "env.n_traitors=1"]


def one_error(capsys, *args: str) -> str:
    """Run `agora ARGS`; assert exit 2 and exactly one `error:` line; return that line."""
    code = main(list(args))
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert code == 2, out.err
    assert len(lines) == 1, out.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in out.err
    return lines[0]


def run_error(capsys, tmp_path: Path, *overrides: str) -> str:
    """`agora run` with the run root under tmp_path; asserts the error line and that no folder was made."""
    root = tmp_path / "runs"
    line = one_error(capsys, "run", *SMALL, f"run.root={root}", *overrides)
    assert not root.exists(), f"{root} was created: {sorted(root.rglob('*'))}"
    return line


# ----------------------------------------------------------------- budgets
@pytest.mark.parametrize("override,key", [
    ("budget.run_usd=inf", "budget.run_usd"),
    ("budget.run_usd=nan", "budget.run_usd"),
    ("budget.run_usd=-1", "budget.run_usd"),
    ("budget.per_agent_usd=inf", "budget.per_agent_usd"),
    ("+budget.per_team_usd.traitors=-1", "budget.per_team_usd.traitors"),
    ("+budget.per_team_usd.traitors=nan", "budget.per_team_usd.traitors"),
    ("+budget.per_team_usd.traitors=inf", "budget.per_team_usd.traitors"),
])
def test_bad_budget_is_refused(capsys, tmp_path, override, key):
    assert key in run_error(capsys, tmp_path, override)


def test_good_team_budget_is_accepted():
    from sim.config import compose

    assert compose(["+budget.per_team_usd.traitors=0.5"]).budget.per_team_usd["traitors"] == 0.5


# ----------------------------------------------------------------- prices
@pytest.mark.parametrize("value,needle", [
    ("-1", ">= 0"), ("0.0001", "at most 3 decimals"), ("cheap", "number"), ("inf", "finite"), ("nan", "finite"),
])
def test_bad_price_is_refused(capsys, tmp_path, value, needle):
    line = run_error(capsys, tmp_path, f"llm.prices.scripted.output_per_mtok={value}")
    assert "llm.prices.scripted.output_per_mtok" in line and needle in line


def test_unknown_key_inside_a_price_is_refused(capsys, tmp_path):
    line = run_error(capsys, tmp_path, "+llm.prices.scripted.outptu_per_mtok=1")
    assert "llm.prices.scripted.outptu_per_mtok" in line and "output_per_mtok" in line


def test_model_without_price_names_it_truncated(capsys, tmp_path):
    name = "m" * 5000
    line = run_error(capsys, tmp_path, "llm=local", f"llm.model={name}")
    assert "has no price" in line and "m" * 40 in line
    assert len(line) < 400  # the 5,000-character name is cut, not printed whole
    assert "…" in line


def test_fallback_model_without_price_is_refused(capsys, tmp_path):
    line = run_error(capsys, tmp_path, "llm=local", "llm.fallback_models=[nosuch]")
    assert "llm.fallback_models" in line and "nosuch" in line


# ----------------------------------------------------------------- keys and providers
def test_missing_api_key_variable(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("AGORA_TEST_UNSET_KEY", raising=False)
    line = run_error(capsys, tmp_path, "llm=openai", "llm.api_key_env=AGORA_TEST_UNSET_KEY",
                     "llm.base_url=http://127.0.0.1:9/v1")
    assert "AGORA_TEST_UNSET_KEY" in line and "not set" in line


def test_missing_api_key_of_a_role(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("AGORA_TEST_UNSET_KEY", raising=False)
    line = run_error(capsys, tmp_path, "+agent.llm_by_role.traitor={provider: openai, model: scripted, "
                     "base_url: 'http://127.0.0.1:9/v1', api_key_env: AGORA_TEST_UNSET_KEY}")
    assert "agent.llm_by_role.traitor.api_key_env" in line


def test_unknown_provider_in_llm_by_role(capsys, tmp_path):
    line = run_error(capsys, tmp_path, "+agent.llm_by_role.traitor={provider: gpt, model: x}")
    assert "agent.llm_by_role.traitor.provider='gpt'" in line


def test_unknown_key_in_llm_by_role(capsys, tmp_path):
    line = run_error(capsys, tmp_path, "+agent.llm_by_role.traitor={provider: scripted, modle: x}")
    assert "unknown key 'agent.llm_by_role.traitor.modle'" in line


def test_role_model_without_price(capsys, tmp_path):
    line = run_error(capsys, tmp_path, "+agent.llm_by_role.traitor={provider: local, model: nosuch}")
    assert "agent.llm_by_role.traitor.model" in line and "nosuch" in line


# ----------------------------------------------------------------- engine and unknown keys
@pytest.mark.parametrize("override,needle", [
    ("engine.concurrency=abc", "engine.concurrency='abc'"),
    ("engine.concurrency=0", "engine.concurrency=0"),
    ("engine.concurrency=-2", "engine.concurrency=-2"),
])
def test_bad_engine_concurrency(capsys, tmp_path, override, needle):
    assert needle in run_error(capsys, tmp_path, override)


@pytest.mark.parametrize("override,key", [
    ("+engine.concurency=4", "engine.concurency"),
    ("+llm.foo=1", "llm.foo"),
    ("+llm.cache.mdoe=off", "llm.cache.mdoe"),
    ("+foo=1", "foo"),
    ("+env.bogus=1", "env.bogus"),
    ("+budget.bogus=1", "budget.bogus"),
])
def test_added_unknown_keys_are_refused_everywhere(capsys, tmp_path, override, key):
    assert f"unknown key '{key}'" in run_error(capsys, tmp_path, override)


def test_nested_unknown_key_lists_the_right_keys(capsys, tmp_path):
    line = run_error(capsys, tmp_path, "+llm.cache.mdoe=off")
    assert "allowed keys under 'llm.cache': mode, shared_dir" in line


def test_declared_llm_keys_are_accepted():
    from sim.config import compose

    for llm in ("openai", "local", "langchain", "scripted"):
        compose([f"llm={llm}", "+llm.retry_backoff_s=0.1"])


# ----------------------------------------------------------------- personas
def persona_file(tmp_path: Path, n: int, env: dict | None = None) -> Path:
    people = [{"name": f"P{i}", "age": 30 + i, "profession": "baker"} for i in range(n)]
    if env:
        people[-1]["env"] = env
    f = tmp_path / "people.yaml"
    f.write_text(json.dumps({"personas": people}))
    return f


def test_personas_fill_error_with_too_few(capsys, tmp_path):
    f = persona_file(tmp_path, 2)
    line = run_error(capsys, tmp_path, f"agent.personas={f}", "agent.personas_fill=error")
    assert "lists 2 personas but the run needs 6" in line


def test_persona_skill_is_checked_before_the_run(capsys, tmp_path):
    f = persona_file(tmp_path, 3, {"skill": -3})
    root = tmp_path / "runs"
    line = one_error(capsys, "run", "llm=scripted", "env=taxation", "env.n_workers=4", f"run.root={root}",
                     f"agent.personas={f}")
    assert "personas[2]: persona 'P2': env.skill=-3: must be a positive number" in line
    assert not root.exists()


def test_persona_strategy_is_checked_before_the_run(capsys, tmp_path):
    f = persona_file(tmp_path, 3, {"strategy": "yolo"})
    root = tmp_path / "runs"
    line = one_error(capsys, "run", "llm=scripted", "env=market", "env.n_traders=4", f"run.root={root}",
                     f"agent.personas={f}")
    assert "persona 'P2': env.strategy='yolo'; allowed: " in line and "momentum" in line
    assert not root.exists()


# ----------------------------------------------------------------- run folders
def test_run_dir_is_a_file(capsys, tmp_path):
    f = tmp_path / "afile"
    f.write_text("mine")
    line = one_error(capsys, "run", *SMALL, f"run.dir={f}")
    assert "run.dir=" in line and "not a folder" in line
    assert f.read_text() == "mine" and sorted(tmp_path.iterdir()) == [f]


def test_run_dir_below_a_file(capsys, tmp_path):
    f = tmp_path / "afile"
    f.write_text("mine")
    line = one_error(capsys, "run", *SMALL, f"run.dir={f}/sub/run")
    assert "is a file" in line
    assert sorted(tmp_path.iterdir()) == [f]


def test_run_dir_name_too_long(capsys, tmp_path):
    line = one_error(capsys, "run", *SMALL, f"run.dir={tmp_path}/{'n' * 300}")
    assert "300 bytes" in line and "255" in line
    assert list(tmp_path.iterdir()) == []


def test_run_dir_thousands_of_levels_deep(capsys, tmp_path):
    deep = "/".join(["d"] * 1800)  # under PATH_MAX, but Path.mkdir would recurse 1,800 times
    line = one_error(capsys, "run", *SMALL, f"run.dir={tmp_path}/{deep}")
    assert "folders deep" in line
    assert list(tmp_path.iterdir()) == []


def test_run_dir_path_too_long(capsys, tmp_path):
    line = one_error(capsys, "run", *SMALL, f"run.dir={tmp_path}/{'/'.join(['dd'] * 1500)}")
    assert "bytes; the limit is" in line
    assert list(tmp_path.iterdir()) == []


def test_run_root_is_a_file(capsys, tmp_path):
    f = tmp_path / "root"
    f.write_text("mine")
    line = one_error(capsys, "run", *SMALL, f"run.root={f}")
    assert line.startswith(f"error: run.root={f}")
    assert sorted(tmp_path.iterdir()) == [f]


def test_preflight_guards_the_python_api(tmp_path):
    """run_config with a config built by hand is checked too (concurrency=0 used to hang)."""
    from sim.config import ConfigError, compose, to_dict
    from sim.runner import run_config

    cfg = to_dict(compose([*SMALL, f"run.dir={tmp_path / 'r'}"]))
    cfg["engine"]["concurrency"] = 0
    with pytest.raises(ConfigError, match="engine.concurrency"):
        run_config(cfg, progress=False)
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------- multirun
@pytest.mark.parametrize("overrides,needle", [
    (["seed=0,1", "env.n_players=abc"], "env.n_players='abc'"),
    (["env.n_players=6,abc"], "env.n_players='abc'"),
    (["seed=0,1", "env.bogus=1"], "unknown key 'env.bogus'"),
    (["seed=0,1", "+engine.concurency=2"], "unknown key 'engine.concurency'"),
    (["env=traitors,market", "budget.run_usd=inf"], "budget.run_usd"),
    (["seed=range(3)", "env.n_traitors=1,3"], "env.n_traitors=3"),  # only the combination is bad
    (["seed=0,1", "env=nosuch"], "env=nosuch is not a known option"),
    (["seed=range(2"], "cannot parse"),
])
def test_multirun_bad_input_is_one_line(capsys, tmp_path, overrides, needle):
    sweep = tmp_path / "sweep"
    line = one_error(capsys, "run", "-m", "llm=scripted", "env.n_players=6", "env.n_traitors=1", *overrides,
                     f"hydra.sweep.dir={sweep}")
    assert needle in line
    assert not sweep.exists()


def test_check_sweep_counts_every_point():
    from sim.sweep import check_sweep

    assert check_sweep(["llm=scripted", "env=traitors,market", "seed=range(3)", "hydra/launcher=basic"]) == 6


# ----------------------------------------------------------------- help
@pytest.mark.parametrize("cmd", ["run", "estimate"])
def test_help_prints_usage(capsys, cmd):
    assert main([cmd, "--help"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"usage: agora {cmd}") and out.err == ""


# ----------------------------------------------------------------- replay miss
def test_replay_with_a_missing_reply_is_one_line(capsys, tmp_path):
    rec = tmp_path / "rec"
    assert main(["run", "llm=langchain", "env=traitors", "env.n_players=5", "env.n_traitors=1",
                 f"run.dir={rec}"]) == 0
    capsys.readouterr()
    cache = rec / "llm_cache.jsonl"
    lines = cache.read_text().splitlines()
    assert len(lines) > 3
    cache.write_text("\n".join(lines[:2]) + "\n")  # the third recorded reply is gone
    line = one_error(capsys, "replay", str(rec), "--out", str(tmp_path / "out"))
    assert "no recorded reply for call" in line


# ----------------------------------------------------------------- end to end
@pytest.mark.parametrize("args", [
    ["run", *SMALL, "budget.run_usd=inf"],
    ["run", *SMALL, "engine.concurrency=abc"],
    ["run", "-m", *SMALL, "seed=0,1", "env.n_players=abc"],
])
def test_console_stderr_is_one_line(tmp_path, args):
    root = tmp_path / "runs"
    p = subprocess.run([sys.executable, "-m", "sim.cli", *args, f"run.root={root}",
                        f"hydra.sweep.dir={tmp_path / 'sweep'}" if "-m" in args else "seed=0"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and p.stderr.startswith("error: "), p.stderr
    assert list(tmp_path.iterdir()) == []
