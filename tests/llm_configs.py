"""Endpoint config dicts the client tests build clients from (the shape of conf/llm/*.yaml)."""
from __future__ import annotations

# nano-USD per token: input 50, cached input 25, output 200
PRICES = {"default": {"input_per_mtok": "0.050", "cached_input_per_mtok": "0.025", "output_per_mtok": "0.200"}}


def openai_llm(base_url: str = "http://127.0.0.1:9/v1", **over) -> dict:
    """The openai provider pointed at ``base_url`` (a loopback server in tests)."""
    d = {"provider": "openai", "model": "loop-model", "base_url": base_url, "api_key_env": None,
         "cap_param": "max_tokens", "schema_mode": "json_schema", "temperature": 0.7, "top_p": 0.9,
         "max_tokens": 64, "timeout_s": 5, "max_retries": 2, "retry_backoff_s": 0.01, "concurrency": 8,
         "rate_limit": {"rpm": None, "tpm": None}, "cache": {"mode": "off", "shared_dir": None},
         "price_version": "test-v1", "prices": PRICES, "fallback_models": []}
    d.update(over)
    return d


def scripted_llm(**over) -> dict:
    """The scripted provider at zero prices (a direct endpoint unless ``prices`` says otherwise)."""
    d = {"provider": "scripted", "model": "scripted", "max_retries": 0, "timeout_s": 1, "concurrency": 4,
         "rate_limit": {}, "cache": {"mode": "off"}, "price_version": "none",
         "prices": {"scripted": {"input_per_mtok": "0", "cached_input_per_mtok": "0", "output_per_mtok": "0",
                                 "shadow": True}}, "fallback_models": []}
    d.update(over)
    return d
