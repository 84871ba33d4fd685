"""Per-request accounting at the edge: Prometheus counters and one log line for every request, whatever
its outcome (domain errors are counted with the status the client saw)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from core import metrics
from core.errors import ErrorKind, STTError
from core.registry import ModelRegistry

from ..edge.errors import status_of
from .request_log import log_request

CLIENT_CLOSED = 499  # nginx's status for a client that left before the answer was complete


class RequestMeter:
    def __init__(self, model: str, log_transcripts: bool, statuses: Mapping[ErrorKind, int] = {}) -> None:
        self.model = model
        self.log_transcripts = log_transcripts
        self.statuses = statuses
        """The route's own statuses for some kinds of error (see ``errors.status_of``)."""
        self.finished = False

    def succeeded(self, audio_seconds: float, processing_seconds: float, text: str | None = None) -> None:
        self.finished = True
        metrics.record_success(self.model, audio_seconds, processing_seconds)
        log_request(
            model=self.model,
            status=200,
            audio_s=audio_seconds,
            processing_s=processing_seconds,
            text=text if self.log_transcripts else None,
        )

    def failed(self, status: int, code: str) -> None:
        self.finished = True
        metrics.record_error(self.model, code)
        log_request(model=self.model, status=status, error_code=code)

    def failed_with(self, exc: STTError) -> None:
        """A domain error, counted with the status the route answers it with."""
        self.failed(status_of(exc, self.statuses), exc.code)

    def abandoned(self) -> None:
        """The client left before the answer was complete (a stream it closed)."""
        if not self.finished:
            self.failed(CLIENT_CLOSED, "client_closed_request")


@contextmanager
def metered(
    registry: ModelRegistry, requested_model: str, log_transcripts: bool, statuses: Mapping[ErrorKind, int] = {}
) -> Iterator[RequestMeter]:
    """A meter for one request; an exception escaping the block is counted as its failure (with the route's own
    ``statuses``, see ``errors.status_of``)."""
    meter = RequestMeter(requested_model if requested_model in registry else "unknown", log_transcripts, statuses)
    try:
        yield meter
    except STTError as exc:
        meter.failed_with(exc)
        raise
    except Exception:
        meter.failed(500, "internal_error")
        raise
