"""A batch's input file read and checked whole, before any line runs: each line ``{"custom_id", "method": "POST",
"url", "body"}``, its ``url`` the batch's endpoint, its ``body`` checked by the endpoint's own check (the one the
synchronous route uses, handed in as ``check``). Errors name their line (1-based)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from core.errors import STTError

BodyCheck = Callable[[str, dict[str, Any]], None]
"""Checks a line's body for an endpoint; raises ``STTError`` naming the field at fault."""
OwnedBodyCheck = Callable[..., None]
"""``check(endpoint, body, owner=...)``: a ``BodyCheck`` for the batch's owner (whose files its lines may name)."""
MAX_REPORTED_ERRORS = 100
MAX_CUSTOM_ID_CHARS = 512


@dataclass(frozen=True)
class InputLine:
    line: int
    custom_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class LineError:
    line: int
    code: str
    message: str
    param: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


def read_input(
    raw_lines: Iterable[bytes], endpoint: str, check: BodyCheck, max_lines: int
) -> tuple[list[InputLine], list[LineError]]:
    """The input's lines, or the errors that fail the batch (at most ``MAX_REPORTED_ERRORS``, the first ones)."""
    lines: list[InputLine] = []
    errors: list[LineError] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        if len(lines) + len(errors) >= max_lines:
            errors.append(LineError(number, "too_many_lines", f"A batch holds at most {max_lines} lines."))
            break
        try:
            lines.append(_line(number, raw, endpoint, check, seen))
        except _Refused as refused:
            errors.append(refused.error)
            if len(errors) >= MAX_REPORTED_ERRORS:
                break
    if not lines and not errors:
        errors.append(LineError(0, "empty_file", "The input file holds no lines."))
    return lines, errors


class _Refused(Exception):
    def __init__(self, error: LineError) -> None:
        self.error = error


def _line(number: int, raw: bytes, endpoint: str, check: BodyCheck, seen: set[str]) -> InputLine:
    def refuse(code: str, message: str, param: str | None = None) -> _Refused:
        return _Refused(LineError(number, code, message, param))

    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise refuse("invalid_json_line", f"Line {number} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise refuse("invalid_json_line", f"Line {number} is not a JSON object.")
    custom_id = value.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id or len(custom_id) > MAX_CUSTOM_ID_CHARS:
        raise refuse("invalid_custom_id", f"Line {number}: custom_id must be a string of 1 to "
                     f"{MAX_CUSTOM_ID_CHARS} characters.", "custom_id")
    if custom_id in seen:
        raise refuse("duplicate_custom_id", f"Line {number}: custom_id {custom_id!r} is used by an earlier line.",
                     "custom_id")
    if value.get("method") != "POST":
        raise refuse("invalid_method", f"Line {number}: method must be 'POST'.", "method")
    if value.get("url") != endpoint:
        raise refuse("mismatched_url", f"Line {number}: url must be the batch's endpoint {endpoint!r}, not "
                     f"{value.get('url')!r}.", "url")
    body = value.get("body")
    if not isinstance(body, dict):
        raise refuse("invalid_body", f"Line {number}: body must be a JSON object.", "body")
    try:
        check(endpoint, body)
    except STTError as exc:
        param = f"body.{exc.input}" if exc.input else "body"
        raise refuse(exc.code, f"Line {number}: {exc.message}", param) from None
    seen.add(custom_id)
    return InputLine(number, custom_id, body)
