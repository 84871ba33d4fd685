"""Webhooks on a batch's end: ``batch.completed``, ``batch.failed``, ``batch.cancelled``, ``batch.expired`` in the
shapes of ``openai.types.webhooks`` (``{"id", "object": "event", "created_at", "type", "data": {"id"}}``), signed as
the Standard Webhooks specification says (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``: HMAC-SHA256
over ``id.timestamp.body`` with the operator's ``whsec_`` secret; what the ``openai`` SDK's
``client.webhooks.unwrap`` verifies), posted on a thread of their own, retried with doubling waits, never blocking the
batch. They go to the operator's URLs (``STT_WEBHOOK_URLS``, trusted as given) and to the batch's own
(``metadata["webhook_url"]``, a client's: only to a host ``STT_FETCH_ALLOWED_HOSTS`` lists, checked when the batch
is created and again at each attempt, each attempt connecting to the address checked, no redirects followed)."""

from __future__ import annotations

import json
import logging
import queue
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
from standardwebhooks import Webhook

from core.errors import InvalidInputError

from ..edge.allowed_hosts import AllowedHosts, pinned

logger = logging.getLogger("stt.webhooks")
EVENT_TYPES = {
    "completed": "batch.completed", "failed": "batch.failed", "cancelled": "batch.cancelled",
    "expired": "batch.expired",
}
BATCH_WEBHOOK_KEY = "webhook_url"
"""The ``metadata`` key of a batch's own webhook URL."""


@dataclass(frozen=True)
class WebhookSettings:
    urls: tuple[str, ...]
    secret: str
    """``whsec_`` and the key in base64, as the Standard Webhooks libraries and the ``openai`` SDK take it."""
    allowed_hosts: AllowedHosts = AllowedHosts()
    """Where a batch's own URL may point (the operator's URLs are not checked)."""
    max_attempts: int = 6
    first_retry_s: float = 1.0
    """The wait before the second attempt; each later wait doubles."""
    timeout_s: float = 10.0


@dataclass(frozen=True)
class _Delivery:
    url: str
    event_id: str
    body: bytes
    checked: bool = False
    """A client's URL: its host is checked against the allowed hosts, and the attempt pinned to the address checked."""
    attempt: int = 1
    due: float = 0.0


class WebhookSender:
    def __init__(self, settings: WebhookSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._signer = Webhook(settings.secret)
        self._client = httpx.Client(timeout=settings.timeout_s, follow_redirects=False, transport=transport)
        self._queue: queue.Queue[_Delivery | None] = queue.Queue()
        self._waiting: list[_Delivery] = []
        self._thread = threading.Thread(target=self._deliver_forever, name="batch-webhooks", daemon=True)
        self._thread.start()

    def check_batch_url(self, url: object) -> None:
        """Refuse a batch's own webhook URL (``InvalidInputError`` naming ``metadata``) that is no http(s) URL or
        whose host the server may not call."""
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise InvalidInputError(f"metadata.{BATCH_WEBHOOK_KEY} must be an http(s) URL.", input="metadata")
        try:
            self.settings.allowed_hosts.check(url)
        except InvalidInputError as exc:
            raise InvalidInputError(f"metadata.{BATCH_WEBHOOK_KEY}: {exc.message}", input="metadata",
                                    code="webhook_url_not_allowed") from None

    def batch_ended(self, batch_id: str, status: str, batch_url: str | None = None) -> None:
        """Queue the event for every operator URL and the batch's own (returns at once)."""
        if (event_type := EVENT_TYPES.get(status)) is None:
            return
        event_id = f"evt_{secrets.token_hex(12)}"
        event = {"id": event_id, "object": "event", "created_at": int(time.time()), "type": event_type,
                 "data": {"id": batch_id}}
        body = json.dumps(event, separators=(",", ":")).encode()
        for url in self.settings.urls:
            self._queue.put(_Delivery(url, event_id, body))
        if batch_url:
            self._queue.put(_Delivery(batch_url, event_id, body, checked=True))

    def close(self, timeout_s: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._client.close()

    def signed_headers(self, event_id: str, body: bytes) -> dict[str, str]:
        """The Standard Webhooks headers for ``body``, signed now (a retry is signed again: a fresh timestamp)."""
        now = datetime.now(tz=timezone.utc)
        return {
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(event_id, now, body),
            "content-type": "application/json",
        }

    def _deliver_forever(self) -> None:
        while True:
            next_due = min((d.due for d in self._waiting), default=None)
            timeout = 1.0 if next_due is None else min(1.0, max(0.0, next_due - time.monotonic()))
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
                if item is None:
                    return
                self._waiting.append(item)
            except queue.Empty:
                pass
            now = time.monotonic()
            due = [d for d in self._waiting if d.due <= now]
            self._waiting = [d for d in self._waiting if d.due > now]
            for delivery in due:
                self._attempt(delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        url, headers, extensions = delivery.url, self.signed_headers(delivery.event_id, delivery.body), {}
        if delivery.checked:  # a client's URL: where its name points now must still be allowed
            try:
                request = pinned(url, self.settings.allowed_hosts.check(url))
            except InvalidInputError as exc:
                logger.warning("webhook %s to %s not sent: %s", delivery.event_id, url, exc.message)
                return
            url, headers, extensions = request.url, {**headers, **request.headers}, request.extensions
        try:
            response = self._client.post(url, content=delivery.body, headers=headers, extensions=extensions)
            if response.is_success:
                return
            reason = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            reason = type(exc).__name__
        if delivery.attempt >= self.settings.max_attempts:
            logger.warning("webhook %s to %s given up after %d attempts (%s)", delivery.event_id, delivery.url,
                           delivery.attempt, reason)
            return
        wait = self.settings.first_retry_s * 2 ** (delivery.attempt - 1)
        logger.info("webhook %s to %s: %s; attempt %d in %.0f s", delivery.event_id, delivery.url, reason,
                    delivery.attempt + 1, wait)
        self._waiting.append(_Delivery(delivery.url, delivery.event_id, delivery.body, delivery.checked,
                                       delivery.attempt + 1, time.monotonic() + wait))
