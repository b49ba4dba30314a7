"""Every command line the README and docs/*.md show, run as written (issue 15: a newcomer can run them all).

One scripted test, not timed. It reads every fenced code line that starts with ``agora `` or ``make ``
and runs it in a scratch folder, asserting exit code 0 (or 2 where the docs show the line answered by
an ``error:`` line on purpose). What cannot run here is changed the least that
still checks the line:

- ``make run``, ``make test`` and ``agora dashboard`` are skipped: they are the long suite, and a server.
- A run that would call a model (``llm=local``, ``llm=openai``, or no ``llm=``: the default is the
  embedded model) becomes ``agora estimate --seeds 1`` with the same overrides: the line parses, its
  config validates and its environment plays, without a model or a server. A sweep's ``-m`` and Hydra
  keys are dropped for that check.
- A path the docs invent (``multirun/2026-11-23/10-00-00``, ``SWEEP``) becomes the newest run or sweep
  folder the earlier commands made; ``/tmp/`` paths go into the scratch folder; ``frontier.seeds`` is
  cut to 2 and an optional ``[--flag value]`` is left out.
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMANDS = ("run", "resume", "replay", "report", "estimate", "dashboard", "frontier")
SKIP = ("make run", "make test", "agora dashboard")
MODEL_PROVIDERS = ("local", "openai", "langchain")


def documented_commands(files=DOCS) -> list[tuple[str, str]]:
    """(file name, command) for every fenced line starting with ``agora <command>`` or ``make ``."""
    return [(name, cmd) for name, cmd, _ in documented_commands_with_codes(files)]


def documented_commands_with_codes(files=DOCS) -> list[tuple[str, str, int]]:
    """(file name, command, expected exit code): 2 when the docs show it answered by an ``error:`` line."""
    out = []
    for f in files:
        fenced, held = False, ""
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip().startswith("```"):
                fenced, held = not fenced, ""
                continue
            if not fenced:
                continue
            s = (held + " " + line.strip()).strip() if held else line.strip()
            if s.endswith("\\"):
                held = s[:-1].strip()
                continue
            held = ""
            s = re.sub(r"^\$\s+", "", s)
            words = s.split()
            if s.startswith("make ") or (len(words) > 1 and words[0] == "agora" and words[1] in COMMANDS):
                shown = next((x.strip() for x in lines[i + 1:] if x.strip()), "")
                out.append((f.name, strip_comment(s), 2 if shown.startswith("error:") else 0))
    return out


def strip_comment(s: str) -> str:
    """The command without its trailing ``# comment`` (a # inside quotes stays)."""
    lex = shlex.shlex(s, posix=True, punctuation_chars=False)
    lex.whitespace_split, lex.commenters = True, "#"
    try:
        words = list(lex)
    except ValueError:
        return s
    return shlex.join(words)


def _uses_a_model(args: list[str]) -> bool:
    llm = next((a.split("=", 1)[1] for a in args if a.startswith("llm=")), "local")  # conf/config.yaml: local
    roles = any(a.startswith(("agent.llm_by_role", "+agent.llm_by_role")) and "scripted" not in a for a in args)
    return llm in MODEL_PROVIDERS or roles


def _newest(cwd: Path, under: str) -> Path | None:
    """The newest folder under ``cwd/under`` holding a summary.json (a run) or runs (a sweep)."""
    base = cwd / under
    if not base.exists():
        return None
    found = sorted({p.parent for p in base.rglob("summary.json")}, key=lambda p: p.stat().st_mtime)
    if not found:
        return None
    if under == "multirun":  # a sweep: the folder above its numbered runs
        return found[-1].parent
    return found[-1]


def _without_optional(args: list[str]) -> list[str]:
    """Leave out an optional flag shown in brackets (``[--drop large]``)."""
    out, inside = [], False
    for a in args:
        if a.startswith("[--"):
            inside = True
        if not inside:
            out.append(a)
        if inside and a.endswith("]"):
            inside = False
    return out


def adapt(cmd: str, cwd: Path) -> list[str] | None:
    """The argv to run for a documented command here (None: skipped)."""
    if cmd.startswith(SKIP):
        return None
    args = _without_optional(shlex.split(cmd)[1:])
    args = [a.replace("/tmp/", f"{cwd}/tmp/") for a in args]
    args = [re.sub(r"^frontier\.seeds=\d+$", "frontier.seeds=2", a) for a in args]
    sub, rest = args[0], args[1:]
    if sub == "report":
        path = rest[0]
        if not (cwd / path).exists():
            found = _newest(cwd, "multirun") if path.startswith("multirun") or path.isupper() else _newest(cwd, "runs")
            assert found is not None, f"{cmd}: no run or sweep folder made earlier to stand in for {path}"
            rest = [str(found), *rest[1:]]
        return ["report", *rest]
    if sub == "run" and _uses_a_model(rest):
        kept = [a for a in rest if a not in ("-m", "--multirun") and not a.startswith(("hydra", "'seed=range", "seed=range"))]
        return ["estimate", "--seeds", "1", *kept]
    if sub == "estimate":
        return ["estimate", "--seeds", "1", *rest]
    return args


def test_documented_commands_are_found():
    cmds = [c for _, c in documented_commands()]
    assert any(c.startswith("agora run") for c in cmds) and any(c.startswith("agora report") for c in cmds)
    assert "agora CLI / sim.run / sweeps / resume / replay / live page" not in cmds  # prose, not a command
    assert strip_comment("agora run llm=scripted   # rule-based, seconds") == "agora run llm=scripted"
    assert strip_comment("agora run -m 'seed=range(20)' # sweep") == "agora run -m 'seed=range(20)'"
    codes = {c: code for _, c, code in documented_commands_with_codes()}
    assert codes["agora run env.speaker_order=loud"] == 2  # the README shows its error line


@pytest.mark.slow
def test_every_documented_command_runs(tmp_path):
    failures = []
    ran = 0
    for name, cmd, code in documented_commands_with_codes():
        argv = adapt(cmd, tmp_path)
        if argv is None:
            continue
        p = subprocess.run([sys.executable, "-m", "sim.cli", *argv], cwd=tmp_path, capture_output=True, text=True,
                           timeout=1800)
        ran += 1
        if p.returncode != code:  # 0, or the 2 of an error the docs show on purpose
            failures.append(f"{name}: {cmd}\n  ran: agora {shlex.join(argv)}\n  exit {p.returncode}: "
                            f"{(p.stderr or p.stdout).strip()[-400:]}")
    assert ran >= 20
    assert not failures, "\n".join(failures)
