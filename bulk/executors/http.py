"""The http executor: drives running replicas through ``POST /v1/audio/transcriptions`` (``/translations`` for
``task: translate``), so also any OpenAI-compatible server.

Each item's audio is read once (``bulk.audio_sources``), then sent to the replica with the fewest requests in flight
(``replicas.ReplicaSet``). A 429, a 503, another 5xx, a 408 or a connection error is retried on another replica after
a jittered exponential backoff, at least the ``Retry-After`` the server asked for; a 4xx is a permanent failure; a
401 or 403 stops the run (every item would fail the same way: a wrong key). The API key comes from
``BULK_API_KEY`` or else ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..audio_sources import DEFAULT_MAX_AUDIO_BYTES, Audio, AudioSourceError, duration_s, load_audio
from ..manifest import Item
from .base import Done, ExecutorStats, Failed, GaveUp, Outcome, outcomes_from_threads, response_format_of
from .replicas import NoReplicaAvailable, Replica, ReplicaSet

API_KEY_VARIABLES = ("BULK_API_KEY", "OPENAI_API_KEY")
RETRIED_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses another try may get past; 429 does not count against the replica (it is busy, not broken)."""
FATAL_STATUSES = frozenset({401, 403})
JSON_FORMATS = frozenset({"json", "verbose_json", "diarized_json"})


class RunAborted(RuntimeError):
    """A failure every item would share (a wrong or missing API key): the run stops, nothing is recorded."""


@dataclass(frozen=True)
class HttpOptions:
    servers: list[str]
    per_replica_inflight: int = 2
    max_attempts: int = 30
    """Tries per item across replicas before it is left for the next run (``GaveUp``)."""
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    eject_after: int = 3
    probe_interval_s: float = 1.0
    """How often an ejected replica's ``/readyz`` is asked."""
    readmit_without_readyz_s: float = 30.0
    """A server without ``/readyz`` (404) is re-admitted after this long instead."""
    request_timeout_s: float = 3600.0
    max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES
    api_key: str | None = field(default_factory=lambda: next(
        (os.environ[name] for name in API_KEY_VARIABLES if os.environ.get(name)), None))


def base_url(server: str) -> str:
    """A replica's root (where ``/readyz`` is): the URL given, without a trailing ``/v1``."""
    server = server.rstrip("/")
    return server[: -len("/v1")] if server.endswith("/v1") else server


class HttpExecutor:
    name = "http"

    def __init__(self, options: HttpOptions, transport: httpx.BaseTransport | None = None) -> None:
        self.options = options
        self.stats = ExecutorStats()
        self._stats_lock = threading.Lock()
        self.replicas = ReplicaSet(
            [base_url(s) for s in options.servers], cap=options.per_replica_inflight,
            eject_after=options.eject_after, on_event=self._event,
        )
        headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}
        limits = httpx.Limits(max_connections=len(options.servers) * options.per_replica_inflight + 4)
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(options.request_timeout_s, connect=10.0),
                                    limits=limits, transport=transport)
        self._stop = threading.Event()

    def run(self, items: Sequence[Item]) -> Iterator[Outcome]:
        stop = self._stop = threading.Event()  # one per run: an executor runs again after a run stopped
        prober = threading.Thread(target=self._probe_ejected, args=(stop,), name="bulk-readyz", daemon=True)
        prober.start()
        threads = len(self.replicas.replicas) * self.options.per_replica_inflight
        # A RunAborted (a key the servers refuse) raised by _one stops the run.
        yield from outcomes_from_threads(items, threads, lambda item: self._one(item, stop), stop, "bulk-http")

    def close(self) -> None:
        self._stop.set()
        self._client.close()

    def _one(self, item: Item, stop: threading.Event) -> Outcome:
        try:
            audio = load_audio(item.audio, self.options.max_audio_bytes)
        except AudioSourceError as exc:
            if exc.permanent:
                return Failed(item, None, exc.body(), worker="runner")
            return GaveUp(item, str(exc))
        avoid: str | None = None
        reason = ""
        for attempt in range(1, self.options.max_attempts + 1):
            if stop.is_set():
                return GaveUp(item, "the run stopped", attempt - 1)
            if attempt > 1:
                self._count_retry()
            try:
                replica = self.replicas.acquire(avoid=avoid, timeout_s=self.options.backoff_max_s * 4)
            except NoReplicaAvailable:
                reason = "no replica admitted"
                continue
            outcome, retry_after, reason = self._send(replica, item, audio, attempt)
            if outcome is not None:
                return outcome
            avoid = replica.url
            time.sleep(self._backoff(attempt, retry_after))
        return GaveUp(item, reason or "retries exhausted", self.options.max_attempts)

    def _send(
        self, replica: Replica, item: Item, audio: Audio, attempt: int
    ) -> tuple[Outcome | None, float | None, str]:
        """One try: the outcome when it is final, else the ``Retry-After`` the replica asked for and why it failed."""
        route = "translations" if item.task == "translate" else "transcriptions"
        try:
            response = self._client.post(f"{replica.url}/v1/audio/{route}", data=form_fields(item),
                                         files={"file": (audio.name, audio.data)})
        except httpx.HTTPError as exc:
            self.replicas.failed(replica)
            return None, None, f"{replica.url}: {type(exc).__name__}"
        status = response.status_code
        retry_after = _retry_after_s(response)
        if status < 300:
            self.replicas.succeeded(replica)
            self._count_worker(replica.url)
            return self._done(item, audio, response, replica.url, attempt), None, ""
        if status == 429:
            self.replicas.released(replica, retry_after)
            return None, retry_after, f"{replica.url}: 429"
        if status in RETRIED_STATUSES:
            self.replicas.failed(replica, retry_after)
            return None, retry_after, f"{replica.url}: {status}"
        self.replicas.released(replica)
        if status in FATAL_STATUSES:
            raise RunAborted(f"{replica.url} answered {status} ({_error_body(response)}): check BULK_API_KEY")
        return Failed(item, status, _error_body(response), replica.url, attempt), None, ""

    def _done(self, item: Item, audio: Audio, response: httpx.Response, worker: str, attempt: int) -> Done:
        body: dict[str, Any] | str
        response_format = response_format_of(item)
        if response_format in JSON_FORMATS:
            body = response.json()
            text = body.get("text")
            seconds = body.get("duration") or (body.get("usage") or {}).get("seconds")
        else:
            body = response.text
            text = body.strip() if response_format == "text" else None
            seconds = None
        return Done(item, body, text, float(seconds) if seconds else duration_s(audio), worker, attempts=attempt)

    def _backoff(self, attempt: int, retry_after_s: float | None) -> float:
        exponential = min(self.options.backoff_max_s, self.options.backoff_base_s * 2 ** (attempt - 1))
        jittered = exponential * random.uniform(0.5, 1.0)
        return max(jittered, retry_after_s or 0.0)

    def _probe_ejected(self, stop: threading.Event) -> None:
        """Re-admit an ejected replica once its ``/readyz`` answers 200 (after a while, for a server without one)."""
        ejected_since: dict[str, float] = {}
        while not stop.wait(self.options.probe_interval_s):
            for replica in self.replicas.ejected():
                since = ejected_since.setdefault(replica.url, time.monotonic())
                try:
                    status = self._client.get(f"{replica.url}/readyz", timeout=2.0).status_code
                except httpx.HTTPError:
                    continue
                waited = time.monotonic() - since
                if status == 200 or (status == 404 and waited >= self.options.readmit_without_readyz_s):
                    self.replicas.readmit(replica)
                    ejected_since.pop(replica.url, None)

    def _event(self, message: str) -> None:
        with self._stats_lock:
            self.stats.events.append(message)

    def _count_retry(self) -> None:
        with self._stats_lock:
            self.stats.retries += 1

    def _count_worker(self, url: str) -> None:
        with self._stats_lock:
            self.stats.per_worker[url] = self.stats.per_worker.get(url, 0) + 1


def form_fields(item: Item) -> dict[str, str]:
    """The request's form: only what the item sets (the server's defaults otherwise); speakers come with the
    diarized formats (``RunDefaults.apply`` gives an item with ``diarize`` one)."""
    fields: dict[str, str] = {"response_format": response_format_of(item)}
    if item.model:
        fields["model"] = item.model
    if item.prompt:
        fields["prompt"] = item.prompt
    if item.task == "transcribe":
        if item.language:
            fields["language"] = item.language
        if item.num_speakers is not None:
            fields["num_speakers"] = str(item.num_speakers)
    return fields


def _retry_after_s(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from a replica; the backoff applies


def _error_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, ValueError):
        return {"error": {"message": response.text[:2000], "type": None, "param": None, "code": None}}
    return body if isinstance(body, dict) else {"error": {"message": str(body)}}
