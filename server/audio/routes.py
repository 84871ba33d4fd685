"""OpenAI's audio routes: ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/translations``.

Clients that speak OpenAI's audio API (the official SDKs included) work by changing only ``base_url``.
``whisper-1`` names the configured default model.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sse_starlette import EventSourceResponse

from core.errors import InvalidInputError, STTError
from core.types import DiarizeOptions, Segment, TranscribeOptions
from pipeline.transcriber import Transcriber

from ..collaborators import RouteSettings, RouteSettingsDep, TranscriberDep
from ..edge.errors import OPENAI_AUDIO_STATUSES, OPENAI_FIELDS, body_of, status_of
from ..models.names import requested_model
from ..observability.metering import RequestMeter, metered
from ..streaming import iterate_in_thread
from .formats import DIARIZED_FORMATS, MEDIA_TYPES, diarized_segments, logprobs_of, render, token_usage
from .speaker_references import MAX_REFERENCE_FIELD_BYTES
from .transcribe_call import transcribe_metered
from .transcription_form import TranscriptionForm, check_common, transcription_form

router = APIRouter()


async def _respond(
    request: Request,
    settings: RouteSettings,
    transcriber: Transcriber,
    meter: RequestMeter,
    file: UploadFile,
    model_id: str | None,
    options: TranscribeOptions,
    response_format: str,
    granularities: set[str],
    speakers: DiarizeOptions | None = None,
) -> Response:
    result = await transcribe_metered(request, transcriber, settings, meter, file.file, model_id, options, speakers)
    body = render(result.transcription, response_format, options.task, granularities, options.logprobs)
    if isinstance(body, dict):
        return JSONResponse(body)
    return PlainTextResponse(body, media_type=MEDIA_TYPES[response_format])


async def _stream(
    transcriber: Transcriber,
    meter: RequestMeter,
    file: UploadFile,
    model_id: str | None,
    options: TranscribeOptions,
    speakers: DiarizeOptions | None = None,
) -> Response:
    """``transcript.text.delta`` events as segments are decoded; with ``speakers`` (``diarized_json``), then one
    ``transcript.text.segment`` per speaker turn once the diarizer has heard the whole file; then
    ``transcript.text.done``."""
    stream = await anyio.to_thread.run_sync(transcriber.open_stream, file.file, model_id, options, speakers)
    started = time.perf_counter()
    segments = iterate_in_thread(stream.segments)
    # Pull the first segment before answering, so that a busy or missing model still gets a plain error response.
    try:
        first = await anext(segments)
    except StopAsyncIteration:
        first = None

    async def events() -> Any:
        decoded: list[Segment] = []
        try:
            if first is not None:
                decoded.append(first)
                yield _event(_delta(first, options))
                async for segment in segments:
                    decoded.append(segment)
                    yield _event(_delta(segment, options))
            for turn in diarized_segments(stream.speaker_segments or []):
                yield _event(turn)
            text = "".join(segment.text for segment in decoded).strip()
            done: dict[str, Any] = {"type": "transcript.text.done", "text": text}
            if options.logprobs:
                done["logprobs"] = logprobs_of(decoded)
            if (usage := token_usage(stream.duration, decoded)) is not None:
                done["usage"] = usage
            yield _event(done)
            meter.succeeded(stream.duration, time.perf_counter() - started, text)
        except STTError as exc:  # after the answer started (a later clip, the diarizer): an error event ends it
            meter.failed(status_of(exc, OPENAI_AUDIO_STATUSES), exc.code)
            yield _event(body_of(exc, OPENAI_FIELDS))
        finally:
            meter.abandoned()

    return EventSourceResponse(events(), ping=15)


def _delta(segment: Segment, options: TranscribeOptions) -> dict[str, Any]:
    """``transcript.text.delta`` (with the segment's tokens' ``logprobs`` when asked for), with the segment's
    ``start`` and ``end`` (and ``words``, with word timestamps) as extensions: what a client needs to show timed
    segments and progress while the transcript streams in."""
    event: dict[str, Any] = {
        "type": "transcript.text.delta", "delta": segment.text, "start": segment.start, "end": segment.end
    }
    if options.logprobs:
        event["logprobs"] = logprobs_of([segment])
    if options.word_timestamps and segment.words:
        event["words"] = [{"word": w.word.strip(), "start": w.start, "end": w.end} for w in segment.words]
    return event


def _event(payload: dict[str, Any]) -> dict[str, str]:
    return {"data": json.dumps(payload)}


@router.post("/audio/transcriptions", form_limits={"max_part_size": MAX_REFERENCE_FIELD_BYTES})
async def create_transcription(
    request: Request,
    transcriber: TranscriberDep,
    settings: RouteSettingsDep,
    file: Annotated[UploadFile, File()],
    form: Annotated[TranscriptionForm, Depends(transcription_form)],
) -> Response:
    """OpenAI's transcription route; its parameters are read and checked in ``transcription_form``.
    ``diarized_json`` (and the ``jsonl`` extension: one speaker turn per line) label speakers."""
    model_id = form.model_id
    default = transcriber.default_model
    with metered(transcriber.registry, model_id or default, settings.log_transcripts, OPENAI_AUDIO_STATUSES) as meter:
        if form.stream:
            return await _stream(transcriber, meter, file, model_id, form.options, form.speakers)
        return await _respond(
            request, settings, transcriber, meter, file, model_id, form.options, form.response_format,
            set(form.granularities), form.speakers,
        )


@router.post("/audio/translations")
async def create_translation(
    request: Request,
    transcriber: TranscriberDep,
    settings: RouteSettingsDep,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
) -> Response:
    check_common(response_format, temperature)
    if response_format in DIARIZED_FORMATS:
        raise InvalidInputError("Diarized responses are only available for transcriptions.", input="response_format")
    model_id = requested_model(model)
    options = TranscribeOptions(task="translate", initial_prompt=prompt or None, temperature=temperature)
    default = transcriber.default_model
    with metered(transcriber.registry, model_id or default, settings.log_transcripts, OPENAI_AUDIO_STATUSES) as meter:
        return await _respond(
            request, settings, transcriber, meter, file, model_id, options, response_format, set()
        )


AUDIO_ROUTES = (create_transcription, create_translation)
"""The routes whose errors take OpenAI's audio statuses (``OPENAI_AUDIO_STATUSES``)."""
