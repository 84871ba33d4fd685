"""A batch line's ``body`` read as the synchronous route reads its form: the same fields, checked by the same
function (``transcription_fields``, ``translation_fields``), the audio named by ``file`` (a file id of
``/v1/files``) or ``url`` (``http(s)://``, fetched by the server) instead of uploaded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError, validate_call

from core.errors import InvalidInputError

from ..audio.transcription_form import TranscriptionForm, transcription_fields, translation_fields

TRANSCRIPTIONS = "/v1/audio/transcriptions"
TRANSLATIONS = "/v1/audio/translations"
_FIELDS = {
    TRANSCRIPTIONS: validate_call(transcription_fields),
    TRANSLATIONS: validate_call(translation_fields),
}


@dataclass(frozen=True)
class LineRequest:
    form: TranscriptionForm
    file_id: str | None
    url: str | None


def line_request(endpoint: str, body: dict[str, Any]) -> LineRequest:
    """The line's request, checked; ``InvalidInputError`` naming the field at fault."""
    fields = {key.removesuffix("[]"): value for key, value in body.items()}
    file_id, url = fields.pop("file", None), fields.pop("url", None)
    if (file_id is None) == (url is None):
        raise InvalidInputError("Give the audio as either file (a file id) or url, not both nor neither.",
                                input="file")
    if file_id is not None and (not isinstance(file_id, str) or not file_id):
        raise InvalidInputError("file must be the id of a file uploaded to /v1/files.", input="file")
    if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
        raise InvalidInputError("url must be an http:// or https:// URL.", input="url")
    if fields.get("stream") not in (None, False, "false"):
        raise InvalidInputError("stream is not available in a batch.", input="stream")
    chunking = fields.get("chunking_strategy")
    if isinstance(chunking, dict):  # a JSON object where the form has a JSON string or chunking_strategy[...] fields
        fields["chunking_fields"] = fields.pop("chunking_strategy")
    elif "chunking_fields" in fields:
        raise InvalidInputError("Unknown parameter: 'chunking_fields'.", input="chunking_fields")
    try:
        form = _FIELDS[endpoint](**fields)
    except ValidationError as exc:
        raise _invalid(exc) from None
    return LineRequest(form, file_id, url)


def _invalid(exc: ValidationError) -> InvalidInputError:
    first = exc.errors()[0]
    location = [str(part) for part in first.get("loc", ())]
    param = location[0] if location else None
    if first.get("type") == "unexpected_keyword_argument":
        return InvalidInputError(f"Unknown parameter: '{param}'.", input=param)
    return InvalidInputError(f"Invalid value for '{param}': {first.get('msg', 'invalid input')}", input=param)
