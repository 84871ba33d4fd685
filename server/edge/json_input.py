"""JSON a client sends (request bodies, form fields, WebSocket frames), parsed with its nesting bounded: anything that
is not JSON, or is nested deeper than ``MAX_JSON_DEPTH``, is an ``InvalidInputError`` (400, or an ``error`` event on
the realtime socket), never a ``RecursionError`` or a 500.

The depth is checked without recursion and only when the text holds more opening brackets than the bound, so the
common case (a flat object, a base64 audio chunk) costs one ``json.loads``."""

from __future__ import annotations

import json
from typing import Any

from core.errors import InvalidInputError

MAX_JSON_DEPTH = 32
"""Deeper than any request this server takes (a chat message part is five levels down), far below Python's limit."""


def load_json(
    text: str | bytes, *, what: str = "The JSON", input: str | None = None, max_depth: int = MAX_JSON_DEPTH
) -> Any:
    """The parsed value of ``text``; ``InvalidInputError`` (code ``invalid_json``, naming ``input``) when it is not
    JSON or nests arrays and objects more than ``max_depth`` levels deep. ``what`` starts the message."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise _too_deep(what, input, max_depth) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "it is not UTF-8"
        raise InvalidInputError(f"{what} is not valid JSON: {reason}.", input=input, code="invalid_json") from None
    if _opening_brackets(text) > max_depth and nesting_depth(value, max_depth) > max_depth:
        raise _too_deep(what, input, max_depth)
    return value


def nesting_depth(value: Any, stop_above: int) -> int:
    """How deeply ``value``'s arrays and objects nest (a scalar: 0), counted up to ``stop_above + 1`` at most."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > stop_above:
            return deepest
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest


def _opening_brackets(text: str | bytes) -> int:
    if isinstance(text, bytes):
        return text.count(b"[") + text.count(b"{")
    return text.count("[") + text.count("{")


def _too_deep(what: str, input: str | None, max_depth: int) -> InvalidInputError:
    return InvalidInputError(
        f"{what} is nested too deeply: at most {max_depth} levels of arrays and objects.",
        input=input,
        code="invalid_json",
    )
