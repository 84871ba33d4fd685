"""``POST /v1/audio/diarizations``: who spoke when, without a transcript (JSON, or RTTM for pyannote users).

The upload goes through the transcriptions' path: the same edge (API keys, upload limit, error bodies), the
transcriber's decode (duration limit, audio memory budget, decode slots), the model pool and the request log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from core.errors import InvalidInputError
from core.types import DiarizeOptions

from ..collaborators import RouteSettingsDep, TranscriberDep
from ..edge.disconnect import run_while_connected
from ..edge.errors import OPENAI_AUDIO_STATUSES
from ..observability.metering import metered
from .diarization_formats import DIARIZATION_FORMATS, RTTM_MEDIA_TYPE, rttm_file_id, to_json, to_rttm
from .transcription_form import one_file

router = APIRouter()


@dataclass(frozen=True)
class DiarizationForm:
    """A diarization request's parameters, checked."""

    model_id: str | None
    """A diarization model of the registry; None for the server's diarizer."""
    speakers: DiarizeOptions
    response_format: str


def diarization_form(
    model: Annotated[str | None, Form()] = None,
    num_speakers: Annotated[int | None, Form()] = None,
    min_speakers: Annotated[int | None, Form()] = None,
    max_speakers: Annotated[int | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
) -> DiarizationForm:
    """The route's form (a FastAPI dependency); the speaker counts are checked where every route's are
    (``DiarizeOptions``), each refusal naming its field."""
    if response_format not in DIARIZATION_FORMATS:
        raise InvalidInputError(
            f"Invalid response_format {response_format!r}: use one of {', '.join(DIARIZATION_FORMATS)}.",
            input="response_format",
        )
    speakers = DiarizeOptions(num_speakers, min_speakers, max_speakers)
    return DiarizationForm(model or None, speakers, response_format)


@router.post("/audio/diarizations", dependencies=[Depends(one_file)])
async def create_diarization(
    request: Request,
    transcriber: TranscriberDep,
    settings: RouteSettingsDep,
    file: Annotated[UploadFile, File()],
    form: Annotated[DiarizationForm, Depends(diarization_form)],
) -> Response:
    """Speaker turns of the upload: ``json`` (``duration``, ``speakers``, ``segments``) or ``rttm``."""
    meter_model = form.model_id or transcriber.diarizer_id or "diarization"
    with metered(transcriber.registry, meter_model, settings.log_transcripts, OPENAI_AUDIO_STATUSES) as meter:
        result = await run_while_connected(
            request,
            lambda cancelled: transcriber.diarize(file.file, form.model_id, form.speakers, cancelled),
            settings.request_timeout_s,
        )
        meter.succeeded(result.duration, result.processing_s)
    if form.response_format == "rttm":
        return PlainTextResponse(to_rttm(result.turns, rttm_file_id(file.filename)), media_type=RTTM_MEDIA_TYPE)
    return JSONResponse(to_json(result.turns, result.duration))
