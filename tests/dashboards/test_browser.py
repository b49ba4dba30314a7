"""Every dashboard page renders in a real headless Chromium against a real `streamlit run` server,
over a real run of every registered environment.

A page counts as rendered when Chromium's DOM holds the page's title and its first chart (or, for the
Runs page, its table): a grey skeleton has neither. Screenshots of every page are kept as test
artifacts in ``test-artifacts/browser/`` (ignored by git; ``AGORA_ARTIFACTS`` picks another folder).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboards" / "app.py"
CHART = 'data-testid="stVegaLiteChart"'
TABLE = 'data-testid="stDataFrame"'
SELECT = 'data-testid="stSelectbox"'

pytestmark = [pytest.mark.slow, pytest.mark.chromium]


def _pages() -> list[tuple[str, str, str]]:
    """(path, title, first element): every page, the Environment page once per registered environment."""
    from environments.registry import ENVIRONMENTS

    pages = [("", "Runs", TABLE), ("runs", "Runs", TABLE), ("spend", "Compute spend", CHART),
             ("trust", "Trust (Traitors)", CHART), ("live", "Live classroom", SELECT)]
    pages += [(f"environment?env={e}", "Environment metrics", CHART) for e in ENVIRONMENTS]
    if (REPO / "dashboards" / "pages" / "frontier.py").exists():  # a chart, or its note that no frontier exists yet
        pages.append(("frontier", "Inference production frontier", f"{CHART}|No frontier.parquet"))
    return pages


def _artifacts() -> Path:
    d = Path(os.environ.get("AGORA_ARTIFACTS") or REPO / "test-artifacts") / "browser"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Poll the health endpoint; the server answers 'ok' once the app can be served."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)  # polling a server that is starting; there is no event to wait on
    raise TimeoutError(f"{url} not healthy after {timeout:.0f}s")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed (CI installs it via apt-get install chromium)")
    import sim
    from environments.registry import ENVIRONMENTS, env_class

    root = tmp_path_factory.mktemp("browser_runs")
    for env in ENVIRONMENTS:
        sim.run([f"env={env}", *env_class(env).quick, "llm=scripted", "run.progress=off",
                 f"run.dir={root / env / 's1'}", "seed=1"])
    port = _free_port()
    env = {**os.environ, "AGORA_RUNS": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _chromium(url: str, profile: Path, budget_ms: int, *what: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           f"--virtual-time-budget={budget_ms}", "--window-size=1280,1600", *what, url]
    return subprocess.run(cmd, check=False, timeout=120, capture_output=True, text=True)


def rendered(dom: str, title: str, first: str) -> bool:
    """The page's title and its first chart (or table) are in the DOM: the page drew, not a skeleton.

    ``first`` may list alternatives separated by ``|``."""
    return f">{title}<" in dom and any(f in dom for f in first.split("|"))


def test_rendered_needs_title_and_chart():
    skeleton = '<div class="stApp"><div data-testid="stSkeleton"></div></div>'
    page = f'<h1 id="runs">Compute spend</h1><div {CHART}></div>'
    assert not rendered(skeleton, "Compute spend", CHART)
    assert not rendered('<h1 id="runs">Compute spend</h1>', "Compute spend", CHART)
    assert rendered(page, "Compute spend", CHART)


@pytest.mark.parametrize("path,title,first", _pages())
def test_page_renders_its_title_and_first_chart(server, path, title, first, tmp_path):
    url = f"{server}/{path}"
    dom = ""
    # A page's first run pays for its imports in real time, which Chromium's virtual clock does not
    # wait for: each attempt is a new load of a warmer server with more virtual time, and the check is
    # the DOM itself (title and first chart), never a file size.
    for attempt, budget in enumerate((8000, 12000, 16000, 20000, 30000, 30000)):
        dom = _chromium(url, tmp_path / f"profile{attempt}", budget, "--dump-dom").stdout
        if rendered(dom, title, first):
            break
    name = (path or "root").replace("?", "_").replace("=", "-")
    _chromium(url, tmp_path / "shot", 16000, f"--screenshot={_artifacts() / f'{name}.png'}")
    (_artifacts() / f"{name}.html").write_text(dom)
    assert f">{title}<" in dom, f"/{path}: title {title!r} never rendered (DOM kept in {_artifacts()})"
    assert rendered(dom, title, first), f"/{path}: {first!r} never rendered (DOM kept in {_artifacts()})"
    assert "Page not found" not in dom
