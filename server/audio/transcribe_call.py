"""One transcription for an HTTP request, shared by ``/transcribe`` and ``/v1``: the transcriber runs on a
worker thread while the connection is watched, and a success is recorded on the request's meter."""

from __future__ import annotations

from starlette.requests import Request

from core.audio import AudioSource
from core.types import DiarizeOptions, TranscribeOptions, TranscriptionResult
from pipeline.transcriber import Transcriber

from ..collaborators import RouteSettings
from ..edge.disconnect import run_while_connected
from ..observability.metering import RequestMeter


async def transcribe_metered(
    request: Request,
    transcriber: Transcriber,
    settings: RouteSettings,
    meter: RequestMeter,
    audio: AudioSource,
    model_id: str | None,
    options: TranscribeOptions,
    speakers: DiarizeOptions | None,
) -> TranscriptionResult:
    result = await run_while_connected(
        request,
        lambda cancelled: transcriber.transcribe(audio, model_id, options, speakers, cancelled),
        settings.request_timeout_s,
    )
    transcription = result.transcription
    meter.succeeded(transcription.duration, result.processing_s, transcription.text)
    return result
