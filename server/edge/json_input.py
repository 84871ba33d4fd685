"""JSON that a request carries (the chat body, a form field such as ``chunking_strategy``, a realtime client event),
read within bounds: at most ``MAX_DEPTH`` levels of nesting and ``MAX_VALUES`` values.

Both are checked on the text, before it is parsed: Python's parser recurses once per level (a deep enough nesting is
a ``RecursionError``, and anything that walks the result recurses too), and every value is a Python object many
times the size of its text (``[{},{},...]`` is 64 bytes of memory for every 3 bytes of body). Strings are skipped
whole by the scan, so a body of base64 audio costs one pass of a regular expression. Errors carry the request field
at fault (the one given, else the top-level member the fault lies in), never a character offset as ``param`` (the
message says where, in lines and columns).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from core.errors import InvalidInputError

MAX_DEPTH = 32
"""Levels of nesting: a chat body needs five (``messages[].content[].input_audio.data``), a realtime event six."""
MAX_VALUES = 10_000
"""Containers and commas outside strings (an upper bound on the values): a chat body with a thousand audio parts
holds about five thousand; ten thousand parse into about a megabyte of Python objects."""

_STRUCTURE = r"""(?:[^"\[\]{},]++|"(?:[^"\\]++|\\.)*+")*+"""
"""Everything up to the next bracket or comma outside a string (possessive: a failed string never backtracks)."""
_SKIP = re.compile(_STRUCTURE, re.DOTALL)
_MEMBER_KEY = re.compile(r"""\s*("(?:[^"\\]++|\\.)*+")\s*:""", re.DOTALL)


class JSONInputError(InvalidInputError):
    code = "invalid_json"


@dataclass(frozen=True)
class _Shape:
    """What the scan found: how deep the text nests and how many values it holds (each exact up to one past its
    bound, or an upper bound within both), and where the top-level member the scan stopped in starts."""

    depth: int
    values: int
    member_start: int | None


def load_json(text: str, param: str | None = None) -> Any:
    """``text`` parsed, within ``MAX_DEPTH`` and ``MAX_VALUES``; ``JSONInputError`` (400) naming ``param``, else the
    top-level member at fault (or no field, for text that is not JSON at all)."""
    shape = _scan(text)
    if shape.depth > MAX_DEPTH:
        raise JSONInputError(
            f"The JSON is nested more than {MAX_DEPTH} levels deep.", input=param or _member(text, shape)
        )
    if shape.values > MAX_VALUES:
        raise JSONInputError(
            f"The JSON holds more than {MAX_VALUES} values.", input=param or _member(text, shape)
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONInputError(
            f"The JSON is not valid: {exc.msg} (line {exc.lineno}, column {exc.colno}).", input=param
        ) from None
    except RecursionError:  # not reachable within MAX_DEPTH: a last guard
        raise JSONInputError("The JSON is nested too deeply.", input=param) from None


def json_text(data: bytes | bytearray, param: str | None = None) -> str:
    """A body's bytes as the text ``load_json`` reads (JSON is UTF-8); ``JSONInputError`` for other bytes. A caller
    that lets the bytes go once this returns never holds them beside the parsed result: the text and the bytes, then
    the text and the result, twice the body at most (``json.loads`` given bytes decodes a copy of them, and
    pydantic-core's parser a copy of every string, both held with the bytes: three times)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONInputError("The JSON is not valid: it is not UTF-8 text.", input=param) from None


def _scan(text: str) -> _Shape:
    """Depth and values of ``text``, counted up to one past each bound (strings skipped whole); text that is not
    JSON is left for the parser to describe."""
    containers = text.count("[") + text.count("{")
    if containers <= MAX_DEPTH and containers + text.count(",") <= MAX_VALUES:  # in strings or not: within bounds
        return _Shape(containers, containers + text.count(","), None)
    depth = values = 0
    member_start: int | None = None
    position, end = 0, len(text)
    while True:
        position = _SKIP.match(text, position).end()  # type: ignore[union-attr]
        if position >= end:
            return _Shape(depth, values, member_start)
        char = text[position]
        if char in "[{":
            depth += 1
            values += 1
            if depth == 1:
                member_start = position + 1
        elif char in "]}":
            depth -= 1
        elif char == ",":
            values += 1
            if depth == 1:
                member_start = position + 1
        else:  # a string that does not end: not JSON
            return _Shape(depth, values, member_start)
        if depth > MAX_DEPTH or values > MAX_VALUES:
            return _Shape(depth, values, member_start)
        position += 1


def _member(text: str, shape: _Shape) -> str | None:
    """The name of the top-level member the scan stopped in, when the text is an object."""
    if shape.member_start is None:
        return None
    match = _MEMBER_KEY.match(text, shape.member_start)
    if match is None:
        return None
    try:
        return json.decoder.scanstring(match[1], 1)[0]  # the key's value, escapes undone
    except ValueError:
        return None
