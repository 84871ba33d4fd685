"""What the jobs' tests share: a clock the test moves, a check and a runner that answer each line's ``text`` back
(or the status its body asks for), and input files."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core.errors import InvalidInputError
from pipeline.jobs.batches import ClaimedItem, Outcome

TRANSCRIPTIONS = "/v1/audio/transcriptions"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def check(endpoint: str, body: dict[str, Any], owner: str | None = None) -> None:
    if not isinstance(body.get("text"), str):
        raise InvalidInputError("text must be a string.", input="text")


@dataclass
class EchoRunner:
    ran: list[str] = field(default_factory=list)
    room: bool = True

    def check(self, endpoint: str, body: dict[str, Any], owner: str | None = None) -> None:
        check(endpoint, body)

    def has_room(self, body: dict[str, Any]) -> bool:
        return self.room

    def run(self, item: ClaimedItem) -> Outcome:
        self.ran.append(item.custom_id)
        return Outcome(item.body.get("status", 200), {"text": item.body["text"]})


def input_file(lines: int, **extra: Any) -> bytes:
    return b"".join(
        json.dumps({"custom_id": f"c{n}", "method": "POST", "url": TRANSCRIPTIONS,
                    "body": {"text": f"t{n}", **extra}}).encode() + b"\n"
        for n in range(lines)
    )
