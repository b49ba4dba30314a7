"""Cost of the metered client stack, and what concurrency buys against a real socket.

    python benchmarks/client_overhead.py            # 5000 overhead calls, 100 loopback calls
    python benchmarks/client_overhead.py --quick    # 500 overhead calls, 50 loopback calls

(a) budget -> (replay off) -> rate limit -> retry(+meter) -> provider, against an
    in-process zero-latency provider, vs awaiting that provider directly.
(b) 100 calls through the client + OpenAI provider to the loopback server (50 ms):
    sequential vs concurrent, next to a bare ``asyncio.gather`` of AsyncOpenAI calls
    measured in the same run (on 2 cores the client and the stub share the CPU, so the
    bare figure, not the 50 ms latency, is the floor to compare with).
Figures are printed last as ``name: value`` lines.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script

import openai  # noqa: E402

from sim.inference.budget import Budget  # noqa: E402
from sim.inference.client import Client  # noqa: E402
from sim.inference.ledger import Ledger  # noqa: E402
from sim.inference.providers.openai_provider import OpenAIProvider, _http_client  # noqa: E402
from sim.inference.types import CallMeta, ChatRequest, ChatResponse, Usage  # noqa: E402
from sim.testing.loopback import LoopbackServer  # noqa: E402

LATENCY_S = 0.05
PRICES = {"default": {"input_per_mtok": "0.050", "cached_input_per_mtok": "0.025", "output_per_mtok": "0.200",
                      "shadow": True}}


class InstantProvider:
    """Zero-latency in-process model: a fixed reply with token usage, so metering has work to do."""

    name = "instant"
    is_llm = True

    async def complete(self, req: ChatRequest) -> ChatResponse:
        return ChatResponse(text='{"ok": true}', usage=Usage(40, 5, 0, "server"), model=req.model,
                            provider=self.name)


def llm_dict(provider: str, model: str, concurrency: int, base_url: str | None = None) -> dict:
    """The ``llm:`` config section for one endpoint (no rate limits, no key)."""
    return {"provider": provider, "model": model, "base_url": base_url, "api_key_env": None, "max_retries": 0,
            "timeout_s": 30, "concurrency": concurrency, "rate_limit": {"rpm": None, "tpm": None},
            "prices": PRICES, "price_version": "bench", "fallback_models": [], "schema_mode": "none",
            "cap_param": "max_tokens", "temperature": 0.0, "top_p": 1.0, "max_tokens": 16}


def make_client(llm: dict, provider=None) -> Client:
    client = Client(Budget(), Ledger("bench"))
    client.add_endpoint("default", llm, "off", provider=provider)
    return client


def request(i: int, model: str) -> ChatRequest:
    return ChatRequest(messages=(("user", f"call {i}: reply with JSON"),), model=model, max_tokens=16,
                       meta=CallMeta(agent=f"p{i % 100}", call_id=i + 1))


async def time_sequential(call, n: int) -> float:
    """Seconds for n awaited calls, one after another."""
    t0 = time.perf_counter()
    for i in range(n):
        await call(i)
    return time.perf_counter() - t0


async def time_concurrent(call, n: int) -> float:
    t0 = time.perf_counter()
    await asyncio.gather(*(call(i) for i in range(n)))
    return time.perf_counter() - t0


def overhead(n: int) -> dict[str, float]:
    """Per-call microseconds: full stack vs the bare provider, same loop."""
    prov = InstantProvider()
    client = make_client(llm_dict("instant", "bench", 1), provider=prov)
    reqs = [request(i, "bench") for i in range(n)]
    with asyncio.Runner() as r:
        r.run(time_sequential(lambda i: prov.complete(reqs[i]), min(n, 200)))  # warm-up
        direct = r.run(time_sequential(lambda i: prov.complete(reqs[i]), n))
        stack = r.run(time_sequential(lambda i: client.complete(reqs[i]), n))
    d_us, s_us = direct / n * 1e6, stack / n * 1e6
    return {"direct_us_per_call": d_us, "stack_us_per_call": s_us, "overhead_us_per_call": s_us - d_us,
            "stack_over_direct_ratio": s_us / d_us if d_us > 0 else float("nan"),
            "ledger_rows": float(len(client.ledger))}


def loopback(n: int) -> dict[str, float]:
    """Sequential vs concurrent client calls, and bare AsyncOpenAI gather, against a 50 ms stub."""
    with LoopbackServer(latency_s=LATENCY_S) as srv:
        prov = OpenAIProvider(base_url=srv.base_url, model="bench", api_key_env=None, schema_mode="none")
        client = make_client(llm_dict("openai", "bench", n, srv.base_url), provider=prov)
        reqs = [request(i, "bench") for i in range(n)]
        with asyncio.Runner() as r:
            bare = openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-local", max_retries=0)
            # the same transport the provider uses (aiohttp when installed), for a like-for-like floor
            bare_aio = openai.AsyncOpenAI(base_url=srv.base_url, api_key="sk-local", max_retries=0,
                                          http_client=_http_client(30.0))

            def raw_with(c):
                async def raw(i: int):
                    return await c.chat.completions.create(model="bench", max_tokens=16,
                                                           messages=[{"role": "user", "content": f"call {i}"}])
                return raw

            raw, raw_aio = raw_with(bare), raw_with(bare_aio)

            # warm-up at full width opens the pooled keep-alive connections, so the timed
            # runs measure steady state rather than n TCP handshakes
            r.run(time_concurrent(lambda i: client.complete(reqs[i]), n))
            r.run(time_concurrent(raw, n))
            r.run(time_concurrent(raw_aio, n))
            one = r.run(time_sequential(lambda i: client.complete(reqs[i]), 5)) / 5
            seq = r.run(time_sequential(lambda i: client.complete(reqs[i]), n))
            conc = r.run(time_concurrent(lambda i: client.complete(reqs[i]), n))
            raw_conc = r.run(time_concurrent(raw, n))
            raw_aio_conc = r.run(time_concurrent(raw_aio, n))
            r.run(bare.close())
            r.run(bare_aio.close())
            r.run(prov.aclose())
    return {"loopback_latency_ms": LATENCY_S * 1e3, "one_call_ms": one * 1e3, "sequential_s": seq,
            "concurrent_s": conc, "raw_gather_s": raw_conc, "speedup_concurrent_over_sequential": seq / conc,
            "concurrent_wall_over_one_call_ratio": conc / one, "concurrent_over_raw_gather_ratio": conc / raw_conc,
            "raw_gather_same_transport_s": raw_aio_conc,
            "concurrent_over_raw_same_transport_ratio": conc / raw_aio_conc}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="calls for the overhead part")
    ap.add_argument("--loopback-calls", type=int, default=None, help="default 100; --quick 50")
    a = ap.parse_args(argv)
    n = a.n or (500 if a.quick else 5000)
    m = a.loopback_calls or (50 if a.quick else 100)
    figs = {"overhead_calls": float(n), **overhead(n), "loopback_calls": float(m), **loopback(m)}
    print("# client_overhead (2-core box: concurrent figures are CPU-bound, compare with raw_gather_s)")
    for k, v in figs.items():
        print(f"{k}: {v:.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
