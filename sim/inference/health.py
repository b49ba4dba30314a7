"""The provider check a run makes before it claims its folder.

One cheap request per OpenAI-compatible endpoint: ``GET {base_url}/models`` with the
run's key and a short timeout. A server that is not there (refused, unreachable, silent)
or that refuses the key would otherwise turn every decision of the run into a scripted
fallback, minutes later, under a status that says ``completed``. Any other answer
(200, or a 404 from a server without a models route) means a server is listening and
took the key; the run's own calls judge the rest.
"""
from __future__ import annotations

import os

import httpx

from .errors import ProviderUnreachable, one_line

CHECK_TIMEOUT_S = 5.0
CHECKED = ("openai",)  # local, scripted, oracle need no server; langchain's class is opaque to us


def check_server(base_url: str, api_key_env: str | None, timeout_s: float = CHECK_TIMEOUT_S) -> str | None:
    """None when a server at ``base_url`` answers and accepts the key; else why not, in one line."""
    url = base_url.rstrip("/") + "/models"
    headers = {}
    key = os.environ.get(api_key_env) if api_key_env else None
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        r = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.ConnectError:
        return "connection refused or host unreachable; is the server running at that address?"
    except httpx.TimeoutException:
        return f"no answer within {timeout_s:g} s"
    except httpx.HTTPError as e:
        return f"cannot reach it ({type(e).__name__})"  # never the message: it may quote headers
    if r.status_code in (401, 403):
        who = f"the key in {api_key_env}" if api_key_env else "a request without a key (llm.api_key_env=null)"
        return f"the server refused {who} (HTTP {r.status_code})"
    return None


def check_endpoints(endpoints: list[tuple[str, dict]], timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise ProviderUnreachable naming the first endpoint whose server fails ``check_server``."""
    seen: set[tuple[str, str | None]] = set()
    for where, llm in endpoints:
        if llm.get("provider") not in CHECKED or not llm.get("base_url"):
            continue
        key = (str(llm["base_url"]), llm.get("api_key_env"))
        if key in seen:
            continue
        seen.add(key)
        t = min(timeout_s, float(llm.get("timeout_s") or timeout_s))
        why = check_server(str(llm["base_url"]), llm.get("api_key_env"), t)
        if why:
            url = str(llm["base_url"])
            raise ProviderUnreachable(one_line(f"{where}.base_url={url[:200]}: provider check failed: {why}; "
                                               "nothing was run and no run folder was made"))
