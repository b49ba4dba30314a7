"""Output caps and numeric bounds that come from the action's JSON schema.

``output_cap``: a configured ``max_tokens`` that cannot hold the longest valid reply makes
the model's answer end mid-object (the 7-bracket tax proposal under ``planner_tokens: 96``).
The longest valid JSON text of a schema is computed from its enums, bounded numbers,
``maxLength`` strings and ``maxItems`` arrays, with room for the whitespace a model prints,
and turned into tokens at two rates: JSON structure (keys, digits, punctuation, enum
words) at ``STRUCT_CHARS_PER_TOKEN`` and free string content at ``TEXT_CHARS_PER_TOKEN``.
Measured with SmolLM2's tokenizer (the embedded model): the longest 7-bracket proposal is
154 characters and 105 tokens compact (1.47 per token), 170 and 114 pretty-printed; the
longest 9-player belief 309 and 191; English prose runs near 4 characters per token.

``bounded_menus``: llama-cpp-python's JSON-schema grammar ignores ``minimum``/``maximum``,
so an embedded model can write ``qty: 2000`` under a schema that says ``maximum: 5``. For
the local provider a bounded integer becomes an enum of its values (a menu the grammar does
enforce) when the range is small enough to list.
"""
from __future__ import annotations

import json
import math
from typing import Any

STRUCT_CHARS_PER_TOKEN = 1.4
TEXT_CHARS_PER_TOKEN = 3.0
MARGIN_TOKENS = 8
WS_PER_ITEM = 6  # newline, indent and a space after ':' per property or array element
UNBOUNDED_INT_CHARS = 20  # an int64
UNBOUNDED_NUMBER_CHARS = 24
MAX_MENU = 4096  # the largest integer range turned into an enum for the local grammar


def resolve_ref(schema: dict, root: dict) -> dict:
    """A schema node with its local ``$ref`` followed (``#/$defs/...``)."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return resolve_ref(node, root)


def _int_chars(schema: dict) -> int:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is None or hi is None:
        return UNBOUNDED_INT_CHARS
    return max(len(str(int(lo))), len(str(int(hi))))


def max_json_chars(schema: Any, root: dict | None = None) -> int | None:
    """Characters of the longest JSON text valid for ``schema`` (whitespace allowance included).

    None when the schema allows text of any length (a string without ``maxLength``, an
    array without ``maxItems``, an object with free extra keys).
    """
    got = max_json_parts(schema, root)
    return None if got is None else got[0] + got[1]


def max_json_parts(schema: Any, root: dict | None = None) -> tuple[int, int] | None:
    """(structure characters, free-text characters) of the longest valid JSON text; None if unbounded."""
    c = _chars(schema, schema if root is None else root)
    return None if c is None else (c[0], c[1])


def _add(*parts):
    if any(p is None for p in parts):
        return None
    return (sum(p[0] for p in parts), sum(p[1] for p in parts))


def _longest(parts):
    if not parts or any(p is None for p in parts):
        return None if parts else (0, 0)
    return max(parts, key=lambda p: p[0] / STRUCT_CHARS_PER_TOKEN + p[1] / TEXT_CHARS_PER_TOKEN)


def _chars(schema: Any, root: dict) -> tuple[int, int] | None:
    if not isinstance(schema, dict):
        return None if schema is not False else (0, 0)
    schema = resolve_ref(schema, root)
    if "const" in schema:
        return (len(json.dumps(schema["const"])), 0)
    if "enum" in schema:
        return (max((len(json.dumps(v)) for v in schema["enum"]), default=0), 0)
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _longest([_chars(s, root) for s in schema[key]])
    if schema.get("allOf"):
        merged: dict = {}
        for part in schema["allOf"]:
            merged.update(resolve_ref(part, root))
        return _chars(merged, root)
    kind = schema.get("type")
    if isinstance(kind, list):
        return _longest([_chars({**schema, "type": k}, root) for k in kind])
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else None
    if kind == "object":
        if schema.get("additionalProperties") not in (None, False):
            return None  # pydantic's models name every key; a free map has no bound
        props = schema.get("properties") or {}
        keys = sum(len(json.dumps(name)) + 2 + WS_PER_ITEM for name in props)
        return _add((2 + keys, 0), *[_chars(sub, root) for sub in props.values()])
    if kind == "array":
        n = schema.get("maxItems")
        prefix = schema.get("prefixItems") or []
        if n is None and not prefix:
            return None
        count = max(int(n or 0), len(prefix))
        item = _chars(schema.get("items") or {}, root) if count > len(prefix) else (0, 0)
        if item is None:
            return None
        extra = count - len(prefix)
        return _add((2 + count * (1 + WS_PER_ITEM), 0), (item[0] * extra, item[1] * extra),
                    *[_chars(s, root) for s in prefix])
    if kind == "string":
        n = schema.get("maxLength")
        return None if n is None else (2, int(n))
    if kind == "integer":
        return (_int_chars(schema), 0)
    if kind == "number":
        return (UNBOUNDED_NUMBER_CHARS, 0)
    if kind == "boolean":
        return (5, 0)
    if kind == "null":
        return (4, 0)
    return None


def schema_tokens(schema: dict | None) -> int | None:
    """Output tokens enough for the longest valid reply (None: unbounded, or no schema)."""
    if not schema:
        return None
    parts = max_json_parts(schema)
    if parts is None:
        return None
    struct, text = parts
    return math.ceil(struct / STRUCT_CHARS_PER_TOKEN + text / TEXT_CHARS_PER_TOKEN) + MARGIN_TOKENS


def output_cap(configured: int, schema: dict | None) -> int:
    """The configured cap, raised to what the action's schema needs when that is larger."""
    need = schema_tokens(schema)
    return configured if need is None else max(int(configured), need)


def bounded_menus(schema: Any, limit: int = MAX_MENU) -> Any:
    """A copy of ``schema`` where each integer with both bounds (at most ``limit`` values) is an enum.

    The grammar llama-cpp-python builds from a schema enforces enums but not ``minimum``/
    ``maximum``; the enum holds exactly the integers the bounds allow, so validation is unchanged.
    """
    if isinstance(schema, list):
        return [bounded_menus(x, limit) for x in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: bounded_menus(v, limit) for k, v in schema.items()}
    if out.get("type") == "integer" and "enum" not in out and "const" not in out:
        lo = out.get("minimum", None if "exclusiveMinimum" not in out else out["exclusiveMinimum"] + 1)
        hi = out.get("maximum", None if "exclusiveMaximum" not in out else out["exclusiveMaximum"] - 1)
        if lo is not None and hi is not None and 0 <= hi - lo < limit:
            out["enum"] = list(range(math.ceil(lo), math.floor(hi) + 1))
    return out
