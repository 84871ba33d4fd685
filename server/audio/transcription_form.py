"""One place that reads and checks ``POST /v1/audio/transcriptions``' form: raw form values in, the domain's
options out (``TranscribeOptions``, ``DiarizeOptions``, ``VadSettings``), or an ``InvalidInputError`` naming
the parameter at fault.

A new form parameter is one ``Form()`` argument of ``transcription_form`` and, when the route needs it, one
field of ``TranscriptionForm``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Form, Request

from core.errors import InvalidInputError
from core.types import DiarizeOptions, TranscribeOptions
from core.vad import OPENAI_SERVER_VAD, VadSettings

from ..edge.json_input import JSONInputError, load_json
from pipeline.response_formats import DIARIZED_FORMATS, RESPONSE_FORMATS
from ..models.names import requested_model
from .speaker_references import known_speakers_of

GRANULARITIES = frozenset({"segment", "word"})
VAD_FIELDS = {"threshold": float, "prefix_padding_ms": int, "silence_duration_ms": int}
"""``chunking_strategy``'s ``server_vad`` fields and their types (OpenAI's ``ChunkingStrategyVadConfig``)."""


@dataclass(frozen=True)
class TranscriptionForm:
    """A transcription request's parameters, checked."""

    model_id: str | None
    """The registry id; None for the default model."""
    options: TranscribeOptions
    response_format: str
    granularities: frozenset[str]
    stream: bool
    speakers: DiarizeOptions | None
    """Set for diarized formats."""


async def one_file(request: Request) -> None:
    """The audio routes take one ``file`` part: a second one is refused (a dependency of both routes), where it was
    ignored without a word."""
    files = (await request.form()).getlist("file")  # the form FastAPI has already read
    if len(files) > 1:
        raise InvalidInputError(f"Send one file per request, not {len(files)}.", input="file")


def check_common(response_format: str, temperature: float) -> None:
    """The checks transcriptions and translations share."""
    if response_format not in RESPONSE_FORMATS:
        raise InvalidInputError(
            f"Invalid response_format {response_format!r}: use one of {', '.join(RESPONSE_FORMATS)}.",
            input="response_format",
        )
    if not 0.0 <= temperature <= 1.0:
        raise InvalidInputError("temperature must be between 0 and 1.", input="temperature")


def granularities_of(values: list[str] | None, response_format: str) -> frozenset[str]:
    """``segment`` goes with any format (segments are what every format is made of); ``word`` needs
    ``verbose_json``, the only format that carries words."""
    granularities = frozenset(values or [])
    if unknown := granularities - GRANULARITIES:
        raise InvalidInputError(
            f"Invalid timestamp_granularities {sorted(unknown)}: use 'segment' and/or 'word'.",
            input="timestamp_granularities",
        )
    if "word" in granularities and response_format != "verbose_json":
        raise InvalidInputError(
            "timestamp_granularities=word requires response_format=verbose_json.", input="timestamp_granularities"
        )
    return granularities


INCLUDABLE = frozenset({"logprobs"})


def logprobs_of(include: list[str] | None, response_format: str) -> bool:
    """``include[]=logprobs``: token log-probabilities in the ``json`` response (and in streamed deltas), the one
    format OpenAI returns them in."""
    values = set(include or [])
    if unknown := values - INCLUDABLE:
        raise InvalidInputError(f"Invalid include {sorted(unknown)}: only 'logprobs' can be included.", input="include")
    if values and response_format != "json":
        raise InvalidInputError("include[]=logprobs requires response_format=json.", input="include")
    return bool(values)


def keywords_of(values: list[str] | None) -> tuple[str, ...]:
    """``keywords[]``: words and names to bias decoding towards, blank ones dropped, each once (their bounds are the
    request preparation's, ``pipeline.preparation.check_keywords``)."""
    return tuple(dict.fromkeys(value.strip() for value in values or [] if value.strip()))


def _invalid_chunking(message: str) -> InvalidInputError:
    return InvalidInputError(f"Invalid chunking_strategy: {message}", input="chunking_strategy")


def chunking_of(value: str | None, fields: dict[str, str | None]) -> VadSettings | None:
    """``chunking_strategy``: ``auto`` (or nothing: the server's own cutting, None), or a ``server_vad`` object,
    sent as a JSON string or, as OpenAI's SDKs send it, as ``chunking_strategy[type]``, ... form fields."""
    sent = {key: item for key, item in fields.items() if item is not None}
    if value is not None and sent:
        raise _invalid_chunking("send it either as one JSON value or as chunking_strategy[...] fields, not both.")
    config: Any
    if sent:
        config = sent
    elif value is None or value.strip() in ("", "auto", '"auto"'):
        return None
    else:
        try:
            config = load_json(value, "chunking_strategy")
        except JSONInputError as exc:
            raise _invalid_chunking(
                f"{exc.message} Use 'auto' or a JSON object such as {{\"type\": \"server_vad\"}}."
            ) from None
    if not isinstance(config, dict):
        raise _invalid_chunking("use 'auto' or a JSON object such as {\"type\": \"server_vad\"}.")
    if config.get("type") != "server_vad":
        raise _invalid_chunking(f"type must be 'server_vad', not {config.get('type')!r}.")
    if unknown := set(config) - {"type", *VAD_FIELDS}:
        raise _invalid_chunking(f"unknown fields {sorted(unknown)}.")
    values: dict[str, Any] = {}
    for name, kind in VAD_FIELDS.items():
        if name in config:
            values[name] = _number(name, config[name], kind)
    try:
        return replace(OPENAI_SERVER_VAD, **values)
    except ValueError as exc:  # out of VadSettings' bounds
        raise InvalidInputError(f"chunking_strategy.{exc}", input="chunking_strategy") from None


def _number(name: str, raw: Any, kind: type) -> float | int:
    try:
        if isinstance(raw, bool):
            raise ValueError
        number = float(raw)
        if kind is int:
            if not number.is_integer():
                raise ValueError
            return int(number)
        return number
    except (TypeError, ValueError):
        raise _invalid_chunking(f"{name} must be {'an integer' if kind is int else 'a number'}.") from None


def transcription_form(
    model: Annotated[str, Form()] = "whisper-1",
    language: Annotated[str | None, Form()] = None,
    prompt: Annotated[str | None, Form()] = None,
    response_format: Annotated[str, Form()] = "json",
    temperature: Annotated[float, Form()] = 0.0,
    seed: Annotated[int | None, Form()] = None,
    timestamp_granularities: Annotated[list[str] | None, Form(alias="timestamp_granularities[]")] = None,
    stream: Annotated[bool, Form()] = False,
    chunking_strategy: Annotated[str | None, Form()] = None,
    chunking_type: Annotated[str | None, Form(alias="chunking_strategy[type]")] = None,
    chunking_threshold: Annotated[str | None, Form(alias="chunking_strategy[threshold]")] = None,
    chunking_prefix_padding_ms: Annotated[str | None, Form(alias="chunking_strategy[prefix_padding_ms]")] = None,
    chunking_silence_duration_ms: Annotated[str | None, Form(alias="chunking_strategy[silence_duration_ms]")] = None,
    num_speakers: Annotated[int | None, Form()] = None,
    min_speakers: Annotated[int | None, Form()] = None,
    max_speakers: Annotated[int | None, Form()] = None,
    include: Annotated[list[str] | None, Form(alias="include[]")] = None,
    keywords: Annotated[list[str] | None, Form(alias="keywords[]")] = None,
    known_speaker_names: Annotated[list[str] | None, Form(alias="known_speaker_names[]")] = None,
    known_speaker_references: Annotated[list[str] | None, Form(alias="known_speaker_references[]")] = None,
) -> TranscriptionForm:
    """The transcription route's form (a FastAPI dependency): its fields, checked by ``transcription_fields``.
    OpenAI's SDKs send ``chunking_strategy`` as ``chunking_strategy[type]``, ... form fields."""
    chunking_fields = {
        "type": chunking_type,
        "threshold": chunking_threshold,
        "prefix_padding_ms": chunking_prefix_padding_ms,
        "silence_duration_ms": chunking_silence_duration_ms,
    }
    return transcription_fields(
        model=model, language=language, prompt=prompt, response_format=response_format, temperature=temperature,
        seed=seed, timestamp_granularities=timestamp_granularities, stream=stream, chunking_strategy=chunking_strategy,
        chunking_fields=chunking_fields, num_speakers=num_speakers, min_speakers=min_speakers,
        max_speakers=max_speakers, include=include, keywords=keywords, known_speaker_names=known_speaker_names,
        known_speaker_references=known_speaker_references,
    )


def transcription_fields(
    *,
    model: str = "whisper-1",
    language: str | None = None,
    prompt: str | None = None,
    response_format: str = "json",
    temperature: float = 0.0,
    seed: int | None = None,
    timestamp_granularities: list[str] | None = None,
    stream: bool = False,
    chunking_strategy: str | None = None,
    chunking_fields: dict[str, Any] | None = None,
    num_speakers: int | None = None,
    min_speakers: int | None = None,
    max_speakers: int | None = None,
    include: list[str] | None = None,
    keywords: list[str] | None = None,
    known_speaker_names: list[str] | None = None,
    known_speaker_references: list[str] | None = None,
) -> TranscriptionForm:
    """The one check of a transcription request's fields, whatever carried them (the route's multipart form, a
    batch's JSON line). ``num_speakers``/``min_speakers``/``max_speakers``
    are extensions that guide diarization (``diarized_json``, ``jsonl``); ``known_speaker_names[]`` with
    ``known_speaker_references[]`` name the speakers whose voices match (their clips are decoded here). ``seed`` (as
    vLLM takes it) seeds the temperature fallback's sampling instead of the seed drawn from the request itself.
    ``chunking_strategy`` is a JSON string (or ``auto``), or its fields are in ``chunking_fields``."""
    check_common(response_format, temperature)
    granularities = granularities_of(timestamp_granularities, response_format)
    vad = chunking_of(chunking_strategy, chunking_fields or {})
    diarized = response_format in DIARIZED_FORMATS
    known_speakers = known_speakers_of(known_speaker_names, known_speaker_references, diarized)
    speakers = None
    if diarized:
        speakers = DiarizeOptions(num_speakers, min_speakers, max_speakers, known_speakers)
        if stream and response_format != "diarized_json":
            raise InvalidInputError(f"stream=true cannot be combined with response_format={response_format}.", input="stream")
    options = TranscribeOptions(
        language=language,
        task="transcribe",
        word_timestamps="word" in granularities,
        initial_prompt=prompt or None,
        temperature=temperature,
        vad=vad,
        keywords=keywords_of(keywords),
        logprobs=logprobs_of(include, response_format),
        seed=seed,
    )
    return TranscriptionForm(requested_model(model), options, response_format, granularities, stream, speakers)


def translation_fields(
    *,
    model: str = "whisper-1",
    prompt: str | None = None,
    response_format: str = "json",
    temperature: float = 0.0,
    seed: int | None = None,
) -> TranscriptionForm:
    """The one check of a translation request's fields (the route's form, a batch's JSON line)."""
    check_common(response_format, temperature)
    if response_format in DIARIZED_FORMATS:
        raise InvalidInputError("Diarized responses are only available for transcriptions.", input="response_format")
    options = TranscribeOptions(task="translate", initial_prompt=prompt or None, temperature=temperature, seed=seed)
    return TranscriptionForm(requested_model(model), options, response_format, frozenset(), False, None)
