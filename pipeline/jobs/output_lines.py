"""A batch's output and error files: one JSON line per item, ``{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}`` as OpenAI writes them. Items that answered (any status) carry a ``response``; items
that never ran (the batch was cancelled or expired first) carry ``error`` instead, ``response`` null."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from . import states
from .tables import ItemRow

NEVER_RAN = {
    states.ITEM_CANCELLED: ("batch_cancelled", "This line was not run: the batch was cancelled."),
    states.ITEM_EXPIRED: ("batch_expired", "This line was not run before the batch's completion window ended."),
}


def output_line(item: ItemRow) -> dict[str, Any]:
    if item.status in NEVER_RAN:
        code, message = NEVER_RAN[item.status]
        return {"id": f"batch_req_{item.id}", "custom_id": item.custom_id, "response": None,
                "error": {"code": code, "message": message}}
    return {
        "id": f"batch_req_{item.id}",
        "custom_id": item.custom_id,
        "response": {"status_code": item.status_code, "request_id": item.request_id, "body": item.response_body},
        "error": None,
    }


def is_error(item: ItemRow) -> bool:
    """Whether the item's line goes to the error file: it answered an error status, or never ran."""
    return item.status in NEVER_RAN or (item.status_code or 0) >= 400


def jsonl(lines: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    for line in lines:
        yield json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
