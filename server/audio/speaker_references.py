"""``known_speaker_names[]`` with ``known_speaker_references[]``: each name's clip of the speaker's voice, sent as a
base64 data URL (``data:audio/wav;base64,...``, any format FFmpeg reads), decoded to the domain's ``KnownSpeaker``."""

from __future__ import annotations

import binascii
import io

import numpy as np

from core.audio import decode_audio
from core.errors import InvalidInputError, STTError, TooLargeError
from core.types import MAX_KNOWN_SPEAKERS, MAX_REFERENCE_S, MIN_REFERENCE_S, KnownSpeaker, check_speaker_name

from ..edge.data_urls import decode_base64, parse_data_url, unwrapped

MAX_REFERENCE_FIELD_BYTES = 8 * 2**20
"""A form field's size limit on the transcription route (Starlette's default is 1 MiB): room for a reference of
10 s of 48 kHz stereo 32-bit audio in base64 (5.1 MB), which is decoded and checked for length afterwards."""


def data_url_bytes(url: str) -> bytes:
    """The bytes a base64 ``data:`` URL holds (whitespace in its data is ignored); ValueError for anything else."""
    parsed = parse_data_url(url.strip())
    if parsed is None or not parsed.base64:
        raise ValueError("it is not a base64 data URL (data:audio/wav;base64,<the file in base64>)")
    try:
        data = decode_base64(unwrapped(parsed.data))
    except binascii.Error:
        raise ValueError("its base64 data is malformed") from None
    if not data:
        raise ValueError("it holds no data")
    return data


def known_speakers_of(
    names: list[str] | None, references: list[str] | None, diarized: bool
) -> tuple[KnownSpeaker, ...]:
    """The known speakers a request names, each with its reference decoded to 16 kHz mono. ``diarized``: the
    response format labels speakers (only those can carry the names)."""
    names, references = names or [], references or []
    if not names and not references:
        return ()
    if not diarized:
        raise InvalidInputError(
            "known_speaker_names[] need a response_format that labels speakers: diarized_json (or jsonl).",
            input="known_speaker_names",
        )
    if len(names) != len(references):
        raise InvalidInputError(
            f"known_speaker_references[] must hold one reference for each of known_speaker_names[]: "
            f"{len(references)} references for {len(names)} names.",
            input="known_speaker_references",
        )
    if len(names) > MAX_KNOWN_SPEAKERS:  # before any decoding
        raise InvalidInputError(
            f"At most {MAX_KNOWN_SPEAKERS} known speakers can be given, not {len(names)}.", input="known_speaker_names"
        )
    for name in names:  # before any decoding
        check_speaker_name(name.strip())
    return tuple(
        KnownSpeaker(name.strip(), _reference_audio(index, url))
        for index, (name, url) in enumerate(zip(names, references, strict=True))
    )


_DECODE_LIMIT_S = MAX_REFERENCE_S + 1.0
"""Decoding stops past this; ``KnownSpeaker`` holds the exact bounds (a decode counting frame durations may pass
10 s by a rounding error on a clip of exactly 10 s)."""


def _reference_audio(index: int, url: str) -> np.ndarray:
    """One reference's audio, through the service's one decoder."""
    try:
        data = data_url_bytes(url)
    except ValueError as exc:
        raise InvalidInputError(
            f"known_speaker_references[{index}] is not usable: {exc}.", input="known_speaker_references"
        ) from None
    try:
        return decode_audio(io.BytesIO(data), max_duration_s=_DECODE_LIMIT_S)
    except TooLargeError:
        raise InvalidInputError(
            f"known_speaker_references[{index}] is longer than {MAX_REFERENCE_S:g} seconds: each reference must be "
            f"{MIN_REFERENCE_S:g} to {MAX_REFERENCE_S:g} seconds of the speaker's voice.",
            input="known_speaker_references",
        ) from None
    except STTError as exc:
        raise InvalidInputError(
            f"known_speaker_references[{index}] is not usable: {exc.message}", input="known_speaker_references"
        ) from exc
