"""Language codes that Whisper knows."""

from __future__ import annotations

from transformers.models.whisper.tokenization_whisper import LANGUAGES, TO_LANGUAGE_CODE

from .errors import InvalidInputError


def normalize_language(language: str | None) -> str | None:
    """An ISO-639-1 code (``pt``) from a code, a BCP-47 tag (``pt-BR``) or an English name (``portuguese``)."""
    if language is None or not language.strip():
        return None
    value = language.strip().lower().replace("_", "-")
    if value in LANGUAGES:
        return value
    primary = value.split("-", 1)[0]
    if primary in LANGUAGES:
        return primary
    if value in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[value]
    raise InvalidInputError(
        f"Unsupported language {language!r}: use an ISO-639-1 code such as 'en' or 'pt'.", input="language"
    )
