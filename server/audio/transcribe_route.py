"""The ``/transcribe`` route's work: build the request's options, transcribe off the event loop, answer
with the full result or with an OpenAI error body whose ``param`` names this route's fields."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse

from core.errors import STTError
from core.types import DiarizeOptions, Task, TranscribeOptions, Transcription
from pipeline.transcriber import Transcriber

from ..collaborators import RouteSettings
from ..edge.errors import TRANSCRIBE_FIELDS, error_response
from ..observability.metering import metered
from .transcribe_call import transcribe_metered


class TranscribeResponse(Transcription):
    """The ``/transcribe`` response body: the transcription, the model that made it and the inference time."""

    model_id: str
    processing_time_s: float


async def transcribe_upload(
    request: Request,
    transcriber: Transcriber,
    settings: RouteSettings,
    file: Path,
    model_id: str | None,
    language: str | None,
    task: Task,
    word_timestamps: bool,
    diarize: bool,
    num_speakers: int | None,
    min_speakers: int | None,
    max_speakers: int | None,
) -> TranscribeResponse | JSONResponse:
    try:
        with metered(transcriber.registry, model_id or transcriber.default_model, settings.log_transcripts) as meter:
            options = TranscribeOptions(language=language, task=task, word_timestamps=word_timestamps)
            speakers = DiarizeOptions(num_speakers, min_speakers, max_speakers) if diarize else None
            result = await transcribe_metered(request, transcriber, settings, meter, file, model_id, options, speakers)
    except STTError as exc:
        return error_response(exc, TRANSCRIBE_FIELDS)
    return TranscribeResponse(
        **result.transcription.model_dump(), model_id=result.model_id, processing_time_s=round(result.processing_s, 4)
    )
