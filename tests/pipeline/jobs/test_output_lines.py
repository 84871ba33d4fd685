"""Output and error lines in OpenAI's shape: a response for items that answered, an error for items never run."""

from __future__ import annotations

import json

from pipeline.jobs import states
from pipeline.jobs.output_lines import is_error, jsonl, output_line
from pipeline.jobs.tables import ItemRow


def item(status: str, status_code: int | None = None, body=None) -> ItemRow:
    return ItemRow(id=7, batch_id="batch_x", line=1, custom_id="c", body={}, status=status, status_code=status_code,
                   request_id="req_1" if status_code else None, response_body=body)


def test_an_answered_item_carries_its_response():
    answered = item(states.SUCCEEDED, 200, {"text": "hi"})
    assert output_line(answered) == {
        "id": "batch_req_7", "custom_id": "c",
        "response": {"status_code": 200, "request_id": "req_1", "body": {"text": "hi"}}, "error": None,
    }
    assert not is_error(answered) and is_error(item(states.ERRORED, 400, {"error": {}}))


def test_an_item_never_run_carries_an_error_and_no_response():
    line = output_line(item(states.ITEM_EXPIRED))
    assert line["response"] is None and line["error"]["code"] == "batch_expired"
    assert is_error(item(states.ITEM_CANCELLED))


def test_lines_are_compact_json_one_per_line():
    [raw] = list(jsonl([{"text": "é"}]))
    assert raw.endswith(b"\n") and json.loads(raw) == {"text": "é"} and "é".encode() in raw
