"""The http executor against fake replicas (an httpx mock transport): spreading, retries, ejection, failures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bulk.executors.base import Done, Failed, GaveUp
from bulk.executors.http import HttpExecutor, HttpOptions, RunAborted, base_url, form_fields
from bulk.manifest import Item
from bulk.outputs import RunDefaults


class FakeReplicas:
    """Answers ``POST /v1/audio/*`` per replica host with ``behaviour[host](request) -> Response`` (a transcript by
    default) and ``/readyz`` with ``ready[host]``; records every request."""

    def __init__(self, hosts: list[str]) -> None:
        self.behaviour: dict[str, Callable[[httpx.Request], httpx.Response]] = {}
        self.ready = {host: True for host in hosts}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        with self.lock:
            self.requests.append((host, request.url.path))
        if request.url.path == "/readyz":
            return httpx.Response(200 if self.ready[host] else 503)
        if host in self.behaviour:
            return self.behaviour[host](request)
        time.sleep(0.01)  # long enough that the executor's threads keep every replica busy
        return httpx.Response(200, json={"text": f"heard by {host}", "duration": 2.0})

    def transcriptions(self, host: str | None = None) -> list[str]:
        return [h for h, path in self.requests if path.startswith("/v1/audio/") and (host is None or h == host)]


@pytest.fixture
def audio_files(tmp_path: Path, wav_bytes: Callable[..., bytes]) -> Callable[[int], list[Item]]:
    def make(count: int) -> list[Item]:
        path = tmp_path / "tone.wav"
        path.write_bytes(wav_bytes(seconds=2.0))
        return [RunDefaults().apply(Item(id=f"item-{i}", audio=str(path))) for i in range(count)]

    return make


def executor(fake: FakeReplicas, hosts: list[str], **options) -> HttpExecutor:
    defaults = {"per_replica_inflight": 2, "backoff_base_s": 0.01, "backoff_max_s": 0.05, "probe_interval_s": 0.02,
                "api_key": None}
    return HttpExecutor(HttpOptions(servers=[f"http://{h}:3000" for h in hosts], **{**defaults, **options}),
                        transport=httpx.MockTransport(fake))


def test_items_are_spread_over_the_replicas_and_each_done_once(audio_files):
    fake = FakeReplicas(["r1", "r2"])
    run = executor(fake, ["r1", "r2"])
    outcomes = list(run.run(audio_files(20)))
    assert sorted(o.item.id for o in outcomes) == sorted(f"item-{i}" for i in range(20))
    assert all(isinstance(o, Done) and o.audio_s == 2.0 and o.text.startswith("heard by") for o in outcomes)
    assert len(fake.transcriptions("r1")) >= 5 and len(fake.transcriptions("r2")) >= 5
    assert sum(run.stats.per_worker.values()) == 20 and run.stats.retries == 0


def test_a_replica_answering_503_is_ejected_its_items_retried_elsewhere_and_readmitted_when_ready(audio_files):
    fake = FakeReplicas(["r1", "r2"])
    fake.behaviour["r1"] = lambda request: httpx.Response(503, headers={"Retry-After": "0"},
                                                          json={"error": {"message": "draining"}})
    fake.ready["r1"] = False
    run = executor(fake, ["r1", "r2"], eject_after=2)
    outcomes = list(run.run(audio_files(10)))
    assert all(isinstance(o, Done) and o.worker == "http://r2:3000" for o in outcomes)
    assert run.replicas.replicas[0].ejected and run.stats.retries >= 2
    assert any("ejected http://r1:3000" in e for e in run.stats.events)
    del fake.behaviour["r1"]
    fake.ready["r1"] = True
    outcomes = list(run.run(audio_files(10)))
    assert not run.replicas.replicas[0].ejected and any("re-admitted" in e for e in run.stats.events)
    assert any(o.worker == "http://r1:3000" for o in outcomes)


def test_connection_errors_are_retried_on_another_replica(audio_files):
    fake = FakeReplicas(["r1", "r2"])

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    fake.behaviour["r1"] = refuse
    outcomes = list(executor(fake, ["r1", "r2"]).run(audio_files(6)))
    assert all(isinstance(o, Done) and o.worker == "http://r2:3000" for o in outcomes)


def test_429_is_retried_after_retry_after_without_counting_against_the_replica(audio_files):
    fake = FakeReplicas(["r1"])
    answers = iter([httpx.Response(429, headers={"Retry-After": "1"}, json={"error": {"message": "busy"}})])
    fake.behaviour["r1"] = lambda request: next(answers, None) or httpx.Response(200, json={"text": "ok"})
    run = executor(fake, ["r1"], per_replica_inflight=1)
    started = time.monotonic()
    [outcome] = list(run.run(audio_files(1)))
    assert isinstance(outcome, Done) and outcome.attempts == 2
    assert time.monotonic() - started >= 0.9  # the server's Retry-After, not the 0.01 s backoff
    assert not run.replicas.replicas[0].ejected and run.replicas.replicas[0].consecutive_failures == 0


def test_a_4xx_is_a_permanent_failure_with_the_error_body_and_is_not_retried(audio_files):
    fake = FakeReplicas(["r1", "r2"])
    body = {"error": {"message": "not audio", "type": "invalid_request_error", "param": "file", "code": None}}
    fake.behaviour["r1"] = fake.behaviour["r2"] = lambda request: httpx.Response(400, json=body)
    [outcome] = list(executor(fake, ["r1", "r2"]).run(audio_files(1)))
    assert isinstance(outcome, Failed) and outcome.status == 400 and outcome.error == body
    assert len(fake.transcriptions()) == 1


def test_a_missing_audio_file_fails_without_a_request(tmp_path: Path):
    fake = FakeReplicas(["r1"])
    [outcome] = list(executor(fake, ["r1"]).run([Item(id="x", audio=str(tmp_path / "none.wav"))]))
    assert isinstance(outcome, Failed) and outcome.error["error"]["code"] == "audio_not_found"
    assert fake.transcriptions() == []


def test_a_wrong_key_aborts_the_run(audio_files):
    fake = FakeReplicas(["r1"])
    fake.behaviour["r1"] = lambda request: httpx.Response(401, json={"error": {"message": "bad key"}})
    with pytest.raises(RunAborted):
        list(executor(fake, ["r1"]).run(audio_files(3)))


def test_an_item_that_outlasts_the_retries_is_left_for_the_next_run(audio_files):
    fake = FakeReplicas(["r1"])
    fake.behaviour["r1"] = lambda request: httpx.Response(500, json={"error": {"message": "boom"}})
    fake.ready["r1"] = False
    [outcome] = list(executor(fake, ["r1"], max_attempts=3, eject_after=100).run(audio_files(1)))
    assert isinstance(outcome, GaveUp) and outcome.attempts == 3 and len(fake.transcriptions()) == 3


def test_the_api_key_goes_in_the_authorization_header(audio_files, monkeypatch: pytest.MonkeyPatch):
    seen: list[str | None] = []
    fake = FakeReplicas(["r1"])

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, json={"text": "ok"})

    fake.behaviour["r1"] = record
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("BULK_API_KEY", "sk-bulk")
    run = HttpExecutor(HttpOptions(servers=["http://r1:3000/v1"]), transport=httpx.MockTransport(fake))
    list(run.run(audio_files(1)))
    assert seen == ["Bearer sk-bulk"]


def test_form_fields_carry_only_what_the_item_sets():
    item = RunDefaults().apply(Item(id="a", audio="a", language="en", prompt="p", diarize=True, num_speakers=2))
    assert form_fields(item) == {"response_format": "diarized_json", "language": "en", "prompt": "p",
                                 "num_speakers": "2"}
    translate = RunDefaults(model="tiny-en").apply(Item(id="a", audio="a", task="translate", language="pt"))
    assert form_fields(translate) == {"response_format": "verbose_json", "model": "tiny-en"}
    assert base_url("http://h:3000/v1/") == "http://h:3000"


def test_text_formats_keep_the_body_as_text(audio_files):
    fake = FakeReplicas(["r1"])
    fake.behaviour["r1"] = lambda request: httpx.Response(200, text="hello there\n")
    item = audio_files(1)[0].model_copy(update={"response_format": "text"})
    [outcome] = list(executor(fake, ["r1"]).run([item]))
    assert isinstance(outcome, Done) and outcome.response == "hello there\n" and outcome.text == "hello there"
    assert outcome.audio_s == pytest.approx(2.0, abs=0.01)  # from the file: the text format has no duration
