"""What the Batch API's end-to-end modules share: the official SDK on a real server, input lines, and waiting on a
batch."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import openai
from openai.types import Batch

from bench.corpus import Utterance
from bench.server import RunningServer

TRANSCRIPTIONS = "/v1/audio/transcriptions"
ENDED = {"completed", "failed", "cancelled", "expired"}


def client(server: RunningServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-needed", max_retries=0, timeout=120)


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def line(custom_id: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": TRANSCRIPTIONS, "body": body}


def submit_lines(sdk: openai.OpenAI, clips: Sequence[Utterance], total: int) -> Batch:
    """A batch of ``total`` transcription lines ``line-0`` ... cycling over ``clips`` uploaded as files."""
    ids = [sdk.files.create(file=clip.path, purpose="user_data").id for clip in clips]
    lines = [line(f"line-{n}", {"file": ids[n % len(ids)]}) for n in range(total)]
    batch_input = sdk.files.create(file=("in.jsonl", jsonl(lines)), purpose="batch")
    return sdk.batches.create(input_file_id=batch_input.id, endpoint=TRANSCRIPTIONS, completion_window="24h")


def wait_until(condition: Callable[[], bool], timeout_s: float = 300, poll_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(poll_s)


def completed_lines(sdk: openai.OpenAI, batch_id: str) -> int:
    counts = sdk.batches.retrieve(batch_id).request_counts
    return 0 if counts is None else counts.completed


def wait_for(sdk: openai.OpenAI, batch_id: str, statuses: set[str] = ENDED, timeout_s: float = 300) -> Batch:
    deadline = time.monotonic() + timeout_s
    while (batch := sdk.batches.retrieve(batch_id)).status not in statuses:
        assert time.monotonic() < deadline, f"batch still {batch.status}: {batch.request_counts}"
        time.sleep(0.2)
    return batch


def read_lines(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    return [] if file_id is None else [json.loads(raw) for raw in sdk.files.content(file_id).content.splitlines()]
