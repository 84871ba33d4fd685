"""Webhooks on a batch's end, received on 127.0.0.1: OpenAI's event shapes, verified by the ``openai`` SDK's own
``client.webhooks.unwrap`` with the operator's secret; a forged or stale signature refused by it; a receiver that
fails is tried again after a wait; a batch's own URL called only where the operator allows its host."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from openai import InvalidWebhookSignatureError
from openai.types.webhooks import BatchCompletedWebhookEvent, BatchFailedWebhookEvent

from core.errors import InvalidInputError
from server.batches.webhooks import WebhookSender, WebhookSettings
from server.edge.allowed_hosts import AllowedHosts

SECRET = "whsec_" + base64.b64encode(b"a secret of thirty-two bytes!!!!").decode()


class Receiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[tuple[bytes, dict[str, str]]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.got = threading.Event()


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver(fail_first=1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.attempts += 1
            if state.attempts <= state.fail_first:
                self.send_response(503)
                self.end_headers()
                return
            state.received.append((body, dict(self.headers)))
            state.got.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()


def test_a_batch_event_is_signed_delivered_after_a_failure_and_verified_by_the_sdk(receiver):
    state, url = receiver
    sender = WebhookSender(WebhookSettings(urls=(url,), secret=SECRET, first_retry_s=0.2))
    try:
        sender.batch_ended("batch_abc", "completed")
        assert state.got.wait(10)
    finally:
        sender.close()
    assert state.attempts == 2  # the first answered 503, the retry was delivered
    [(body, headers)] = state.received
    client = openai.OpenAI(api_key="unused", webhook_secret=SECRET)
    event = client.webhooks.unwrap(body, headers)
    assert isinstance(event, BatchCompletedWebhookEvent) and event.data.id == "batch_abc"
    BatchCompletedWebhookEvent.model_validate(json.loads(body))
    assert headers["webhook-id"] == event.id and event.id.startswith("evt_")
    forged = {**headers, "webhook-signature": "v1," + base64.b64encode(b"x" * 32).decode()}
    with pytest.raises(InvalidWebhookSignatureError):
        client.webhooks.unwrap(body, forged)
    with pytest.raises(InvalidWebhookSignatureError):
        client.webhooks.unwrap(body.replace(b"batch_abc", b"batch_xyz"), headers)
    stale = sender.signed_headers(event.id, body)
    stale["webhook-timestamp"] = str(int(time.time()) - 3600)
    with pytest.raises(InvalidWebhookSignatureError):
        client.webhooks.unwrap(body, stale)


def test_each_ending_has_its_event_type_and_unknown_statuses_none(receiver):
    state, url = receiver
    state.fail_first = 0
    sender = WebhookSender(WebhookSettings(urls=(url,), secret=SECRET))
    try:
        sender.batch_ended("batch_1", "in_progress")  # not an ending: nothing sent
        sender.batch_ended("batch_2", "failed")
        assert state.got.wait(10)
    finally:
        sender.close()
    [(body, headers)] = state.received
    event = openai.OpenAI(api_key="unused", webhook_secret=SECRET).webhooks.unwrap(body, headers)
    assert isinstance(event, BatchFailedWebhookEvent) and event.data.id == "batch_2"


def test_a_receiver_that_never_answers_is_given_up_after_the_attempts_without_blocking(receiver):
    state, url = receiver
    state.fail_first = 100
    sender = WebhookSender(WebhookSettings(urls=(url,), secret=SECRET, max_attempts=3, first_retry_s=0.05))
    started = time.monotonic()
    sender.batch_ended("batch_3", "expired")
    assert time.monotonic() - started < 0.5  # queued, not sent on the caller's thread
    deadline = time.monotonic() + 10
    while state.attempts < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.4)
    sender.close()
    assert state.attempts == 3 and state.received == []


def test_a_batchs_own_url_is_called_where_its_host_is_allowed(receiver):
    state, url = receiver
    state.fail_first = 0
    sender = WebhookSender(WebhookSettings(urls=(), secret=SECRET, allowed_hosts=AllowedHosts.parse("127.0.0.1")))
    try:
        sender.check_batch_url(url)
        sender.batch_ended("batch_own", "completed", url)
        assert state.got.wait(10)
    finally:
        sender.close()
    [(body, headers)] = state.received
    event = openai.OpenAI(api_key="unused", webhook_secret=SECRET).webhooks.unwrap(body, headers)
    assert isinstance(event, BatchCompletedWebhookEvent) and event.data.id == "batch_own"


def test_a_batchs_own_url_to_a_host_not_allowed_is_refused_and_never_called(receiver):
    """The operator's URL (trusted as given) gets the event; the batch's own, to a loopback address nobody listed,
    is refused when the batch is made, and at delivery no connection is made to it."""
    state, url = receiver
    state.fail_first = 0
    sender = WebhookSender(WebhookSettings(urls=(url,), secret=SECRET))
    try:
        for refused in (url, "http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook"):
            with pytest.raises(InvalidInputError) as raised:
                sender.check_batch_url(refused)
            assert raised.value.input == "metadata" and raised.value.code == "webhook_url_not_allowed"
        for not_a_url in ("ftp://127.0.0.1/x", 42):
            with pytest.raises(InvalidInputError) as raised:
                sender.check_batch_url(not_a_url)
            assert raised.value.input == "metadata"
        sender.batch_ended("batch_4", "completed", url.replace("/hooks", "/own"))
        assert state.got.wait(10)
        time.sleep(0.3)  # the batch's own delivery, refused, has had its turn
    finally:
        sender.close()
    assert state.attempts == 1 and len(state.received) == 1  # the operator's only
