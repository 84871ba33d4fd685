"""The ``/transcribe`` route's work: its form checked into the domain's options, the transcription run off the
event loop, and the full result, or an OpenAI error body whose ``param`` names this route's fields."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class TranscribeForm:
    """``/transcribe``'s parameters as its BentoML API takes them (the file aside)."""

    model_id: str | None = None
    language: str | None = None
    task: Task = "transcribe"
    word_timestamps: bool = False
    diarize: bool = False
    num_speakers: int | None = None
    min_speakers: int | None = None
    max_speakers: int | None = None

    def options(self) -> TranscribeOptions:
        """How to decode; InvalidInputError naming the parameter at fault."""
        return TranscribeOptions(language=self.language, task=self.task, word_timestamps=self.word_timestamps)

    def speakers(self) -> DiarizeOptions | None:
        """How to diarize, with ``diarize``; InvalidInputError naming the parameter at fault."""
        if not self.diarize:
            return None
        return DiarizeOptions(self.num_speakers, self.min_speakers, self.max_speakers)


class TranscribeResponse(Transcription):
    """The ``/transcribe`` response body: the transcription, the model that made it and the inference time."""

    model_id: str
    processing_time_s: float


async def transcribe_upload(
    request: Request, transcriber: Transcriber, settings: RouteSettings, file: Path, form: TranscribeForm
) -> TranscribeResponse | JSONResponse:
    try:
        model_id = form.model_id
        with metered(transcriber.registry, model_id or transcriber.default_model, settings.log_transcripts) as meter:
            # Checked inside the meter: a refused form is counted as the request's failure.
            options, speakers = form.options(), form.speakers()
            result = await transcribe_metered(request, transcriber, settings, meter, file, model_id, options, speakers)
    except STTError as exc:
        return error_response(exc, TRANSCRIBE_FIELDS)
    return TranscribeResponse(
        **result.transcription.model_dump(), model_id=result.model_id, processing_time_s=round(result.processing_s, 4)
    )
