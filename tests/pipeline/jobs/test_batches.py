"""The batch store: statuses moved by conditional updates, items claimed under leases, each item's outcome recorded
once, batches finalised once with their output and error files, cancel and expiry, and a restart that resumes."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest

from pipeline.jobs import states
from pipeline.jobs.batches import BatchLimits, BatchStore, Outcome
from pipeline.jobs.database import open_database
from pipeline.jobs.errors import InvalidInputError, NotFoundError, WrongStateError
from pipeline.jobs.files import FileStore
from pipeline.jobs.worker import BatchWorker, WorkerSettings
from tests.support.jobs import TRANSCRIPTIONS, Clock, EchoRunner, check, input_file


def new_batch(store: BatchStore, lines: int = 3, **extra) -> str:
    record = store.files.create(io.BytesIO(input_file(lines, **extra)), "in.jsonl", "batch")
    return store.create(record.id, TRANSCRIPTIONS, "24h").id


def run_all(store: BatchStore, worker: str = "w1") -> list[str]:
    ran = []
    while (item := store.claim(worker, lambda body: True)) is not None:
        ran.append(item.custom_id)
        assert store.finish(worker, item.id, Outcome(item.body.get("status", 200), {"text": item.body["text"]}))
    return ran


def lines_of(store: BatchStore, file_id: str | None) -> list[dict]:
    assert file_id is not None
    return [json.loads(raw) for raw in store.files.path(file_id).read_bytes().splitlines()]


def test_a_batch_goes_validating_in_progress_finalizing_completed(store: BatchStore, clock: Clock):
    batch_id = new_batch(store)
    assert store.get(batch_id).status == states.VALIDATING
    assert store.claim("w1", lambda body: True) is None  # nothing runs before validation
    assert store.validate_next(check) == (batch_id, states.IN_PROGRESS)
    assert store.validate_next(check) is None
    batch = store.get(batch_id)
    assert batch.status == states.IN_PROGRESS and batch.in_progress_at == int(clock.now)
    assert store.counts(batch_id).total == 3
    clock.now += 5
    assert run_all(store) == ["c0", "c1", "c2"]
    assert store.counts(batch_id).completed == 3
    assert store.settle("w1") == [(batch_id, states.COMPLETED)]
    done = store.get(batch_id)
    assert done.status == states.COMPLETED and done.finalizing_at and done.completed_at == int(clock.now)
    assert [line["custom_id"] for line in lines_of(store, done.output_file_id)] == ["c0", "c1", "c2"]
    assert done.error_file_id is None
    assert store.settle("w1") == []  # finalised once


def test_error_outcomes_go_to_the_error_file_and_count_as_failed(store: BatchStore):
    batch_id = new_batch(store, 2, status=400)
    store.validate_next(check)
    run_all(store)
    store.settle("w1")
    done = store.get(batch_id)
    counts = store.counts(batch_id)
    assert (counts.completed, counts.failed) == (0, 2)
    errors = lines_of(store, done.error_file_id)
    assert [line["response"]["status_code"] for line in errors] == [400, 400]
    assert lines_of(store, done.output_file_id) == []


def test_an_item_whose_lease_passed_is_claimed_again_and_only_its_new_holder_records_it(store, clock):
    batch_id = new_batch(store, 1)
    store.validate_next(check)
    first = store.claim("dead-replica", lambda body: True)
    assert first is not None and store.claim("w2", lambda body: True) is None  # held
    clock.now += 11  # past the 10 s lease, never renewed
    second = store.claim("w2", lambda body: True)
    assert second is not None and second.id == first.id
    assert not store.finish("dead-replica", first.id, Outcome(200, {"text": "late"}))
    assert store.finish("w2", second.id, Outcome(200, {"text": "t0"}))
    store.settle("w2")
    [only] = lines_of(store, store.get(batch_id).output_file_id)
    assert only["response"]["body"] == {"text": "t0"}


def test_a_renewed_lease_keeps_the_item(store: BatchStore, clock: Clock):
    new_batch(store, 1)
    store.validate_next(check)
    item = store.claim("w1", lambda body: True)
    assert item is not None
    for _ in range(3):
        clock.now += 8
        store.renew("w1", [item.id])
        assert store.claim("w2", lambda body: True) is None


def test_an_item_whose_model_has_no_room_waits_and_the_next_is_taken(store: BatchStore):
    new_batch(store, 2)
    store.validate_next(check)
    item = store.claim("w1", lambda body: body["text"] != "t0")
    assert item is not None and item.custom_id == "c1"
    assert store.claim("w1", lambda body: False) is None


def test_threads_claiming_together_run_every_item_exactly_once(store: BatchStore):
    batch_id = new_batch(store, 40)
    store.validate_next(check)
    ran: list[list[str]] = [[] for _ in range(4)]
    threads = [threading.Thread(target=lambda n=n: ran[n].extend(run_all(store, f"w{n}"))) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    every = [custom_id for worker in ran for custom_id in worker]
    assert sorted(every) == sorted(f"c{n}" for n in range(40))
    store.settle("w0")
    assert len(lines_of(store, store.get(batch_id).output_file_id)) == 40


def test_cancel_cancels_items_not_started_and_lets_the_running_one_finish(store: BatchStore):
    batch_id = new_batch(store, 3)
    store.validate_next(check)
    running = store.claim("w1", lambda body: True)
    assert running is not None
    assert store.cancel(batch_id).status == states.CANCELLING
    assert store.claim("w1", lambda body: True) is None
    assert store.settle("w1") == []
    assert store.finish("w1", running.id, Outcome(200, {"text": "t0"}))
    assert store.settle("w1") == [(batch_id, states.CANCELLED)]
    cancelled = store.get(batch_id)
    assert cancelled.status == states.CANCELLED and cancelled.cancelled_at
    assert len(lines_of(store, cancelled.output_file_id)) == 1
    assert [line["error"]["code"] for line in lines_of(store, cancelled.error_file_id)] == ["batch_cancelled"] * 2
    with pytest.raises(WrongStateError):
        store.cancel(batch_id)


def test_a_cancelled_batch_whose_running_item_was_lost_still_ends(store: BatchStore, clock: Clock):
    batch_id = new_batch(store, 2)
    store.validate_next(check)
    assert store.claim("dead-replica", lambda body: True) is not None
    store.cancel(batch_id)
    clock.now += 11
    assert store.settle("w1") == [(batch_id, states.CANCELLED)]
    assert store.get(batch_id).status == states.CANCELLED


def test_a_batch_past_its_window_expires_with_what_it_finished(store: BatchStore, clock: Clock):
    batch_id = new_batch(store, 3)
    store.validate_next(check)
    item = store.claim("w1", lambda body: True)
    assert item is not None and store.finish("w1", item.id, Outcome(200, {"text": "t0"}))
    clock.now += 24 * 3600 + 1
    assert store.settle("w1") == [(batch_id, states.EXPIRED)]
    expired = store.get(batch_id)
    assert expired.status == states.EXPIRED and expired.expired_at
    assert [line["custom_id"] for line in lines_of(store, expired.output_file_id)] == ["c0"]
    assert [line["error"]["code"] for line in lines_of(store, expired.error_file_id)] == ["batch_expired"] * 2


def test_a_restarted_store_resumes_a_batch_in_progress(tmp_path: Path, store: BatchStore, clock: Clock,
                                                       database_url: str):
    batch_id = new_batch(store, 3)
    store.validate_next(check)
    first = store.claim("before-restart", lambda body: True)
    assert first is not None and store.finish("before-restart", first.id, Outcome(200, {"text": "t0"}))
    assert store.claim("before-restart", lambda body: True) is not None  # cut short by the restart
    sessions = open_database(database_url)  # the same database and files, opened again
    restarted = BatchStore(sessions, FileStore(sessions, tmp_path / "files"), store.limits, clock=clock)
    clock.now += 11
    assert run_all(restarted, "after-restart") == ["c1", "c2"]
    restarted.settle("after-restart")
    done = restarted.get(batch_id)
    assert done.status == states.COMPLETED
    assert sorted(line["custom_id"] for line in lines_of(restarted, done.output_file_id)) == ["c0", "c1", "c2"]


def test_create_refuses_what_it_can_before_validation(store: BatchStore):
    audio = store.files.create(io.BytesIO(b"RIFF"), "a.wav", "user_data")
    batch_input = store.files.create(io.BytesIO(input_file(2)), "in.jsonl", "batch")
    cases = [
        ((batch_input.id, "/v1/embeddings", "24h"), "endpoint"),
        ((batch_input.id, TRANSCRIPTIONS, "48h"), "completion_window"),
        ((audio.id, TRANSCRIPTIONS, "24h"), "input_file_id"),
    ]
    for args, param in cases:
        with pytest.raises(InvalidInputError) as refused:
            store.create(*args)
        assert refused.value.input == param
    with pytest.raises(InvalidInputError) as refused:
        store.create(batch_input.id, TRANSCRIPTIONS, "24h", {"k": "v" * 600})
    assert refused.value.input == "metadata"
    with pytest.raises(NotFoundError):
        store.create("file-nope", TRANSCRIPTIONS, "24h")
    with pytest.raises(NotFoundError):
        store.get("batch_nope")


def test_a_validating_batch_whose_input_was_deleted_fails(store: BatchStore):
    batch_id = new_batch(store, 1)
    store.files.delete(store.get(batch_id).input_file_id)
    assert store.validate_next(check) == (batch_id, states.FAILED)
    failed = store.get(batch_id)
    assert failed.status == states.FAILED and failed.errors["data"][0]["code"] == "input_file_not_found"


def test_the_worker_runs_a_batch_and_stops_claiming_while_draining(store: BatchStore):
    draining = threading.Event()
    runner = EchoRunner()
    ended: list[tuple[str, str]] = []
    worker = BatchWorker(store, runner, WorkerSettings(workers=1, poll_s=0.01),
                         should_claim=lambda: not draining.is_set(), on_ended=lambda *end: ended.append(end))
    batch_id = new_batch(store, 2)
    draining.set()
    assert worker.step() is False and store.get(batch_id).status == states.VALIDATING
    draining.clear()
    worker.start()
    try:
        for _ in range(500):
            if store.get(batch_id).status == states.COMPLETED:
                break
            threading.Event().wait(0.01)
    finally:
        worker.stop(5)
    assert store.get(batch_id).status == states.COMPLETED and runner.ran == ["c0", "c1"]
    assert ended == [(batch_id, states.COMPLETED)]


def test_the_worker_tells_of_a_batch_that_failed_validation_once(store: BatchStore):
    ended: list[tuple[str, str]] = []
    worker = BatchWorker(store, EchoRunner(), on_ended=lambda *end: ended.append(end))
    batch_id = new_batch(store, 2, text=3)  # every line's body refused
    while worker.step():
        pass
    assert ended == [(batch_id, states.FAILED)] and store.get(batch_id).status == states.FAILED


def test_an_ended_batch_is_deleted_with_its_lines_and_outputs_once_past_the_retention(store: BatchStore, clock):
    store.limits = BatchLimits(max_lines=100, lease_s=10.0, retention_s=3600.0)
    batch_id = new_batch(store, 2, status=400)  # an output file and an error file
    store.validate_next(check)
    run_all(store)
    store.settle("w1")
    done = store.get(batch_id)
    assert done.output_file_id and done.error_file_id
    clock.now += 3599
    store.settle("w1")
    assert store.get(batch_id).status == states.COMPLETED  # not yet
    clock.now += 2
    store.settle("w1")
    with pytest.raises(NotFoundError):
        store.get(batch_id)
    for file_id in (done.output_file_id, done.error_file_id):
        with pytest.raises(NotFoundError):
            store.files.get(file_id)
    assert store.counts(batch_id).total == 0
    assert store.files.get(done.input_file_id).purpose == "batch"  # uploads stay until their owner deletes them
