"""What a Whisper decoding starts from: the previous text (keywords, prompt), the language and the start tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def prompt_text(keywords: Sequence[str], initial_prompt: str | None) -> str | None:
    """The text Whisper reads as previous context: the keywords, comma-separated (as faster-whisper's hotwords, put
    before the prompt), then the request's prompt; None when there is neither."""
    text = " ".join(part for part in (", ".join(keywords), initial_prompt or "") if part.strip())
    return text or None


def language_setting(languages: Sequence[str]) -> str | list[str]:
    """Whisper generate's ``language``: one code for the whole batch, or one per clip when they differ."""
    return languages[0] if len(set(languages)) == 1 else list(languages)


def whisper_prefix(generation_config: Any, language: str | None, task: str = "transcribe") -> list[int]:
    """The tokens Whisper's generate starts a timestamped decoding with: <|startoftranscript|>, then for
    multilingual models the language and the task."""
    prefix = [generation_config.decoder_start_token_id]
    if language is not None:
        prefix += [generation_config.lang_to_id[f"<|{language}|>"], generation_config.task_to_id[task]]
    return prefix
