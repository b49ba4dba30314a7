"""Runs Agora's loopback server in its own process for ``benchmarks/peers.py``.

    python benchmarks/peers_drivers/loopback_serve.py LATENCY_S

Prints ``base_url`` on the first stdout line, then answers one line per stdin
command: ``stats`` -> ``<chat requests so far> <prompt characters so far>``;
``bodies K`` -> one JSON line, the bodies of the chat requests from the K-th on (so
the bare-gather baseline can replay exactly the calls Agora made).
Stops on ``quit`` or end of input. A separate process keeps the server's threads
off the GIL of whichever client (Agora in-process, or a peer's subprocess) is
being measured, so every side meets the same server under the same conditions.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sim.testing.loopback import LoopbackServer, prompt_text  # noqa: E402


def main() -> int:
    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
    with LoopbackServer(latency_s=latency) as srv:
        print(srv.base_url, flush=True)
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "stats":
                reqs = srv.chat_requests
                chars = sum(len(prompt_text(r.body["messages"])) for r in reqs if isinstance(r.body, dict))
                print(len(reqs), chars, flush=True)
            elif cmd.startswith("bodies "):
                print(json.dumps([r.body for r in srv.chat_requests[int(cmd.split()[1]):]]), flush=True)
            elif cmd == "quit":
                break
    return 0


if __name__ == "__main__":
    sys.exit(main())
