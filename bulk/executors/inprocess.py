"""The inprocess executor: the project's own transcriber in this process, no server: for one machine, and what the
cluster executors run inside each worker.

The transcriber is built as the server builds it (``pipeline.factory`` from the ``STT_*`` settings and
``models.yaml``), so the same settings give the same models, limits and results. A result file holds the
transcription itself (text, language, duration, segments), not an OpenAI response format: those are the server's
renderings. A domain error the same item would hit again (undecodable or too long audio, an unknown model) is a
permanent failure; an overloaded or unavailable model is tried again after a pause.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from core.errors import ErrorKind, STTError
from core.types import DiarizeOptions, TranscribeOptions
from pipeline.response_formats import render
from pipeline.transcriber import Transcriber

from ..audio_sources import DEFAULT_MAX_AUDIO_BYTES, AudioSourceError, load_audio
from ..manifest import Item
from .base import Done, ExecutorStats, Failed, GaveUp, Outcome, outcomes_from_threads, response_format_of

TRANSIENT_KINDS = frozenset({ErrorKind.OVERLOADED, ErrorKind.UNAVAILABLE, ErrorKind.TIMED_OUT})


def build_transcriber_from_settings() -> Transcriber:
    """The transcriber the server would build from this environment's ``STT_*`` settings."""
    from pipeline.factory import build_transcriber
    from server.settings import Settings

    return build_transcriber(Settings())


class InprocessExecutor:
    name = "inprocess"

    def __init__(
        self,
        transcriber: Transcriber,
        concurrency: int | None = None,
        max_attempts: int = 5,
        retry_pause_s: float = 1.0,
        max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES,
    ) -> None:
        self.transcriber = transcriber
        self.concurrency = concurrency or len(os.sched_getaffinity(0))
        """Items in flight: the pool batches their clips over the engine's workers."""
        self.max_attempts = max_attempts
        self.retry_pause_s = retry_pause_s
        self.max_audio_bytes = max_audio_bytes
        self.worker = f"inprocess:{os.uname().nodename}:{os.getpid()}"
        self.stats = ExecutorStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, items: Sequence[Item]) -> Iterator[Outcome]:
        stop = self._stop = threading.Event()  # one per run: an executor runs again after a run stopped
        yield from outcomes_from_threads(items, self.concurrency, self._one, stop, "bulk-inprocess")

    def close(self) -> None:
        self._stop.set()
        self.transcriber.pool.close()

    def _one(self, item: Item) -> Outcome:
        try:
            audio = load_audio(item.audio, self.max_audio_bytes)
        except AudioSourceError as exc:
            return Failed(item, None, exc.body(), worker="runner") if exc.permanent else GaveUp(item, str(exc))
        options = TranscribeOptions(language=item.language, task=item.task, initial_prompt=item.prompt or None,
                                    temperature=0.0)
        diarize = DiarizeOptions(num_speakers=item.num_speakers) if item.diarize else None
        reason = ""
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                with self._lock:
                    self.stats.retries += 1
            try:
                result = self.transcriber.transcribe(io.BytesIO(audio.data), item.model, options, diarize)
            except STTError as exc:
                if exc.kind not in TRANSIENT_KINDS:
                    return Failed(item, None, domain_error_body(exc), self.worker, attempt)
                reason = exc.message
                time.sleep(exc.retry_after_s or self.retry_pause_s)
                continue
            transcription = result.transcription
            with self._lock:
                self.stats.per_worker[self.worker] = self.stats.per_worker.get(self.worker, 0) + 1
            # The body the server's route gives for the same request (pipeline.response_formats), so that an id's
            # output is the same whichever executor made it.
            response = render(transcription, response_format_of(item), item.task, set())
            return Done(item, response, transcription.text, transcription.duration, self.worker,
                        model=result.model_id, attempts=attempt)
        return GaveUp(item, reason or "retries exhausted", self.max_attempts)


def domain_error_body(exc: STTError) -> dict[str, Any]:
    """A domain error in OpenAI's error shape, its kind as the type (no HTTP status: there is no server)."""
    return {"error": {"message": exc.message, "type": exc.kind.value, "param": exc.input, "code": exc.code}}
