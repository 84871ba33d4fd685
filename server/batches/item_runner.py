"""How a batch line runs: as the synchronous route runs its request. The line's body is checked by the route's own
check (``line_body``), its audio opened (a stored file, or the URL fetched), the transcriber run with the same
options (as background work: ``Transcriber.has_room`` before, its lease apart from interactive requests'), and the
body rendered by ``pipeline.response_formats``; an error answers the status and OpenAI error body the route would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import RequestCancelled, STTError
from pipeline.jobs.batches import ClaimedItem, Outcome
from pipeline.jobs.errors import NotFoundError
from pipeline.jobs.files import FileStore
from pipeline.response_formats import render
from pipeline.transcriber import Transcriber

from ..edge.allowed_hosts import AllowedHosts
from ..edge.disconnect import Deadline
from ..edge.errors import OPENAI_AUDIO_STATUSES, OPENAI_FIELDS, body_of, status_of
from ..models.names import requested_model
from .line_body import LineRequest, line_request
from .remote_audio import fetched


@dataclass(frozen=True)
class RunnerSettings:
    max_audio_bytes: int = 100 * 2**20
    """A fetched URL's size limit: the upload limit (``STT_MAX_UPLOAD_BYTES``)."""
    url_timeout_s: float = 30.0
    request_timeout_s: float = 6 * 3600
    """A line's time limit, as a request's (``STT_REQUEST_TIMEOUT_S``)."""
    allowed_hosts: AllowedHosts = AllowedHosts()
    """Where a ``url`` may be fetched from (``STT_FETCH_ALLOWED_HOSTS``); none by default."""


class AudioItemRunner:
    def __init__(self, transcriber: Transcriber, files: FileStore, settings: RunnerSettings = RunnerSettings()) -> None:
        self.transcriber = transcriber
        self.files = files
        self.settings = settings

    def check(self, endpoint: str, body: dict[str, Any], owner: str | None = None) -> None:
        """A line's body as the route checks its form; a ``file`` must name a stored file of the batch's owner."""
        request = line_request(endpoint, body)
        if request.file_id is not None:
            try:
                self.files.get(request.file_id, owner)
            except NotFoundError as exc:
                raise NotFoundError(exc.message, input="file") from None

    def has_room(self, body: dict[str, Any]) -> bool:
        model = body.get("model")
        try:
            return self.transcriber.has_room(requested_model(model) if isinstance(model, str) else None)
        except STTError:
            return True  # an unknown model: the line runs at once, to its error

    def run(self, item: ClaimedItem) -> Outcome:
        try:
            request = line_request(item.endpoint, item.body)
            form = request.form
            deadline = Deadline(self.settings.request_timeout_s)
            with self._audio(request, item.owner) as source, _cancelled_after(deadline) as cancelled:
                try:
                    result = self.transcriber.transcribe(
                        source, form.model_id, form.options, form.speakers, cancelled, background=True
                    )
                except RequestCancelled as exc:  # only the deadline cancels a line: the route's 504
                    raise deadline.error() from exc
            body = render(result.transcription, form.response_format, form.options.task, set(form.granularities),
                          form.options.logprobs)
            return Outcome(200, body)
        except STTError as exc:
            return Outcome(status_of(exc, OPENAI_AUDIO_STATUSES), body_of(exc, OPENAI_FIELDS))

    @contextmanager
    def _audio(self, request: LineRequest, owner: str | None) -> Iterator[Path]:
        if request.file_id is not None:
            yield self.files.path(request.file_id, owner)
            return
        assert request.url is not None
        settings = self.settings
        with fetched(request.url, settings.max_audio_bytes, settings.url_timeout_s, settings.allowed_hosts) as path:
            yield path


@contextmanager
def _cancelled_after(deadline: Deadline) -> Iterator[threading.Event]:
    """An event set once the deadline has passed: the transcriber drops the clips not decoded yet."""
    cancelled = threading.Event()
    timer = threading.Timer(max(deadline.remaining_s, 0.0), cancelled.set)
    timer.daemon = True
    timer.start()
    try:
        yield cancelled
    finally:
        timer.cancel()
