"""Prompt templates live in agents/prompts/*.txt, each with a version line."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

DIR = Path(__file__).parent / "prompts"


@lru_cache(maxsize=None)
def template(name: str) -> tuple[str, str]:
    """(version, body) of a template file; the first line names the version."""
    text = (DIR / f"{name}.txt").read_text()
    head, _, body = text.partition("\n")
    version = head.split(":", 1)[1].strip() if head.startswith("#") else "unversioned"
    return version, body.rstrip("\n")


def render(name: str, **kw: str) -> str:
    return template(name)[1].format(**kw)
