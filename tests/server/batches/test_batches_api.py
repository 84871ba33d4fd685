"""``/v1/files`` and ``/v1/batches`` through the official SDK, in process: OpenAI's shapes (validated against the
``openai`` package's own types), a batch line's body equal to the synchronous route's answer for the same request,
errors in the error file, and the refusals of the API (400, 404, 413) in OpenAI's error body."""

from __future__ import annotations

import json
from dataclasses import replace
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest
from openai.types import Batch, FileDeleted, FileObject

from starlette.testclient import TestClient

from pipeline.jobs.jobs import Jobs
from server.batches.webhooks import WebhookSender, WebhookSettings
from server.collaborators import Collaborators, bind
from server.edge.allowed_hosts import AllowedHosts
from server.openai_app import create_openai_app

TRANSCRIPTIONS = "/v1/audio/transcriptions"


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def line(custom_id: str, body: dict[str, Any], url: str = TRANSCRIPTIONS) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def upload(sdk: openai.OpenAI, data: bytes, purpose: str = "user_data", name: str = "a.wav") -> FileObject:
    return sdk.files.create(file=(name, data), purpose=purpose)  # type: ignore[arg-type]


def output_lines(sdk: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(raw) for raw in sdk.files.content(file_id).content.splitlines()]


def test_files_are_stored_listed_read_and_deleted_in_openais_shapes(http, sdk: openai.OpenAI, wav_bytes):
    audio = wav_bytes(1.0)
    created = http.post("/v1/files", files={"file": ("a.wav", audio)}, data={"purpose": "user_data"})
    assert created.status_code == 200
    record = FileObject.model_validate(created.json())
    assert (record.bytes, record.filename, record.purpose, record.status) == (len(audio), "a.wav", "user_data",
                                                                               "processed")
    FileObject.model_validate(http.get(f"/v1/files/{record.id}").json())
    assert sdk.files.content(record.id).content == audio
    listed = http.get("/v1/files").json()
    assert listed["object"] == "list" and [FileObject.model_validate(f).id for f in listed["data"]] == [record.id]
    deleted = http.delete(f"/v1/files/{record.id}")
    assert FileDeleted.model_validate(deleted.json()).deleted is True
    gone = http.get(f"/v1/files/{record.id}")
    assert gone.status_code == 404 and gone.json()["error"]["type"] == "invalid_request_error"


def test_a_batch_line_answers_what_the_synchronous_route_answers(sdk: openai.OpenAI, http, wav_bytes, run_batch):
    audio = wav_bytes(2.0)
    audio_file = upload(sdk, audio)
    bodies = {
        "json": {"file": audio_file.id, "model": "asr"},
        "verbose": {"file": audio_file.id, "response_format": "verbose_json", "timestamp_granularities": ["word"]},
        "text": {"file": audio_file.id, "response_format": "text", "prompt": "hello"},
        "srt": {"file": audio_file.id, "response_format": "srt", "language": "en"},
        "diarized": {"file": audio_file.id, "response_format": "diarized_json"},
    }
    batch_input = upload(sdk, jsonl([line(cid, body) for cid, body in bodies.items()]), "batch", "in.jsonl")
    batch = sdk.batches.create(input_file_id=batch_input.id, endpoint=TRANSCRIPTIONS, completion_window="24h",
                               metadata={"job": "t1"})
    assert batch.status == "validating" and batch.metadata == {"job": "t1"}
    run_batch()
    raw = http.get(f"/v1/batches/{batch.id}").json()
    done = Batch.model_validate(raw)
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.model_dump() == {"total": 5, "completed": 5,
                                                                                      "failed": 0}
    assert done.in_progress_at and done.finalizing_at and done.completed_at and done.error_file_id is None
    lines = {item["custom_id"]: item for item in output_lines(sdk, done.output_file_id)}
    assert set(lines) == set(bodies)
    for custom_id, body in bodies.items():
        form = {key: value for key, value in body.items() if key not in ("file", "timestamp_granularities")}
        if "timestamp_granularities" in body:
            form["timestamp_granularities[]"] = body["timestamp_granularities"]
        synchronous = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", audio)}, data=form)
        assert synchronous.status_code == 200
        response = lines[custom_id]["response"]
        assert response["status_code"] == 200 and response["request_id"].startswith("req_")
        expected = synchronous.json() if synchronous.headers["content-type"].startswith("application/json") \
            else synchronous.text
        assert response["body"] == expected, custom_id
        assert lines[custom_id]["error"] is None and lines[custom_id]["id"].startswith("batch_req_")


def test_translations_batch_as_the_translation_route(sdk: openai.OpenAI, http, wav_bytes, run_batch):
    audio = wav_bytes(1.5)
    audio_file = upload(sdk, audio)
    batch_input = upload(sdk, jsonl([line("t", {"file": audio_file.id}, "/v1/audio/translations")]), "batch")
    batch = sdk.batches.create(input_file_id=batch_input.id, endpoint="/v1/audio/translations",
                               completion_window="24h")
    run_batch()
    done = sdk.batches.retrieve(batch.id)
    [only] = output_lines(sdk, done.output_file_id)
    synchronous = http.post("/v1/audio/translations", files={"file": ("a.wav", audio)})
    assert only["response"]["body"] == synchronous.json()


def test_lines_that_fail_go_to_the_error_file_with_the_routes_status_and_body(sdk, http, wav_bytes, run_batch):
    good = upload(sdk, wav_bytes(1.0))
    undecodable = upload(sdk, b"this is not audio at all" * 10, name="bad.wav")
    lines = [
        line("good", {"file": good.id}),
        line("undecodable", {"file": undecodable.id}),
        line("unknown-model", {"file": good.id, "model": "no-such-model"}),
    ]
    batch = sdk.batches.create(input_file_id=upload(sdk, jsonl(lines), "batch").id, endpoint=TRANSCRIPTIONS,
                               completion_window="24h")
    run_batch()
    done = sdk.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None and (done.request_counts.completed, done.request_counts.failed) == (1, 2)
    assert [item["custom_id"] for item in output_lines(sdk, done.output_file_id)] == ["good"]
    errors = {item["custom_id"]: item["response"] for item in output_lines(sdk, done.error_file_id)}
    synchronous = http.post("/v1/audio/transcriptions", files={"file": ("bad.wav", b"this is not audio at all" * 10)})
    assert errors["undecodable"]["status_code"] == synchronous.status_code == 400
    assert errors["undecodable"]["body"] == synchronous.json()
    assert errors["unknown-model"]["status_code"] == 404
    assert errors["unknown-model"]["body"]["error"]["param"] == "model"


def test_a_bad_input_file_fails_the_batch_with_each_bad_line_numbered(sdk, wav_bytes, run_batch):
    good = upload(sdk, wav_bytes(1.0))
    raw = b"\n".join([
        json.dumps(line("ok", {"file": good.id})).encode(),
        b"{not json",
        json.dumps(line("fmt", {"file": good.id, "response_format": "xml"})).encode(),
        json.dumps(line("nofile", {"file": "file-missing"})).encode(),
        json.dumps(line("ok", {"file": good.id})).encode(),
        json.dumps(line("other", {"file": good.id}, "/v1/chat/completions")).encode(),
    ])
    batch = sdk.batches.create(input_file_id=upload(sdk, raw, "batch").id, endpoint=TRANSCRIPTIONS,
                               completion_window="24h")
    run_batch()
    failed = sdk.batches.retrieve(batch.id)
    assert failed.status == "failed" and failed.failed_at and failed.errors is not None
    found = [(error.line, error.code, error.param) for error in failed.errors.data or []]
    assert found == [
        (2, "invalid_json_line", None),
        (3, "invalid_value", "body.response_format"),
        (4, "not_found", "body.file"),
        (5, "duplicate_custom_id", "custom_id"),
        (6, "mismatched_url", "url"),
    ]
    assert failed.request_counts is not None and failed.request_counts.total == 0


@pytest.mark.parametrize(
    ("request_body", "status", "param"),
    [
        ({"endpoint": "/v1/chat/completions", "completion_window": "24h"}, 400, "endpoint"),
        ({"endpoint": TRANSCRIPTIONS, "completion_window": "1h"}, 400, "completion_window"),
        ({"endpoint": TRANSCRIPTIONS, "completion_window": "24h", "metadata": {"k": 1}}, 400, "metadata"),
        ({"endpoint": TRANSCRIPTIONS, "completion_window": "24h", "input_file_id": "file-nope"}, 404, "file_id"),
    ],
)
def test_a_batch_that_cannot_be_made_is_refused_naming_the_parameter(http, sdk, request_body, status, param):
    batch_input = upload(sdk, jsonl([line("a", {"file": "x"})]), "batch")
    response = http.post("/v1/batches", json={"input_file_id": batch_input.id, **request_body})
    assert response.status_code == status
    assert response.json()["error"]["param"] == param


def test_an_input_file_of_another_purpose_or_over_the_line_bound_is_refused(http, sdk, jobs: Jobs, wav_bytes):
    audio = upload(sdk, wav_bytes(0.5))
    response = http.post("/v1/batches", json={"input_file_id": audio.id, "endpoint": TRANSCRIPTIONS,
                                              "completion_window": "24h"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "input_file_id"
    jobs.batches.limits = type(jobs.batches.limits)(max_lines=2)
    too_long = upload(sdk, jsonl([line(str(n), {"file": audio.id}) for n in range(3)]), "batch")
    response = http.post("/v1/batches", json={"input_file_id": too_long.id, "endpoint": TRANSCRIPTIONS,
                                              "completion_window": "24h"})
    assert response.status_code == 400 and "at most 2" in response.json()["error"]["message"]


def test_uploads_past_the_size_bound_are_413_and_past_the_file_count_400(http, jobs: Jobs):
    too_big = http.post("/v1/files", files={"file": ("big.bin", b"x" * (2 * 2**20 + 1))}, data={"purpose": "batch"})
    assert too_big.status_code == 413 and too_big.json()["error"]["param"] == "file"
    bad_purpose = http.post("/v1/files", files={"file": ("a.bin", b"x")}, data={"purpose": "fine-tune"})
    assert bad_purpose.status_code == 400 and bad_purpose.json()["error"]["param"] == "purpose"
    for _ in range(jobs.files.limits.max_files):
        assert http.post("/v1/files", files={"file": ("a.bin", b"x")}, data={"purpose": "batch"}).status_code == 200
    full = http.post("/v1/files", files={"file": ("a.bin", b"x")}, data={"purpose": "batch"})
    assert full.status_code == 400 and full.json()["error"]["code"] == "files_limit_reached"
    assert len(list((jobs.files.directory).iterdir())) == jobs.files.limits.max_files


def test_cancel_stops_lines_not_started_and_the_batch_ends_cancelled(sdk, wav_bytes, jobs: Jobs, run_batch):
    audio = upload(sdk, wav_bytes(0.5))
    batch_input = upload(sdk, jsonl([line(str(n), {"file": audio.id}) for n in range(4)]), "batch")
    batch = sdk.batches.create(input_file_id=batch_input.id, endpoint=TRANSCRIPTIONS, completion_window="24h")
    assert jobs.batches.validate_next(jobs.worker.runner.check) == (batch.id, "in_progress")
    item = jobs.batches.claim(jobs.worker.name, jobs.worker.runner.has_room)  # one line running when cancelled
    assert item is not None
    cancelling = sdk.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    assert not jobs.batches.settle(jobs.worker.name)  # the running line holds the batch
    jobs.worker._run(item)
    run_batch()
    cancelled = sdk.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at
    assert [line["custom_id"] for line in output_lines(sdk, cancelled.output_file_id)] == [item.custom_id]
    never_ran = output_lines(sdk, cancelled.error_file_id)
    assert len(never_ran) == 3 and {entry["error"]["code"] for entry in never_ran} == {"batch_cancelled"}
    assert all(entry["response"] is None for entry in never_ran)
    again = sdk.batches.list()
    assert [b.id for b in again.data] == [batch.id]


def test_batches_list_newest_first_with_a_cursor(sdk, wav_bytes, http):
    audio = upload(sdk, wav_bytes(0.5))
    batch_input = upload(sdk, jsonl([line("a", {"file": audio.id})]), "batch")
    made = [sdk.batches.create(input_file_id=batch_input.id, endpoint=TRANSCRIPTIONS, completion_window="24h").id
            for _ in range(3)]
    first = http.get("/v1/batches", params={"limit": 2}).json()
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = http.get("/v1/batches", params={"limit": 2, "after": first["last_id"]}).json()
    assert rest["has_more"] is False
    assert sorted([b["id"] for b in first["data"] + rest["data"]]) == sorted(made)


def test_the_apis_say_they_are_off_when_no_jobs_directory_is_set():
    with TestClient(create_openai_app(Collaborators())) as client:
        response = client.get("/files")
    assert response.status_code == 404 and response.json()["error"]["code"] == "batches_disabled"


def test_a_line_whose_audio_is_a_url_is_fetched_and_answers_as_an_upload(sdk, http, wav_bytes, run_batch):
    audio = wav_bytes(1.0)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(audio)))
            self.end_headers()
            self.wfile.write(audio)

        def log_message(self, *args) -> None:
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{origin.server_address[1]}/a.wav"
        lines = [line("remote", {"url": url}), line("gone", {"url": f"http://127.0.0.1:{closed_port()}/a.wav"}),
                 line("malformed", {"url": "http://127.0.0.1:99999999/a.wav"}),
                 line("metadata", {"url": "http://169.254.169.254/latest/meta-data/"})]
        batch = sdk.batches.create(input_file_id=upload(sdk, jsonl(lines), "batch").id, endpoint=TRANSCRIPTIONS,
                                   completion_window="24h")
        run_batch()
    finally:
        origin.shutdown()
    done = sdk.batches.retrieve(batch.id)
    [remote] = output_lines(sdk, done.output_file_id)
    assert remote["response"]["body"] == http.post("/v1/audio/transcriptions", files={"file": ("a.wav", audio)}).json()
    errors = output_lines(sdk, done.error_file_id)
    assert [(e["custom_id"], e["response"]["status_code"], e["response"]["body"]["error"]["param"]) for e in errors] \
        == [("gone", 400, "url"), ("malformed", 400, "url"), ("metadata", 400, "url")]
    assert errors[-1]["response"]["body"]["error"]["code"] == "url_not_allowed"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_line_past_the_request_timeout_answers_the_routes_504(sdk, wav_bytes, jobs: Jobs, run_batch, fake_models):
    runner = jobs.worker.runner
    runner.settings = type(runner.settings)(request_timeout_s=0.2)
    fake_models.gate = threading.Event()  # the model never answers on its own
    audio = upload(sdk, wav_bytes(1.0))
    batch = sdk.batches.create(input_file_id=upload(sdk, jsonl([line("slow", {"file": audio.id})]), "batch").id,
                               endpoint=TRANSCRIPTIONS, completion_window="24h")
    try:
        run_batch()
    finally:
        fake_models.gate.set()
    [slow] = output_lines(sdk, sdk.batches.retrieve(batch.id).error_file_id)
    assert slow["response"]["status_code"] == 504
    assert slow["response"]["body"]["error"]["type"] == "server_error"


def test_a_batchs_own_webhook_url_is_refused_without_webhooks_or_to_a_host_not_allowed(
    http, sdk, v1_app, collaborators: Collaborators
):
    batch_input = upload(sdk, jsonl([line("a", {"file": "x"})]), "batch")
    request = {"input_file_id": batch_input.id, "endpoint": TRANSCRIPTIONS, "completion_window": "24h",
               "metadata": {"webhook_url": "http://169.254.169.254/latest/meta-data/"}}
    response = http.post("/v1/batches", json=request)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "metadata" and response.json()["error"]["code"] == "webhooks_disabled"
    allowed = AllowedHosts.parse("127.0.0.2")  # an address, not a name: nothing to resolve offline
    sender = WebhookSender(WebhookSettings(urls=(), secret="whsec_c2VjcmV0", allowed_hosts=allowed))
    try:
        bind(v1_app, replace(collaborators, batch_webhooks=sender))
        response = http.post("/v1/batches", json=request)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "webhook_url_not_allowed"
        request["metadata"] = {"webhook_url": "http://127.0.0.2:9/batches"}
        created = Batch.model_validate(http.post("/v1/batches", json=request).json())
        assert created.metadata == {"webhook_url": "http://127.0.0.2:9/batches"}
    finally:
        sender.close()
