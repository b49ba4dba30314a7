"""What both peer drivers share: the labour-choice workload and their command line.

Imported by the drivers from their own folder (run as scripts, so it is on sys.path);
never imports Agora or a peer.
"""
from __future__ import annotations

import argparse

HOURS = list(range(0, 101, 10))
BRACKETS = "0-970: 10%; 970-3,948: 12%; 3,948-8,420: 22%; 8,420-16,072: 24%; 16,072-20,410: 32%; " \
           "20,410-51,030: 35%; 51,030-up: 37%"


def parse_args(sequential_help: str, extra: list[tuple[str, str]] = ()) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, required=True)
    ap.add_argument("--ticks", type=int, required=True)
    ap.add_argument("--sequential", action="store_true", help=sequential_help)
    for flag, help_ in extra:
        ap.add_argument(flag, action="store_true", help=help_)
    return ap.parse_args()
