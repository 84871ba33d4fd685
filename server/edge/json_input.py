"""JSON that a request carries (the chat body, a form field such as ``chunking_strategy``, a realtime client event),
read within bounds: at most ``MAX_DEPTH`` levels of nesting and ``MAX_VALUES`` values.

Both are checked on the text, before it is parsed: Python's parser recurses once per level (a deep enough nesting is
a ``RecursionError``, and anything that walks the result recurses too), and every value is a Python object many
times the size of its text (``[{},{},...]`` is 64 bytes of memory for every 3 bytes of body). Strings are skipped
whole by the scan, so a body of base64 audio costs one pass of a regular expression. Errors carry the request field
at fault (the one given, else the top-level member the fault lies in), never a character offset.
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
_SKIP = {str: re.compile(_STRUCTURE, re.DOTALL), bytes: re.compile(_STRUCTURE.encode(), re.DOTALL)}
_KEY = r"""\s*("(?:[^"\\]++|\\.)*+")\s*:"""
_MEMBER_KEY = {str: re.compile(_KEY, re.DOTALL), bytes: re.compile(_KEY.encode(), re.DOTALL)}


class JSONInputError(InvalidInputError):
    code = "invalid_json"


@dataclass(frozen=True)
class _Shape:
    """What the scan found: how deep the text nests and how many values it holds (each exact up to one past its
    bound, or an upper bound within both), and where the top-level member the scan stopped in starts."""

    depth: int
    values: int
    member_start: int | None


def load_json(text: str | bytes | bytearray, param: str | None = None) -> Any:
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
    except ValueError:  # bytes in no encoding JSON allows
        raise JSONInputError("The JSON is not valid: it is not UTF-8 text.", input=param) from None


def _scan(text: str | bytes | bytearray) -> _Shape:
    """Depth and values of ``text``, counted up to one past each bound (strings skipped whole); text that is not
    JSON is left for the parser to describe."""
    kind = str if isinstance(text, str) else bytes
    opening, closing, comma = ("[{", "]}", ",") if kind is str else (b"[{", b"]}", b",")
    containers = text.count(opening[:1]) + text.count(opening[1:])
    if containers <= MAX_DEPTH and containers + text.count(comma) <= MAX_VALUES:  # in strings or not: within bounds
        return _Shape(containers, containers + text.count(comma), None)
    skip = _SKIP[kind]
    depth = values = 0
    member_start: int | None = None
    position, end = 0, len(text)
    while True:
        position = skip.match(text, position).end()  # type: ignore[union-attr]
        if position >= end:
            return _Shape(depth, values, member_start)
        char = text[position : position + 1]
        if char in opening:
            depth += 1
            values += 1
            if depth == 1:
                member_start = position + 1
        elif char in closing:
            depth -= 1
        elif char == comma:
            values += 1
            if depth == 1:
                member_start = position + 1
        else:  # a string that does not end: not JSON
            return _Shape(depth, values, member_start)
        if depth > MAX_DEPTH or values > MAX_VALUES:
            return _Shape(depth, values, member_start)
        position += 1


def _member(text: str | bytes | bytearray, shape: _Shape) -> str | None:
    """The name of the top-level member the scan stopped in, when the text is an object."""
    if shape.member_start is None:
        return None
    match = _MEMBER_KEY[str if isinstance(text, str) else bytes].match(text, shape.member_start)
    if match is None:
        return None
    key = match[1] if isinstance(match[1], str) else match[1].decode("utf-8", "replace")
    try:
        return json.decoder.scanstring(key, 1)[0]  # the key's value, escapes undone
    except ValueError:
        return None
