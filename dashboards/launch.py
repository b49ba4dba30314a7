"""How `agora dashboard` starts Streamlit: the command line, built without starting anything.

The Live page can start runs and write files under the runs root, so the server
listens on loopback unless ``--address`` says otherwise, and says so on stderr
when it does not (Streamlit alone would listen on every interface).
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
DEFAULT_ADDRESS = "127.0.0.1"

DESCRIPTION = """Streamlit dashboards over a folder of run directories.

The server listens on 127.0.0.1 (this machine only) by default. Its Live page can
start runs and write files under the runs root, so expose it to a network only on
purpose: --address 0.0.0.0 (all interfaces) or the address of one interface. Run
directories are read as data only; see docs/security.md. Unknown options are passed
on to `streamlit run` (e.g. --theme.base dark)."""


class LaunchError(ValueError):
    """A bad `agora dashboard` argument; the CLI prints it as one `error: ...` line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print usage and the message on two lines
        raise LaunchError(f"agora dashboard: {message}")


@dataclass(frozen=True)
class Launch:
    argv: list[str]     # the streamlit command line
    env: dict[str, str]  # the environment it runs with (AGORA_RUNS set)
    address: str

    @property
    def warning(self) -> str | None:
        """The line to print on stderr when the server is reachable from other machines."""
        if is_loopback(self.address):
            return None
        where = "every network interface" if self.address in ("", "0.0.0.0", "::") else self.address
        return (f"the dashboard listens on {where}, not just this machine: anyone who can reach it can start runs "
                f"and write files under the runs root (use --address 127.0.0.1 to keep it local)")


def parser(default_runs: str = "runs") -> argparse.ArgumentParser:
    p = _Parser(prog="agora dashboard", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default=default_runs,
                   help="folder of run directories to show (default: $AGORA_RUNS or ./runs)")
    p.add_argument("--port", type=_port, default=8501, help="TCP port to listen on (default: 8501)")
    # --server.address is Streamlit's own spelling; taking it here means it cannot bypass the default
    p.add_argument("--address", "--server.address", dest="address", default=DEFAULT_ADDRESS,
                   help="address to listen on (default: 127.0.0.1, this machine only); "
                        "0.0.0.0 exposes the dashboard, and its Live page, to the network")
    return p


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 65535, not {text[:40]!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to 65535, not {port}")
    return port


def is_loopback(address: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def streamlit_command(args: list[str], environ: dict[str, str] | None = None) -> Launch:
    """Parse `agora dashboard` arguments into the streamlit command line; raises LaunchError on a bad one."""
    environ = dict(os.environ if environ is None else environ)
    a, extra = parser(environ.get("AGORA_RUNS") or "runs").parse_known_args(args)
    runs = Path(a.runs).expanduser()
    if runs.exists() and not runs.is_dir():
        raise LaunchError(f"--runs {a.runs}: not a folder")
    env = {**environ, "AGORA_RUNS": str(runs.resolve())}
    argv = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
            "--server.port", str(a.port), "--server.address", a.address,
            "--browser.gatherUsageStats", "false", *extra]
    return Launch(argv, env, a.address)
