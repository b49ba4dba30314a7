"""Every dashboard page renders in a real headless Chromium against a real `streamlit run` server."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
APP = Path(__file__).resolve().parents[2] / "dashboards" / "app.py"
PAGES = ("runs", "spend", "environment", "trust", "live")

pytestmark = [pytest.mark.slow, pytest.mark.chromium]


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

    root = tmp_path_factory.mktemp("browser_runs")
    sim.run(["llm=scripted", "env.n_players=6", "env.n_traitors=1", "run.progress=off",
             f"run.dir={root / 'traitors' / 's1'}", "seed=1"])
    port = _free_port()
    env = {**os.environ, "AGORA_RUNS": str(root)}
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--browser.gatherUsageStats", "false"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/_stcore/health", proc)
        # One unasserted load of each page first: a page's first run pays for importing
        # polars, altair, networkx and the engine in real time, which Chromium's virtual
        # clock does not wait for, so a cold page would be captured before it draws.
        warm = tmp_path_factory.mktemp("warmup")
        for page in ("", *PAGES):
            _screenshot(f"http://127.0.0.1:{port}/{page}", warm / "page.png", warm / "profile")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _screenshot(url: str, png: Path, profile: Path) -> None:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
           "--virtual-time-budget=8000", f"--screenshot={png}", "--window-size=1280,900", url]
    subprocess.run(cmd, check=False, timeout=120, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("page", PAGES)
def test_page_screenshot(server, page, tmp_path):
    png = tmp_path / "page.png"
    # Chromium's virtual clock can run out before the websocket delivers the page on a
    # busy machine (a grey skeleton, ~7 KB); a bounded retry separates that from a page
    # that never draws, which still fails after the last attempt.
    for attempt in range(3):
        _screenshot(f"{server}/{page}", png, tmp_path / f"profile{attempt}")
        if png.exists() and png.stat().st_size > 10_000:
            break
    assert png.exists(), f"no screenshot for /{page}"
    keep = os.environ.get("AGORA_SCREENSHOTS")
    if keep:  # look at them by hand: AGORA_SCREENSHOTS=/tmp/shots pytest -m slow tests/dashboards
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(keep) / f"{page}.png")

    assert png.stat().st_size > 10_000, f"/{page} screenshot is nearly empty ({png.stat().st_size} bytes)"
