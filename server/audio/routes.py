"""OpenAI's audio routes: ``POST /v1/audio/transcriptions`` and ``POST /v1/audio/translations``, and beside them
``POST /v1/audio/diarizations`` (``diarization_route``).

Clients that speak OpenAI's audio API (the official SDKs included) work by changing only ``base_url``.
``whisper-1`` names the configured default model.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from core.types import DiarizeOptions, TranscribeOptions
from pipeline.transcriber import Transcriber

from ..collaborators import RouteSettings, RouteSettingsDep, TranscriberDep
from ..edge.errors import OPENAI_AUDIO_STATUSES
from ..observability.metering import RequestMeter, metered
from .diarization_route import create_diarization
from .diarization_route import router as diarization_router
from pipeline.response_formats import MEDIA_TYPES, render
from .speaker_references import MAX_REFERENCE_FIELD_BYTES
from .transcribe_call import transcribe_metered
from .transcription_form import TranscriptionForm, one_file, transcription_form, translation_fields
from .transcription_stream import transcription_stream

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


@router.post(
    "/audio/transcriptions",
    form_limits={"max_part_size": MAX_REFERENCE_FIELD_BYTES},
    dependencies=[Depends(one_file)],
)
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
            return await transcription_stream(
                transcriber, meter, file.file, model_id, form.options, form.speakers, settings.request_timeout_s
            )
        return await _respond(
            request, settings, transcriber, meter, file, model_id, form.options, form.response_format,
            set(form.granularities), form.speakers,
        )


@router.post("/audio/translations", dependencies=[Depends(one_file)])
async def create_translation(
    request: Request,
    transcriber: TranscriberDep,
    settings: RouteSettingsDep,
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form()] = "whisper-1",
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
    seed: Annotated[int | None, Form()] = None,
) -> Response:
    form = translation_fields(
        model=model, prompt=prompt, response_format=response_format, temperature=temperature, seed=seed
    )
    default = transcriber.default_model
    with metered(
        transcriber.registry, form.model_id or default, settings.log_transcripts, OPENAI_AUDIO_STATUSES
    ) as meter:
        return await _respond(
            request, settings, transcriber, meter, file, form.model_id, form.options, form.response_format, set()
        )


router.include_router(diarization_router)

AUDIO_ROUTES = (create_transcription, create_translation, create_diarization)
"""The routes whose errors take OpenAI's audio statuses (``OPENAI_AUDIO_STATUSES``)."""
